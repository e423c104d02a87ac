"""The public API of cotdistill.data: data_dir, the registry, load_examples dispatch, available."""

from pathlib import Path

import pytest

import cotdistill.data as data
from cotdistill.data import DATASETS, DatasetSpec, available, data_dir, load_examples
from cotdistill.errors import DataError
from cotdistill.examples import Example


def test_registry_names():
    assert set(DATASETS) == {"commonsenseqa-dsbs", "quarel-mario", "openbookqa-tinyllm",
                             "strategyqa-mario", "svamp-dsbs", "synthetic", "synthetic-count", "file",
                             "rationale-set", "synthetic-key", "synthetic-keyfacts"}
    assert DATASETS["strategyqa-mario"].kind == "yes_no"
    assert DATASETS["svamp-dsbs"].splits == ("train", "test")


def test_data_dir_prefers_env(monkeypatch, tmp_path):
    monkeypatch.setenv("COTDISTILL_DATA_DIR", str(tmp_path / "x"))
    assert data_dir() == tmp_path / "x"


def test_data_dir_falls_back_to_shared_then_local_beside_the_package(monkeypatch, tmp_path):
    monkeypatch.delenv("COTDISTILL_DATA_DIR")
    project = tmp_path / "main"
    project.mkdir()
    monkeypatch.setattr(data, "PACKAGE_ROOT", project)
    monkeypatch.chdir(tmp_path)                      # the working folder plays no part
    assert data_dir() == project / "data"
    (tmp_path / "shared" / "data").mkdir(parents=True)
    monkeypatch.chdir(project / "..")
    assert data_dir() == tmp_path / "shared" / "data"


def test_data_dir_is_the_same_from_any_working_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("COTDISTILL_DATA_DIR")
    here = data_dir()
    monkeypatch.chdir(tmp_path)
    assert data_dir() == here and here.is_absolute()


def test_unknown_name_lists_known_names():
    with pytest.raises(DataError) as e:
        load_examples("cqa", "train")
    for name in DATASETS:
        assert name in str(e.value)


def test_unknown_split_names_valid_splits():
    with pytest.raises(DataError, match="dataset 'openbookqa-tinyllm' has no split 'dev'; valid "
                                        "splits: train, valid, test"):
        load_examples("openbookqa-tinyllm", "dev")


def test_unknown_option_names_it_and_the_accepted_ones():
    with pytest.raises(DataError, match="unknown option 'dedup' for dataset 'strategyqa-mario'; "
                                        "accepted: dedupe") as e:
        load_examples("strategyqa-mario", "train", dedup=False)
    assert e.value.field == "dedup"
    with pytest.raises(DataError, match="unknown option 'teacher'.*accepted: none"):
        load_examples("svamp-dsbs", "train", teacher="x")


def test_duplicate_ids_are_refused_for_any_loader(monkeypatch):
    def twins(split):
        return [Example(id="same", question="q1", label="a", choices=("x", "y")),
                Example(id="same", question="q2", label="b", choices=("x", "y"))]
    monkeypatch.setitem(DATASETS, "twins", DatasetSpec(twins, ("train",), "multiple_choice", "t"))
    with pytest.raises(DataError, match="1 ids repeat in split 'train' of 'twins', e.g. 'same' at "
                                        "examples 0 and 1"):
        load_examples("twins", "train")


def test_available_on_the_real_releases():
    infos = {info.name: info for info in available()}
    assert infos["commonsenseqa-dsbs"].counts == {"train": 9741, "test": 1221}
    assert infos["openbookqa-tinyllm"].counts == {"train": 4957, "valid": 500, "test": 500}
    assert infos["quarel-mario"].counts == {"train": 1757, "dev": 278, "test": 552}
    assert infos["quarel-mario"].rationale_counts == {"train": 1757, "dev": 0, "test": 0}
    assert infos["strategyqa-mario"].counts == {"train": 1385, "dev": 184, "test": 458}
    assert infos["svamp-dsbs"].rationale_counts == {"train": 789, "test": 198}
    assert infos["synthetic"].counts == {"train": 2000, "test": 300}
    assert infos["file"].counts == {} and "tau/commonsense_qa" in infos
    assert all(info.error is None for info in infos.values())


def test_available_records_errors_instead_of_raising(tmp_path):
    (tmp_path / "svamp-dsbs").mkdir()
    (tmp_path / "svamp-dsbs" / "svamp_test.json").write_text("", encoding="utf-8")
    infos = {info.name: info for info in available(tmp_path)}
    cqa = infos["commonsenseqa-dsbs"]
    assert cqa.counts == {} and "not found under" in cqa.error
    assert "set COTDISTILL_DATA_DIR" in cqa.error
    assert "split 'train'" in infos["svamp-dsbs"].error
    assert infos["synthetic"].error is None and infos["synthetic"].counts["train"] == 2000


def test_data_dir_argument_wins_over_env(tmp_path):
    with pytest.raises(DataError, match=str(tmp_path)):
        data.load_examples("svamp-dsbs", "test", data_dir=tmp_path)
