"""The jobs API's import functions (worker/api/imports.py): uploads stored by content under the state
folder, every path confined before it is read, refusals as plain data naming their field."""

import shutil
from pathlib import Path

import pytest

FIX = Path(__file__).resolve().parents[1] / "data" / "fixtures"


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("COTDISTILL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COTDISTILL_DATABASE_URL", f"sqlite:///{tmp_path / 'home' / 'app.db'}")
    monkeypatch.setenv("COTDISTILL_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("COTDISTILL_ALLOWED_PATHS", raising=False)
    (tmp_path / "data").mkdir()
    from worker.db import upgrade
    (tmp_path / "home").mkdir(exist_ok=True)
    upgrade(f"sqlite:///{tmp_path / 'home' / 'app.db'}")      # as `db upgrade` or `up` would
    return tmp_path / "home"


def test_uploads_are_stored_by_content_under_a_safe_name(home):
    from worker import api
    first = api.save_upload("../../etc/my file.json", b"[1]")
    assert Path(first).parent.parent == home / "uploads" and Path(first).name == "my_file.json"
    assert api.save_upload("../../etc/my file.json", b"[1]") == first
    assert api.save_upload("my file.json", b"[2]") != first
    assert Path(api.save_upload(".hidden", b"x")).name == "hidden"


def test_paths_outside_the_allowed_folders_are_refused_before_reading(home, tmp_path):
    from worker import api
    outside = tmp_path / "outside.json"
    shutil.copy(FIX / "questions.json", outside)
    refused = api.preview_import({"train": str(outside)}, {"kind": "yes_no"})
    assert refused["error"]["field"] == "path" and "is outside the folders jobs may read" in refused["error"]["message"]
    inside = api.save_upload("questions.json", (FIX / "questions.json").read_bytes())
    apart = api.preview_import({"train": inside}, {"kind": "yes_no", "columns": {"label": "answer"}},
                               rationales={"train": [str(FIX / "rationales_0.json")]})
    assert apart["error"]["field"] == "rationales"
    assert apart["error"]["message"].startswith("rationales: the path ")
    assert apart["rows"] == {} and apart["report"] is None


def test_bad_options_and_names_come_back_as_errors_and_write_nothing(home):
    from worker import api
    path = api.save_upload("array.json", (FIX / "array.json").read_bytes())
    unknown = api.preview_import({"train": path}, {"colums": {"label": "answer"}})
    assert unknown["error"]["field"] == "colums" and "unknown import option 'colums'" in unknown["error"]["message"]
    assert api.preview_import({}, {})["error"]["message"] == (
        "field 'path': no file given: upload one or give a path inside the data folder")
    bad_name = api.import_rationale_set({"train": path}, {"columns": {"label": "answer"}}, "../escape")
    assert bad_name["error"]["field"] == "name" and bad_name["set_id"] is None
    assert not (home / "rationale_sets").exists()
    made = api.import_rationale_set({"train": path}, {"columns": {"label": "answer"}}, "arr", teacher="gpt-x")
    assert made["error"] is None and Path(made["path"]) == home / "rationale_sets" / "arr"
    listed = api.list_rationale_sets()
    assert [(s["id"], s["name"], s["n_examples"]) for s in listed] == [(made["set_id"], "arr", 2)]
    assert listed[0]["provenance"]["teacher"] == {"name": "gpt-x"}
    report = api.rationale_set_report(made["set_id"])
    assert report["report"]["splits"]["train"]["labels"] == {"a": 1, "b": 1}
    with pytest.raises(api.NotFound):
        api.rationale_set_report(made["set_id"] + 1)


def test_one_catalogue_for_cli_app_and_teacher_jobs(home, tmp_path, monkeypatch):
    """Why (issue 23): sets imported with `cotdistill data import` never appeared in the app; the app's
    lists and `cotdistill datasets` now read one catalogue (the database mirrors it)."""
    from cotdistill.data.catalogue import catalogue, register_folder
    from cotdistill.data.rationale_set import sets_root
    from cotdistill.data.store import import_file
    from worker import api
    from worker.api.core import sessions
    from worker.rationale_sets import register
    cli_set = import_file(FIX / "array.json", sets_root() / "from-cli", columns={"label": "answer"})
    artifacts = home / "artifacts" / "rationale_sets"            # where a teacher job writes
    job_set = import_file(FIX / "keyed.json", artifacts / "from-job", columns={"label": "answer",
                                                                                "rationale": "why"})
    register(sessions(), job_set)                                  # what the generation job does
    assert [e.name for e in catalogue()] == ["from-cli", "from-job"]   # the CLI sees the job's set
    listed = {s["name"]: s for s in api.list_rationale_sets()}        # the app sees the CLI's set
    assert set(listed) == {"from-cli", "from-job"} and listed["from-cli"]["path"] == str(cli_set)
    assert len(api.list_rationale_sets()) == 2                         # found once, not twice
    # a folder outside the folders jobs may read is registered for the CLI, not shown in the app
    outside = import_file(FIX / "questions.json", tmp_path / "outside" / "qs", kind="yes_no",
                          columns={"label": "answer"})
    register_folder(outside)
    assert [e.name for e in catalogue()][-1] == "qs"
    assert {s["name"] for s in api.list_rationale_sets()} == {"from-cli", "from-job"}
    monkeypatch.setenv("COTDISTILL_ALLOWED_PATHS", str(tmp_path / "outside"))
    assert {s["name"] for s in api.list_rationale_sets()} == {"from-cli", "from-job", "qs"}
NUL_ROW = b'{"question": "Q\\u0000?", "choices": ["x", "y"], "label": "a"}\n'
OK_ROW = b'{"question": "Q?", "choices": ["x", "y"], "label": "a"}\n'


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_text_with_nul_is_refused_with_its_row_and_leaves_the_name_free(home, request, monkeypatch, backend):
    """On PostgreSQL a NUL used to pass the reader, fail the database insert and leave the set's folder
    behind: its name taken, the set not listed."""
    from worker import api
    if backend == "postgresql":
        url = request.getfixturevalue("postgres_url")
        monkeypatch.setenv("COTDISTILL_DATABASE_URL", url)
        from worker.db import upgrade
        upgrade(url)
    path = api.save_upload("nul.jsonl", OK_ROW + NUL_ROW)
    result = api.import_rationale_set({"train": path}, {}, "with-nul")
    assert result["set_id"] is None and (result["error"]["row"], result["error"]["field"]) == (2, "question")
    assert "the text holds a NUL character (\\x00) at character 2" in result["error"]["message"]
    sets = home / "rationale_sets"
    assert not sets.exists() or list(sets.iterdir()) == []
    assert api.list_rationale_sets() == []
    fine = api.save_upload("ok.jsonl", OK_ROW)
    assert api.import_rationale_set({"train": fine}, {}, "with-nul")["set_id"] is not None


def test_a_set_the_database_refuses_is_removed_from_disk(home, monkeypatch):
    import worker.rationale_sets
    from worker import api

    def refuse(*args, **kwargs):
        raise RuntimeError("database gone")
    monkeypatch.setattr(worker.rationale_sets, "register", refuse)
    path = api.save_upload("ok.jsonl", OK_ROW)
    with pytest.raises(RuntimeError, match="database gone"):
        api.import_rationale_set({"train": path}, {}, "orphan")
    assert list((home / "rationale_sets").iterdir()) == []


def test_more_than_26_choices_and_duplicate_choices_in_the_preview(home):
    import json
    from worker import api
    many = api.save_upload("many.jsonl", json.dumps({"question": "Q?", "choices": [str(i) for i in range(30)],
                                                     "label": "a"}).encode() + b"\n")
    refused = api.preview_import({"train": many}, {})
    assert refused["error"]["field"] == "choices" and "30 choices, more than the 26 letters" in refused["error"]["message"]
    twice = api.save_upload("twice.jsonl", b'{"question": "Q?", "choices": ["x", "x"], "label": "a"}\n')
    preview = api.preview_import({"train": twice}, {})
    assert preview["error"] is None and preview["report"]["splits"]["train"]["n_duplicate_choices"] == 1
    assert any("list the same choice twice" in w for w in preview["report"]["warnings"])
