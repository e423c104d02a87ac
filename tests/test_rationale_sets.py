"""Rationale sets: the content hash, atomic immutable writing, loading through the registry with
the teacher_correct filter, comparing two sets, and importing files and published releases
(every malformed input names file, row and field, and leaves no set behind)."""

import dataclasses
import json
import shutil

import pytest

from cotdistill.config import load_config
from cotdistill.data import data_dir, load_examples
from cotdistill.data.rationale_set import content_hash, record_of
from cotdistill.errors import DataError
from cotdistill.examples import Example
from cotdistill.data.store import (PROVENANCE_KEYS, RECORD_KEYS, Origin, compare_sets, import_file,
                                   import_release, open_rationale_set, write_rationale_set)
from cotdistill.run import load_examples as run_examples

COLOURS = ("red", "blue", "green")
ORIGIN = Origin("teacher", {"name": "toy"}, {"kind": "http", "model": "m"},
                {"template": "{question}"}, {"max_new_tokens": 8}, False)


def toy(split, n, teacher=lambda i: "abc"[i % 3]):
    return [Example(id=f"{split}{i}", question=f"what colour {i}?", choices=COLOURS,
                    label="abc"[i % 3], rationale=f"because {i}", teacher_label=teacher(i))
            for i in range(n)]


def records(n_train=6, n_test=3, **kw):
    return ([record_of(ex, "train", raw_output=f"raw {ex.id}") for ex in toy("train", n_train, **kw)]
            + [record_of(ex, "test") for ex in toy("test", n_test)])


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_content_hash_is_stable_and_changes_with_any_field(tmp_path):
    rows = records()
    a = write_rationale_set(tmp_path / "a", rows, ORIGIN)
    b = write_rationale_set(tmp_path / "b", [dict(reversed(list(r.items()))) for r in rows],
                            dataclasses.replace(ORIGIN, teacher={"model": "other"}))
    hash_a = open_rationale_set(a).content_hash
    assert hash_a == open_rationale_set(b).content_hash == content_hash(rows)
    one = [record_of(Example(id="x", question="q?", choices=("y", "n"), label="a"), "train")]
    assert content_hash(one) == "3b98f4b36d3a136a5c7c636eb48df72843afb1e6ff32590a4208a20e9467e0c2"
    for key, value in [("rationale", "because 99"), ("label", "a"), ("split", "dev")]:
        changed = [dict(r) for r in rows]
        changed[2][key] = value
        assert content_hash(changed) != hash_a


def test_set_folder_files_and_provenance(tmp_path):
    path = write_rationale_set(tmp_path / "sets" / "toy", records(), ORIGIN, name="toy v1")
    assert sorted(p.name for p in path.iterdir()) == ["examples.jsonl", "provenance.json"]
    lines = (path / "examples.jsonl").read_text().splitlines()
    assert len(lines) == 9 and set(json.loads(lines[0])) == set(RECORD_KEYS)
    p = json.loads((path / "provenance.json").read_text())
    assert tuple(p) == PROVENANCE_KEYS
    assert p["name"] == "toy v1" and p["splits"] == {"train": 6, "test": 3}
    assert p["teacher_accuracy"] == 1.0 and p["n_unparsed"] == 0 and p["gold_conditioned"] is False
    assert leftovers(tmp_path / "sets") == []


def test_sets_are_immutable_and_edits_are_detected(tmp_path):
    path = write_rationale_set(tmp_path / "s", records(), ORIGIN)
    with pytest.raises(DataError, match="already exists and rationale sets are immutable"):
        write_rationale_set(path, records(), ORIGIN)
    text = (path / "examples.jsonl").read_text()
    (path / "examples.jsonl").write_text(text.replace("because 1", "because one"))
    with pytest.raises(DataError, match="content hash .* does not match") as e:
        load_examples("rationale-set", "train", path=str(path))
    assert e.value.file.endswith("examples.jsonl")


