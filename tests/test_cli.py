"""The CLI end to end, as a user runs it: real subprocesses, real files."""

import json
import os
import subprocess
import sys

import pytest
import yaml
from click.testing import CliRunner

import cotdistill
from cotdistill.cli import format_summary, science
from tests.conftest import ROOT

SMALL = ["data.options.n_train=200", "data.options.n_test=40", "train.steps=6", "train.log_every=2",
         "train.batch_size=8", "student.vocab_size=300"]


def cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "cotdistill.cli", *args], cwd=ROOT, capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, timeout=600)


def test_run_writes_the_results_folder_and_reuses_it(tmp_path):
    out = tmp_path / "run"
    args = ["run", "configs/synthetic-demo.yaml", *SMALL, "perturbation.kind=shuffle", "seed=2", "--out", str(out)]
    p = cli(*args)
    assert p.returncode == 0, p.stderr
    assert "accuracy" in p.stdout and "on 40 test examples" in p.stdout
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["perturbation"]["kind"] == "shuffle" and config["seed"] == 2
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == [2, 4, 6]
    predictions = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(predictions) == 40 and all(set(p) >= {"example_id", "predicted", "correct", "scores"}
                                          for p in predictions)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n"] == 40 and summary["train_steps"] == 6 and summary["eval_mode"] == "score"
    assert summary["accuracy"] == sum(p["correct"] for p in predictions) / 40
    assert summary["accuracy_low"] <= summary["accuracy"] <= summary["accuracy_high"]
    assert summary["scoring"] == "letter" and set(summary["accuracy_by_mode"]) == {"letter", "text", "calibrated"}
    assert sum(summary["prediction_distribution"].values()) == pytest.approx(1.0)
    assert isinstance(summary["collapsed"], bool) and ("WARNING" in p.stdout) == bool(summary["flags"])
    assert summary["unparsed_rate"] == 0.0 and summary["forced"] == 0      # score mode always answers
    assert all(set(p["by_mode"]) == {"letter", "text", "calibrated"} for p in predictions)
    assert (out / "model" / "config.json").exists() and not (out / "checkpoint").exists()
    again = cli(*args)
    assert again.returncode == 0 and f"reusing the finished run in {out}" in again.stdout


def test_run_of_an_older_results_version_is_not_reused_unless_asked(tmp_path):
    out = tmp_path / "run"
    assert cli("run", "configs/synthetic-demo.yaml", *SMALL, "--out", str(out)).returncode == 0
    saved = yaml.safe_load((out / "config.yaml").read_text())
    for key in ("results_version", "identity"):              # as version 1 wrote it
        saved.pop(key)
    saved["config_hash"] = "0ld0ld0ld0ld"
    (out / "config.yaml").write_text(yaml.safe_dump(saved))
    asked = cli("run", "configs/synthetic-demo.yaml", *SMALL, "--out", str(out), "--reuse-old")
    now = cotdistill.RESULTS_VERSION
    assert asked.returncode == 0 and f"reusing {out}: same settings from results version 1 (now {now})" in asked.stdout
    again = cli("run", "configs/synthetic-demo.yaml", *SMALL, "--out", str(out))
    assert again.returncode == 0, again.stderr
    assert f"not reusing {out}: same settings, but results version 1 (now {now})" in again.stdout
    assert (tmp_path / "run.old-v1" / "summary.json").is_file()
    fresh = yaml.safe_load((out / "config.yaml").read_text())
    assert fresh["results_version"] == cotdistill.RESULTS_VERSION and fresh["identity"]["precision"] == "fp32"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["results_version"] == cotdistill.RESULTS_VERSION
    assert summary["data_hash"] == fresh["identity"]["data_hash"]


def test_run_refuses_a_folder_of_another_config(tmp_path):
    out = tmp_path / "run"
    assert cli("run", "configs/synthetic-demo.yaml", *SMALL, "--out", str(out)).returncode == 0
    (out / "summary.json").unlink()
    p = cli("run", "configs/synthetic-demo.yaml", *SMALL, "seed=5", "--out", str(out))
    assert p.returncode == 2 and "holds a run of another configuration" in p.stderr


def test_bad_config_gives_a_clear_error():
    p = cli("run", "configs/synthetic-demo.yaml", "train.stepz=3")
    assert p.returncode == 2 and "unknown key(s) train.stepz" in p.stderr and "Traceback" not in p.stderr


