"""The `teacher generate`, `data import` and `data fetch` commands, in process (click's runner)."""

import json

import pytest
from click.testing import CliRunner

from cotdistill.cli import science
from cotdistill.data import data_dir
from cotdistill.data.store import open_rationale_set


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("COTDISTILL_HOME", str(tmp_path / "home"))


def cli(*args):
    return CliRunner().invoke(science, [str(a) for a in args], catch_exceptions=False)


def test_generate_with_the_tiny_teacher_then_rerun_is_a_no_op(tmp_path):
    out = tmp_path / "set"
    args = ["teacher", "generate", "synthetic", "--split", "train", "--split", "test",
            "--option", "n_train=4", "--option", "n_test=2", "--model", "tiny", "--device", "cpu",
            "--max-new-tokens", "4", "--batch-size", "3", "--out", out]
    first = cli(*args)
    assert first.exit_code == 0, first.output
    assert "rationale set: " + str(out) in first.output and "6 examples (train 4, test 2)" in first.output
    provenance = json.loads((out / "provenance.json").read_text())
    assert provenance["dataset"] == {"name": "synthetic", "options": {"n_train": 4, "n_test": 2},
                                     "n": None}
    again = cli(*args)
    assert again.exit_code == 0 and provenance["content_hash"][:12] in again.output


def test_generate_reports_a_bad_teacher_without_a_traceback(tmp_path):
    r = cli("teacher", "generate", "synthetic", "--option", "n_train=2", "--base-url",
            "http://127.0.0.1:9/v1", "--model", "m", "--api-key-env", "NO_SUCH_KEY_VAR",
            "--out", tmp_path / "x")
    assert r.exit_code == 2 and "NO_SUCH_KEY_VAR" in r.output and not (tmp_path / "x").exists()


def test_import_files_and_a_release(tmp_path):
    train = tmp_path / "mine.jsonl"
    train.write_text(json.dumps({"q": "Sky?", "options": ["red", "blue"], "answer": "b",
                                 "why": "Light scattering."}) + "\n")
    r = cli("data", "import", f"train={train}", "--column", "question=q", "--column",
            "choices=options", "--column", "label=answer", "--column", "rationale=why",
            "--out", tmp_path / "mine")
    assert r.exit_code == 0, r.output
    assert open_rationale_set(tmp_path / "mine").examples("train")[0].rationale == "Light scattering."
    r = cli("data", "import", data_dir() / "svamp-dsbs", "--split", "test")
    assert r.exit_code == 0, r.output
    assert "200 examples (test 200)" in r.output and "home/rationale_sets/svamp-dsbs" in r.output


def test_import_error_names_file_row_and_field(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("question,choices,label\nSky?,\"[\"\"red\"\", \"\"blue\"\"]\",(e)\n")
    r = cli("data", "import", bad, "--out", tmp_path / "set")
    assert r.exit_code == 2 and f"file {bad}, row 1, field 'label'" in r.output
    assert not (tmp_path / "set").exists()


def test_fetch_offline_says_where_to_put_each_file(tmp_path):
    r = cli("data", "fetch", "svamp-dsbs", "--data-dir", tmp_path)        # HF_HUB_OFFLINE=1
    assert r.exit_code == 2 and "offline mode is on" in r.output
    assert ("https://raw.githubusercontent.com/maxh119Z/distilling-step-by-step1/"
            "5b76a471c46c61f45114eab6621ffdff12d676b6/datasets/svamp/llm/train_CoT_1.json"
            in r.output)
    assert f"-> {tmp_path / 'svamp-dsbs' / 'llm' / 'train_CoT_1.json'}  (122,946 bytes)" in r.output
    assert not (tmp_path / "svamp-dsbs").exists()
    r = cli("data", "fetch", "no-such-release")
    assert r.exit_code == 2 and "unknown release 'no-such-release'; known: commonsenseqa-dsbs" in r.output