def test_invalid_records_are_refused_before_anything_is_written(tmp_path):
    rows = records()
    rows[4] = {**rows[4], "label": "z"}
    with pytest.raises(DataError, match="not among the choices") as e:
        write_rationale_set(tmp_path / "s", rows, ORIGIN)
    assert e.value.row == 5 and e.value.field == "label"
    rows = records()
    rows[5] = {**rows[5], "id": rows[0]["id"]}
    with pytest.raises(DataError, match="duplicate id 'train0' in split 'train'"):
        write_rationale_set(tmp_path / "s", rows, ORIGIN)
    assert not (tmp_path / "s").exists() and leftovers(tmp_path) == []


def test_training_config_loads_a_set_with_the_teacher_correct_filter(tmp_path):
    wrong_every_third = lambda i: "b" if i % 3 == 0 else "abc"[i % 3]  # noqa: E731
    path = write_rationale_set(tmp_path / "s", records(teacher=wrong_every_third), ORIGIN)
    base = ["data.name=rationale-set", f"data.options.path={path}"]
    train, test = run_examples(load_config(None, base))
    assert len(train) == 6 and len(test) == 3 and train[0].meta["raw_output"] == "raw train0"
    kept, _ = run_examples(load_config(None, base + ["data.rationale_filter=teacher_correct"]))
    assert [ex.id for ex in kept] == ["train1", "train2", "train4", "train5"]
    with pytest.raises(DataError, match="no split 'dev'; its splits: train, test"):
        load_examples("rationale-set", "dev", path=str(path))


def test_a_set_name_resolves_under_the_home_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("COTDISTILL_HOME", str(tmp_path))
    write_rationale_set(tmp_path / "rationale_sets" / "mine", records(), ORIGIN)
    assert len(load_examples("rationale-set", "test", path="mine")) == 3
    with pytest.raises(DataError, match="not a rationale set folder"):
        load_examples("rationale-set", "test", path="nothing-here")


def test_compare_two_sets_of_one_dataset(tmp_path):
    a = write_rationale_set(tmp_path / "a", records(n_train=6, n_test=0), ORIGIN)
    other = lambda i: "a" if i < 2 else "abc"[i % 3]  # noqa: E731  (train1 wrong)
    rows_b = records(n_train=8, n_test=0, teacher=other)[2:]      # train2 … train7 ...
    rows_b[0] = {**rows_b[0], "teacher_label": None, "teacher_correct": None}   # train2 unparsed
    b = write_rationale_set(tmp_path / "b", records(n_train=2, n_test=0, teacher=other) + rows_b,
                            ORIGIN)
    c = compare_sets(a, b)
    assert c["same_dataset"] and (c["shared"], c["only_a"], c["only_b"]) == (6, 0, 2)
    assert c["id_jaccard"] == 6 / 8 and c["gold_mismatches"] == 0
    assert c["n_both_labelled"] == 5 and c["teacher_agreement"] == 4 / 5
    assert (c["both_correct"], c["only_a_correct"], c["only_b_correct"]) == (4, 2, 0)
    assert c["a"]["teacher_accuracy"] == 1.0 and c["b"]["n_unparsed"] == 1
    assert c["a"]["rationale_words_mean"] == 2.0


# --- import from files ---------------------------------------------------------------------

GOOD = [{"key": "q1", "prompt": "Sky colour?", "options": list(COLOURS), "answer": "B",
         "why": "Blue light scatters.", "teacher": "(b)"},
        {"key": "q2", "prompt": "Grass colour?", "options": list(COLOURS), "answer": "c",
         "why": "Chlorophyll is green.", "teacher": "a"}]
COLUMNS = {"id": "key", "question": "prompt", "choices": "options", "label": "answer",
           "rationale": "why", "teacher_label": "teacher"}