def test_preview_marks_supervised_tokens():
    p = cli("preview", "configs/cqa-after.yaml", "--n", "2", "--placements", "before,after",
            "--perturbations", "none,shuffle", "--no-color")
    assert p.returncode == 0, p.stderr
    blocks = [b for b in p.stdout.split("── ")[1:]]
    assert len(blocks) == 2 * 2 * 2
    for block in blocks:
        assert "Answer:«" in block                     # supervision starts right after the prompt
        assert block.count("«") == 1 and block.count("»") == 1
    assert "Explanation:" in blocks[4] and "So the answer is" in blocks[0]


def test_datasets_lists_what_loads():
    p = cli("datasets")
    assert p.returncode == 0, p.stderr
    lines = {line.split()[0]: line for line in p.stdout.splitlines()[1:] if line.startswith("  ")}
    assert "train 9,741" in lines["commonsenseqa-dsbs"] and "test 1,221" in lines["commonsenseqa-dsbs"]
    assert "openbookqa-tinyllm" in lines and "svamp-dsbs" in lines and "synthetic" in lines


def test_datasets_says_where_data_is_missing(tmp_path):
    p = cli("datasets", "--data-dir", str(tmp_path))
    assert p.returncode == 0
    assert "unavailable" in p.stdout and "commonsenseqa-dsbs" in p.stdout


COLLAPSED = {"n": 40, "accuracy": 0.25, "accuracy_low": 0.125, "accuracy_high": 0.4, "unparsed": 0,
             "eval_mode": "score", "scoring": "letter", "final_loss": 1.2, "tokens_per_s": 900.0,
             "student": "tiny-tiny", "majority_label": "a", "majority_baseline": 0.25, "top_prediction": "b",
             "top_prediction_share": 1.0, "accuracy_by_mode": {"letter": 0.25, "calibrated": 0.4},
             "collapsed": True, "collapse_reason": "not distinguishable from a constant answer: the most "
                                                  "frequent prediction 'b' covers 100% of 40 items"}


