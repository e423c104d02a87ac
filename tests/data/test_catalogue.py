"""The catalogue of rationale sets (cotdistill.data.catalogue): the sets under the state folder and
the registered folders, in one list; registering verifies the set and is idempotent (issue 23)."""

import json
import shutil
from pathlib import Path

import pytest

from cotdistill.data.catalogue import CATALOGUE_FILE, catalogue, register_folder, remember
from cotdistill.data.rationale_set import sets_root
from cotdistill.errors import DataError
from cotdistill.data.store import import_file

FIX = Path(__file__).parent / "fixtures"


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("COTDISTILL_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_sets_under_the_state_folder_and_registered_folders_are_listed(home, tmp_path):
    import_file(FIX / "array.json", sets_root() / "colours", columns={"label": "answer"})
    outside = import_file(FIX / "chains.jsonl", tmp_path / "elsewhere" / "chains", kind="yes_no",
                          holdout=0.25, columns={"label": "answer", "rationale": "chain"})
    assert [e.name for e in catalogue()] == ["colours"]
    entry = register_folder(outside)
    assert (entry.name, entry.kind, entry.splits, entry.registered) == (
        "chains", "yes_no", {"train": 27, "test": 3}, True)
    assert entry.with_rationale == {"train": 27, "test": 3}
    register_folder(outside)                                  # idempotent
    remember(sets_root() / "colours")                         # under the state folder: nothing
    assert json.loads((sets_root() / CATALOGUE_FILE).read_text()) == {
        "folders": [str(outside.resolve())]}
    assert [(e.name, e.registered) for e in catalogue()] == [("colours", False), ("chains", True)]
    shutil.rmtree(outside)                                    # a deleted folder is left out
    assert [e.name for e in catalogue()] == ["colours"]


def test_only_an_intact_set_is_registered(home, tmp_path):
    with pytest.raises(DataError, match="not a rationale set folder"):
        register_folder(tmp_path)
    path = import_file(FIX / "array.json", tmp_path / "s", columns={"label": "answer"})
    (path / "examples.jsonl").write_text((path / "examples.jsonl").read_text().replace("Air", "Gas"))
    with pytest.raises(DataError, match="sets are immutable"):
        register_folder(path)
    assert catalogue() == []


def test_a_broken_catalogue_file_is_one_sentence(home):
    sets_root().mkdir(parents=True)
    (sets_root() / CATALOGUE_FILE).write_text("[1, 2]")
    with pytest.raises(DataError, match=r"expected \{\"folders\": \[paths\]\}"):
        catalogue()