def write_jsonl(path, rows, broken_line=None):
    lines = [json.dumps(r) for r in rows]
    if broken_line is not None:
        lines.insert(broken_line - 1, '{"key": "q9", "prompt": ')
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_import_jsonl_and_csv_files(tmp_path):
    train = write_jsonl(tmp_path / "train.jsonl", GOOD)
    test = tmp_path / "test.csv"
    test.write_text("key,prompt,options,answer,why,teacher\n"
                    'q3,Snow colour?,"[""red"", ""blue"", ""white""]",c,Snow reflects.,\n')
    path = import_file({"train": train, "test": test}, tmp_path / "set", columns=COLUMNS,
                       teacher="my annotators")
    rs = open_rationale_set(path)
    assert rs.splits == ["train", "test"] and rs.provenance["source"] == "file"
    # no teacher answer was read (a file's teacher label is refused if unreadable): none unparsed
    assert rs.provenance["teacher_accuracy"] == 1 / 3 and rs.provenance["n_unparsed"] == 0
    assert rs.provenance["teacher_accuracy_by_split"] == {"train": 0.5, "test": 0.0}
    assert rs.provenance["dataset"]["files"]["test"] == str(test)
    assert rs.examples("test")[0].choices == ("red", "blue", "white")


def bad_case(tmp_path, case):
    rows = [dict(r) for r in GOOD] + [dict(GOOD[0], key="q3")]
    if case == "missing column":
        del rows[1]["answer"]
    elif case == "bad label":
        rows[2]["answer"] = "(e)"
    elif case == "empty question":
        rows[1]["prompt"] = "   "
    elif case == "duplicate id":
        rows[2]["key"] = "q1"
    return write_jsonl(tmp_path / "in.jsonl", rows, broken_line=3 if case == "bad JSON" else None)


@pytest.mark.parametrize("case, row, field, message", [
    ("missing column", 2, "answer", "missing field"),
    ("bad label", 3, "answer", "label not among the choices"),
    ("empty question", 2, "prompt", "empty value"),
    ("duplicate id", 3, "key", "duplicate id 'q1', first seen at row 1"),
    ("bad JSON", 3, None, "line 3 is not valid JSON"),
])
def test_each_malformed_input_names_file_row_field_and_leaves_no_set(tmp_path, case, row, field,
                                                                      message):
    file = bad_case(tmp_path, case)
    with pytest.raises(DataError, match=message) as e:
        import_file(file, tmp_path / "out" / "set", columns=COLUMNS)
    assert (e.value.file, e.value.row, e.value.field) == (str(file), row, field)
    assert f"file {file}" in str(e.value) and f"row {row}" in str(e.value)
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_csv_missing_column_names_the_header(tmp_path):
    file = tmp_path / "in.csv"
    file.write_text("key,prompt,options\nq1,Sky?,\"[\"\"a\"\",\"\"b\"\"]\"\n")
    with pytest.raises(DataError) as e:
        import_file(file, tmp_path / "set", columns=COLUMNS)
    assert (e.value.row, e.value.field) == (0, "answer") and not (tmp_path / "set").exists()


# --- import published releases --------------------------------------------------------------

def test_import_a_release_folder(tmp_path):
    path = import_release("svamp-dsbs", data_dir() / "svamp-dsbs", tmp_path / "svamp")
    rs = open_rationale_set(path)
    p = rs.provenance
    assert p["splits"] == {"train": 800, "test": 200} and p["source"] == "release"
    assert p["teacher"]["name"].startswith("PaLM-540B") and p["gold_conditioned"] is False
    correct = sum(bool(ex.teacher_correct) for ex in load_examples("svamp-dsbs", "train"))
    correct += sum(bool(ex.teacher_correct) for ex in load_examples("svamp-dsbs", "test"))
    assert p["teacher_accuracy"] == correct / 1000
    assert p["n_with_rationale"] == 1000 - 13                       # 11 + 2 truncated loops
    obqa = import_release("openbookqa-tinyllm", data_dir() / "openbookqa-tinyllm",
                          tmp_path / "obqa", splits=["test"], teacher="llama")
    p = open_rationale_set(obqa).provenance
    assert p["gold_conditioned"] is None and p["dataset"]["options"] == {"teacher": "llama"}