def test_run_prints_the_collapse_warning(tmp_path):
    from cotdistill.config import load_config
    from cotdistill.run import prepare_dir
    prepare_dir(load_config(ROOT / "configs" / "synthetic-demo.yaml"), tmp_path)   # this config's folder
    (tmp_path / "summary.json").write_text(json.dumps(COLLAPSED))           # a finished, collapsed run
    result = CliRunner().invoke(science, ["run", "configs/synthetic-demo.yaml", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "WARNING: not distinguishable from a constant answer: the most frequent prediction 'b'" in result.output
    assert "accuracy by scoring: letter 0.250, calibrated 0.400" in result.output
    assert "majority baseline 0.250 (always 'a')" in result.output


def test_summaries_without_diagnostics_still_print():
    old = {k: v for k, v in COLLAPSED.items() if k in ("n", "accuracy", "accuracy_low", "accuracy_high",
                                                        "unparsed", "eval_mode", "final_loss", "tokens_per_s",
                                                        "student")}
    assert format_summary(old).count("\n") == 0 and "WARNING" not in format_summary(old)
    assert "WARNING" not in format_summary({**COLLAPSED, "collapsed": False, "collapse_reason": None})


def test_an_untouched_students_summary_says_it_was_not_fine_tuned():
    s = {**COLLAPSED, "fine_tuned": False, "final_loss": None, "tokens_per_s": None, "train_steps": 0}
    first = format_summary(s).splitlines()[0]
    assert first == ("accuracy 0.250 [0.125, 0.400] on 40 test examples (score, letter scoring; 0 unparsed) · "
                     "not fine-tuned (train.steps 0: the untouched student) · tiny-tiny")


def test_run_output_shows_the_unparsed_rate_and_every_flag():
    s = {**COLLAPSED, "eval_mode": "generate", "scoring": None, "unparsed": 40, "unparsed_rate": 1.0, "forced": 40,
         "below_baseline": True, "below_baseline_reason": "accuracy 0.000 is significantly below the majority "
                                                          "baseline 0.250",
         "high_unparsed": True, "unparsed_reason": "no label parsed from the generation on 100% of 40 items"}
    text = format_summary(s)
    assert "(generate; 40 unparsed, rate 100%, 40 answers forced by scoring)" in text
    assert "WARNING: accuracy 0.000 is significantly below the majority baseline 0.250" in text
    assert "WARNING: no label parsed from the generation on 100% of 40 items" in text


def test_rescore_writes_files_per_scoring_and_keeps_the_run(tmp_path):
    out = tmp_path / "run"
    assert cli("run", "configs/synthetic-demo.yaml", *SMALL, "eval.all_modes=false", "--out", str(out)).returncode == 0
    before = (out / "predictions.jsonl").read_text()
    assert all(set(json.loads(line)["by_mode"]) == {"letter"} for line in before.splitlines())
    p = cli("rescore", str(out), "--scoring", "calibrated")
    assert p.returncode == 0, p.stderr
    assert "calibrated scoring" in p.stdout and "predictions-calibrated.jsonl" in p.stdout
    rows = [json.loads(line) for line in (out / "predictions-calibrated.jsonl").read_text().splitlines()]
    assert len(rows) == 40 and all(r["scoring"] == "calibrated" and r["scores"] == r["by_mode"]["calibrated"]["scores"]
                                   for r in rows)
    summary = json.loads((out / "summary-calibrated.json").read_text())
    original = json.loads((out / "summary.json").read_text())
    assert summary["rescored"] and summary["scoring"] == "calibrated" and summary["train_steps"] == 6
    assert summary["accuracy"] == summary["accuracy_by_mode"]["calibrated"] == sum(r["correct"] for r in rows) / 40
    assert summary["accuracy_by_mode"]["letter"] == original["accuracy"]      # the same model, rescored
    assert (out / "predictions.jsonl").read_text() == before


def test_rescore_refuses_a_before_run_and_leaves_it_as_it_was(tmp_path):
    out = tmp_path / "run"
    assert cli("run", "configs/synthetic-demo.yaml", *SMALL, "placement=before", "eval.max_new_tokens=4",
               "--out", str(out)).returncode == 0
    files = sorted(p.name for p in out.iterdir())
    p = cli("rescore", str(out), "--scoring", "calibrated")
    assert p.returncode == 2 and "is a `before` run" in p.stderr and "rescore refuses it" in p.stderr
    assert sorted(p.name for p in out.iterdir()) == files


def test_rescore_refuses_a_folder_without_a_finished_run(tmp_path):
    p = cli("rescore", str(tmp_path))
    assert p.returncode == 2 and "holds no finished run" in p.stderr


# --- data import / data check (issue 14) ------------------------------------------------------

FIXTURES = ROOT / "tests" / "data" / "fixtures"


def test_data_dir_resolves_from_outside_the_checkout(tmp_path):
    """Why: `cotdistill datasets` run from another folder listed every release as unavailable."""
    env = {k: v for k, v in os.environ.items() if k != "COTDISTILL_DATA_DIR"}
    env["PYTHONPATH"] = str(ROOT)
    code = "from cotdistill.data import data_dir; print(data_dir())"
    inside = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=60)
    outside = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=60)
    assert outside.returncode == 0, outside.stderr
    assert outside.stdout == inside.stdout and os.path.isabs(outside.stdout.strip())


def test_import_help_lists_every_layout_label_format_and_option():
    out = CliRunner().invoke(science, ["data", "import", "--help"]).output
    for word in ("jsonl", "json", "--no-header", "--no-quoting", "--unescape", "question.stem",
                 "teacher_correct", "index1", "sentence", "--embedded-choices", "Answer Choices",
                 "--rationales", "--rationale-cut", "--strip-leaks", "--holdout", "--mapping",
                 "--save-mapping", "yes_no", "numeric", "Example:"):
        assert word in out, word


def test_import_with_a_saved_mapping_and_check(tmp_path):
    runner = CliRunner()
    mapping = tmp_path / "m.yaml"
    first = runner.invoke(science, [
        "data", "import", str(FIXTURES / "positional.tsv"), "--out", str(tmp_path / "a"),
        "--no-header", "--no-quoting", "--unescape", "--embedded-choices",
        "--column", "question=0", "--column", "label=1", "--column", "rationale=2",
        "--save-mapping", str(mapping)])
    assert first.exit_code == 0, first.output
    assert yaml.safe_load(mapping.read_text())["header"] is False
    again = runner.invoke(science, ["data", "import", str(FIXTURES / "positional.tsv"),
                                    "--out", str(tmp_path / "b"), "--mapping", str(mapping)])
    assert again.exit_code == 0, again.output
    assert "train: 2 rows, 2 with a rationale" in again.output
    assert "1: '\"Sky colour?' choices ['red', 'blue\"'] label 'b'" in again.output
    a = json.loads((tmp_path / "a" / "provenance.json").read_text())["content_hash"]
    b = json.loads((tmp_path / "b" / "provenance.json").read_text())["content_hash"]
    assert a == b
    check = runner.invoke(science, ["data", "check", str(tmp_path / "b")])
    assert check.exit_code == 0 and "warning" not in check.output