def test_release_import_errors_leave_no_set(tmp_path):
    with pytest.raises(DataError, match="unknown release 'svamp'"):
        import_release("svamp", data_dir() / "svamp-dsbs", tmp_path / "x")
    with pytest.raises(DataError, match="unknown option 'dedup'.*accepted: dedupe"):
        import_release("strategyqa-mario", data_dir() / "strategyqa-mario", tmp_path / "x",
                       dedup=False)
    copy = shutil.copytree(data_dir() / "svamp-dsbs", tmp_path / "copy")
    (copy / "svamp_test.json").chmod(0o644)
    lines = (copy / "svamp_test.json").read_text().splitlines()
    lines[4] = json.dumps({"input": "How many?", "label": "( 2 +"})
    (copy / "svamp_test.json").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match="not plain arithmetic") as e:
        import_release("svamp-dsbs", copy, tmp_path / "x")
    assert (e.value.row, e.value.field) == (5, "label") and e.value.file.endswith("svamp_test.json")
    assert not (tmp_path / "x").exists() and leftovers(tmp_path) == []


# --- the rationale length cap ----------------------------------------------------------------

def test_a_rationale_over_the_cap_is_refused_with_file_and_row_before_anything_is_written(tmp_path):
    rows = [dict(GOOD[0]), dict(GOOD[1], why="x" + " x" * 10)]   # 21 characters
    train = write_jsonl(tmp_path / "train.jsonl", rows)
    with pytest.raises(DataError) as e:
        import_file(train, tmp_path / "out" / "set", columns=COLUMNS, max_rationale=20)
    assert str(e.value) == (f"file {train}, row 2, field 'rationale': the rationale of example 'q2' (split "
                            f"'train') has 21 characters, more than the cap of 20 (--max-rationale-chars or "
                            f"$COTDISTILL_MAX_RATIONALE_CHARS raises it)")
    assert not (tmp_path / "out").exists() or leftovers(tmp_path / "out") == []
    path = import_file(train, tmp_path / "ok", columns=COLUMNS, max_rationale=21)       # at the cap: kept
    assert open_rationale_set(path).provenance["n_examples"] == 2


def test_the_cap_defaults_to_20000_characters_and_the_environment_changes_it(tmp_path, monkeypatch):
    from cotdistill.data.store import max_rationale_chars
    monkeypatch.delenv("COTDISTILL_MAX_RATIONALE_CHARS", raising=False)
    assert max_rationale_chars() == 20_000
    train = write_jsonl(tmp_path / "train.jsonl", [dict(GOOD[0], why="y" + " y" * 10_000)])
    with pytest.raises(DataError, match="row 1, field 'rationale'.* 20,001 characters, more than the cap of 20,000"):
        import_file(train, tmp_path / "a", columns=COLUMNS)
    monkeypatch.setenv("COTDISTILL_MAX_RATIONALE_CHARS", "30000")
    assert max_rationale_chars() == 30_000
    assert import_file(train, tmp_path / "b", columns=COLUMNS).exists()
    monkeypatch.setenv("COTDISTILL_MAX_RATIONALE_CHARS", "many")
    with pytest.raises(DataError) as e:
        import_file(train, tmp_path / "c", columns=COLUMNS)
    assert str(e.value) == "$COTDISTILL_MAX_RATIONALE_CHARS must be a whole number of characters above 0, found 'many'"
    assert not (tmp_path / "a").exists() and not (tmp_path / "c").exists()


def test_a_release_with_a_rationale_over_the_cap_is_refused(tmp_path):
    with pytest.raises(DataError, match=r"field 'rationale': the rationale of example .* more than the cap of 5 "):
        import_release("svamp-dsbs", data_dir() / "svamp-dsbs", tmp_path / "svamp", max_rationale=5)
    assert not (tmp_path / "svamp").exists()