def test_check_warns_and_fails_on_placeholders(tmp_path):
    runner = CliRunner()
    made = runner.invoke(science, ["data", "import", str(FIXTURES / "placeholder.jsonl"),
                                   "--out", str(tmp_path / "s")])
    assert made.exit_code == 0 and "warning: train: 3 placeholder rationales" in made.output
    check = runner.invoke(science, ["data", "check", str(tmp_path / "s"), "--json"])
    assert check.exit_code == 1
    assert json.loads(check.output)["import"]["train"]["n_placeholders"] == 3
    kept = runner.invoke(science, ["data", "import", str(FIXTURES / "placeholder.jsonl"),
                                   "--out", str(tmp_path / "k"), "--placeholders", "keep"])
    assert kept.exit_code == 0 and "3 of 4 rationales are placeholders" in kept.output
    check = runner.invoke(science, ["data", "check", str(tmp_path / "k"), "--json"])
    assert check.exit_code == 1
    assert json.loads(check.output)["splits"]["train"]["placeholder"] is True
    refused = runner.invoke(science, ["data", "import", str(FIXTURES / "placeholder.jsonl"),
                                      "--out", str(tmp_path / "e"), "--placeholders", "error"])
    assert refused.exit_code == 2 and "row 1, field 'rationale'" in refused.output
    assert not (tmp_path / "e").exists()


def test_import_dry_run_prints_the_parse_and_report_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("COTDISTILL_HOME", str(tmp_path / "home"))
    p = CliRunner().invoke(science, ["data", "import", str(FIXTURES / "completions.jsonl"),
                                     "--column", "rationale=completion", "--dry-run"])
    assert p.exit_code == 0, p.output
    assert p.output.splitlines() == [
        "parsed, first rows:",
        "  1: 'Sky colour?' choices ['red', 'blue'] label 'b' rationale 'Air scatters short "
        "wavelengths. Thus, the answer is (b) blue'",
        "  2: 'Grass colour?' choices ['green', 'blue'] label 'a' rationale 'Chlorophyll reflects "
        "that colour. So the answer is (a).'",
        "train: 2 rows, 2 with a rationale, words median 10.5 (min 9, max 12); labels {'a': 1, 'b': 1}; "
        "leak 2 (100.0%: 2 state the answer, 0 open with it, 1 quote the gold choice); 2 questions; "
        "0 placeholder rationales",
        p.output.splitlines()[4],
        "dry run: nothing written"]
    assert p.output.splitlines()[4].startswith("warning: train: 2 of 2 rationales (100%) name the gold answer")
    assert not (tmp_path / "home" / "rationale_sets").exists()
    bad = CliRunner().invoke(science, ["data", "import", str(FIXTURES / "embedded_bad.jsonl"),
                                       "--column", "question=input", "--embedded-choices", "--dry-run"])
    assert bad.exit_code == 2 and "row 2, field 'input': no choices found" in bad.output


def test_check_counts_rationale_lengths_in_tokens_of_a_named_tokenizer(tmp_path):
    from tests.conftest import make_word_tokenizer
    make_word_tokenizer().save_pretrained(tmp_path / "tok")
    runner = CliRunner()
    made = runner.invoke(science, ["data", "import", str(FIXTURES / "array.json"), "--column", "label=answer",
                                   "--out", str(tmp_path / "s")])
    assert made.exit_code == 0, made.output
    words = runner.invoke(science, ["data", "check", str(tmp_path / "s")])
    assert "words median 3.5 (min 3, max 4)" in words.output
    # "Air scatters short wavelengths." and "Chlorophyll reflects it.": the full stop is a token of its own
    tokens = runner.invoke(science, ["data", "check", str(tmp_path / "s"), "--tokenizer", str(tmp_path / "tok")])
    assert tokens.exit_code == 0, tokens.output
    assert f"tokens ({tmp_path / 'tok'}) median 4.5 (min 4, max 5)" in tokens.output
    missing = runner.invoke(science, ["data", "check", str(tmp_path / "s"), "--tokenizer", str(tmp_path / "none")])
    assert missing.exit_code == 2 and f"--tokenizer {tmp_path / 'none'}: cannot load it" in missing.output