def test_the_import_command_takes_the_cap(tmp_path):
    import subprocess
    import sys
    train = write_jsonl(tmp_path / "train.jsonl", [dict(GOOD[0], why="zz" + " z" * 24)])
    args = [sys.executable, "-m", "cotdistill.cli", "data", "import", str(train), "--out", str(tmp_path / "s")]
    args += [f"--column={k}={v}" for k, v in COLUMNS.items()]
    refused = subprocess.run(args + ["--max-rationale-chars", "49"], capture_output=True, text=True, timeout=120)
    assert refused.returncode != 0 and "row 1, field 'rationale'" in refused.stderr, refused.stderr
    assert "50 characters, more than the cap of 49" in refused.stderr and not (tmp_path / "s").exists()
    help_text = subprocess.run([sys.executable, "-m", "cotdistill.cli", "data", "import", "--help"],
                               capture_output=True, text=True, timeout=120).stdout
    assert "--max-rationale-chars" in help_text and "20,000" in help_text


# --- issue 23: question identity at import, provenance counts ----------------------------------

FIX = __import__("pathlib").Path(__file__).parent / "data" / "fixtures"
CHAINS = {"label": "answer", "rationale": "chain", "teacher_correct": "teacher_right"}


def test_three_chains_per_question_import_with_per_split_accuracy_and_no_false_unparsed(tmp_path):
    path = import_file(FIX / "chains.jsonl", tmp_path / "s", holdout=0.25, seed=0, kind="yes_no",
                       columns=CHAINS)
    p = open_rationale_set(path).provenance
    assert p["splits"] == {"train": 27, "test": 3}
    # every third chain's teacher was wrong; the test split keeps each question's first row
    assert p["teacher_accuracy_by_split"] == {"train": 18 / 27, "test": 1.0}
    assert p["n_unparsed"] == 0                       # the file holds flags, not teacher answers
    assert p["extra"]["import"]["test"]["n_duplicates_dropped"] == 6
    assert p["dataset"]["keep_duplicate_test_rows"] is False
    kept = import_file(FIX / "chains.jsonl", tmp_path / "k", holdout=0.25, seed=0, kind="yes_no",
                       columns=CHAINS, keep_duplicate_test_rows=True)
    assert open_rationale_set(kept).provenance["splits"] == {"train": 27, "test": 9}


def test_unparsed_teacher_answers_are_counted_only_where_there_is_an_answer():
    from cotdistill.data.store import build_provenance
    rows = [dict(r, teacher_label=None) if i < 2 else r for i, r in enumerate(records())]
    assert build_provenance(rows, ORIGIN, "x")["n_unparsed"] == 2          # a teacher's replies
    none_answered = dataclasses.replace(ORIGIN, answered=lambda r: False)
    assert build_provenance(rows, none_answered, "x")["n_unparsed"] == 0
    some = dataclasses.replace(ORIGIN, answered=lambda r: r["id"] == "train0")
    assert build_provenance(rows, some, "x")["n_unparsed"] == 1


def test_a_split_other_than_train_keeps_one_row_per_question(tmp_path):
    train = tmp_path / "train.jsonl"
    test = tmp_path / "test.jsonl"
    train.write_text(json.dumps({"question": "A?", "choices": ["x", "y"], "label": "a",
                                 "rationale": "First reason here."}) + "\n")
    rows = [{"question": q, "choices": c, "label": "a", "rationale": f"Reason number {i}."}
            for i, (q, c) in enumerate([("B?", ["x", "y"]), ("B?", ["x", "y"]), ("b", ["X", "y"]),
                                        ("B?", ["y", "x"])])]
    test.write_text("".join(json.dumps(r) + "\n" for r in rows))
    from cotdistill.data.store import read_import
    split = read_import({"train": train, "test": test})
    assert [e.id for e in split["test"]] == ["1", "4"]     # 'b' with X/y is 'B?' with x/y again
    assert split["test"][0].meta["duplicates_dropped"] == 2
    assert len(read_import({"train": train, "test": test},
                           keep_duplicate_test_rows=True)["test"]) == 4