def test_bad_mapping_key_is_one_sentence(tmp_path):
    mapping = tmp_path / "m.yaml"
    mapping.write_text("colums: {label: answer}\n")
    p = CliRunner().invoke(science, ["data", "import", str(FIXTURES / "array.json"),
                                     "--out", str(tmp_path / "s"), "--mapping", str(mapping)])
    assert p.exit_code != 0 and "unknown key 'colums'" in p.output


@pytest.mark.parametrize("text,args,message", [
    ("train: {lr: abc}\n", [], "config.yaml: train.lr: expected a number, got 'abc'"),
    ("seed: 1\n", ["eval.n_boot=0"], "override 'eval.n_boot=0': eval.n_boot: expected a number >= 1, got 0"),
    ("", [], "config.yaml is empty; pass --defaults to run the default config"),
])
def test_invalid_config_exits_with_one_line_and_no_run_folder(tmp_path, text, args, message):
    config = tmp_path / "config.yaml"
    config.write_text(text)
    out = tmp_path / "run"
    result = CliRunner().invoke(science, ["run", str(config), *args, "--out", str(out)])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and message in lines[0]
    assert not out.exists()


def test_run_progress_prints_what_happened_to_a_checkpoint(capsys):
    from cotdistill.cli import progress_printer
    on_event = progress_printer()
    on_event({"phase": "checkpoint", "kind": "corrupt", "message": "checkpoint at step 4 is corrupt or "
              "incomplete: /r/checkpoint/checkpoint-4/state.pt is missing; moved it aside to "
              "/r/checkpoint/checkpoint-4.corrupt-1; no good checkpoint is left, so training starts from scratch"})
    assert capsys.readouterr().err == ("checkpoint: checkpoint at step 4 is corrupt or incomplete: "
                                       "/r/checkpoint/checkpoint-4/state.pt is missing; moved it aside to "
                                       "/r/checkpoint/checkpoint-4.corrupt-1; no good checkpoint is left, so "
                                       "training starts from scratch\n")


def test_one_catalogue_imported_and_registered_sets_are_listed(tmp_path, monkeypatch):
    """Why (issue 23): sets imported with `data import` never appeared in the app, and no command
    registered a folder; `cotdistill datasets` lists the catalogue the app's lists mirror."""
    monkeypatch.setenv("COTDISTILL_HOME", str(tmp_path / "home"))
    runner = CliRunner()
    made = runner.invoke(science, ["data", "import", str(FIXTURES / "array.json"), "--column",
                                   "label=answer", "--name", "colours"])
    assert made.exit_code == 0, made.output
    elsewhere = runner.invoke(science, ["data", "import", str(FIXTURES / "keyed.json"), "--column",
                                        "label=answer", "--column", "rationale=why",
                                        "--out", str(tmp_path / "other" / "keyed-set")])
    assert elsewhere.exit_code == 0, elsewhere.output
    listed = runner.invoke(science, ["datasets", "--data-dir", str(tmp_path / "none")])
    sets = [line for line in listed.output.splitlines() if line.startswith("  set ")]
    assert [line.split()[1:3] for line in sets] == [["colours", "multiple_choice"],
                                                    ["keyed-set", "multiple_choice"]]
    assert "train 2 (2 with rationale)" in sets[0] and str(tmp_path / "other" / "keyed-set") in sets[1]
    # a folder copied in from elsewhere: one command registers it
    import shutil
    shutil.copytree(tmp_path / "other" / "keyed-set", tmp_path / "copied")
    registered = runner.invoke(science, ["data", "register", str(tmp_path / "copied")])
    assert registered.exit_code == 0 and "registered: `cotdistill datasets` lists it" in registered.output
    again = runner.invoke(science, ["data", "register", str(tmp_path / "copied")])
    assert again.exit_code == 0
    listed = runner.invoke(science, ["datasets", "--data-dir", str(tmp_path / "none")])
    assert sum(line.startswith("  set ") for line in listed.output.splitlines()) == 3
    refused = runner.invoke(science, ["data", "register", str(tmp_path / "other")])
    assert refused.exit_code == 2 and "not a rationale set folder (no provenance.json)" in refused.output
