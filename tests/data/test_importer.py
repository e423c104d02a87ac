"""The generic `file` importer: JSONL/CSV/TSV round trips with column mappings, every
label_format, the other kinds, and bad input that names file, row and column."""

import csv
import json

import pytest

from cotdistill.data import load_examples
from cotdistill.errors import DataError
from cotdistill.examples import Example

EXPECTED = [
    Example(id="q1", question="Sky colour?", choices=("red", "blue", "green"), label="b",
            rationale="The sky scatters blue light.", teacher_label="b"),
    Example(id="q2", question="Grass colour?", choices=("red", "blue", "green"), label="c",
            rationale=None, teacher_label="a"),
]
RECORDS = [  # our fields under the file's own names
    {"key": "q1", "prompt": "Sky colour?", "options": ["red", "blue", "green"], "answer": "B",
     "why": "The sky scatters blue light.", "teacher": "(b)"},
    {"key": "q2", "prompt": "Grass colour?", "options": ["red", "blue", "green"], "answer": "c",
     "why": "", "teacher": "a"},
]
COLUMNS = {"id": "key", "question": "prompt", "choices": "options", "label": "answer",
           "rationale": "why", "teacher_label": "teacher"}


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def write_table(path, records, delimiter, choices_sep=None):
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(records[0]), delimiter=delimiter)
        writer.writeheader()
        for r in records:
            options = r.get("options")
            if isinstance(options, list):
                cell = choices_sep.join(options) if choices_sep else json.dumps(options)
                r = {**r, "options": cell}
            writer.writerow(r)
    return path


def test_jsonl_round_trip(tmp_path):
    path = write_jsonl(tmp_path / "mine.jsonl", RECORDS)
    assert load_examples("file", "train", path=str(path), columns=COLUMNS) == EXPECTED


def test_csv_round_trip_with_json_choices(tmp_path):
    path = write_table(tmp_path / "mine.csv", RECORDS, ",")
    examples = load_examples("file", "test", path=path, columns=COLUMNS)
    assert examples == EXPECTED
    assert examples[1].meta == {"file": str(path), "row": 2}


def test_tsv_round_trip_with_separator(tmp_path):
    path = write_table(tmp_path / "mine.tsv", RECORDS, "\t", choices_sep="|")
    assert load_examples("file", "train", path=path, columns=COLUMNS, choices_sep="|") == EXPECTED


def test_format_option_overrides_extension(tmp_path):
    path = write_table(tmp_path / "mine.txt", RECORDS, "\t")
    assert load_examples("file", "train", path=path, columns=COLUMNS, format="tsv") == EXPECTED
    with pytest.raises(DataError, match="cannot tell the format from the extension"):
        load_examples("file", "train", path=path, columns=COLUMNS)


def test_default_column_names_and_row_number_ids(tmp_path):
    path = write_jsonl(tmp_path / "plain.jsonl", [
        {"question": "A or B?", "choices": ["A", "B"], "label": "a"},
        {"question": "B or A?", "choices": ["B", "A"], "label": "(B)", "rationale": "because it is"}])
    examples = load_examples("file", "train", path=path)
    assert [(e.id, e.label, e.rationale, e.teacher_label) for e in examples] == [
        ("1", "a", None, None), ("2", "b", "because it is", None)]


def test_paths_per_split(tmp_path):
    train = write_jsonl(tmp_path / "train.jsonl", RECORDS[:1])
    test = write_jsonl(tmp_path / "test.jsonl", RECORDS[1:])
    paths = {"train": str(train), "test": str(test)}
    assert load_examples("file", "test", paths=paths, columns=COLUMNS) == EXPECTED[1:]
    with pytest.raises(DataError, match="no file for split 'dev'; valid splits: train, test"):
        load_examples("file", "dev", paths=paths, columns=COLUMNS)
    with pytest.raises(DataError, match="exactly one of the options 'path'"):
        load_examples("file", "dev", paths=paths, path=str(train))


@pytest.mark.parametrize("label_format, labels", [
    ("letter", ["c", "(A)", "B"]),
    ("text", ["green", "Red", "blue"]),
    ("index", [2, "0", 1]),
])
def test_label_formats(tmp_path, label_format, labels):
    records = [{"question": f"q{i}", "choices": ["red", "blue", "green"], "label": label,
                "teacher_label": label} for i, label in enumerate(labels)]
    path = write_jsonl(tmp_path / "f.jsonl", records)
    examples = load_examples("file", "train", path=path, label_format=label_format)
    assert [e.label for e in examples] == ["c", "a", "b"]
    assert [e.teacher_label for e in examples] == ["c", "a", "b"]


def test_hugging_face_choices_layout(tmp_path):
    record = {"id": "x", "question_stem": "Q?", "answerKey": "B",
              "choices": {"text": ["one", "two"], "label": ["A", "B"]}}
    path = write_jsonl(tmp_path / "obqa.jsonl", [record])
    [example] = load_examples("file", "test", path=path,
                              columns={"question": "question_stem", "label": "answerKey"})
    assert (example.choices, example.label) == (("one", "two"), "b")


def test_yes_no_and_numeric_kinds(tmp_path):
    path = write_table(tmp_path / "yn.csv", [{"question": "Is it?", "label": "Yes"},
                                             {"question": "Is not?", "label": "false"}], ",")
    yes_no = load_examples("file", "train", path=path, kind="yes_no")
    assert [(e.label, e.choices, e.kind) for e in yes_no] == [("yes", ("yes", "no"), "yes_no"),
                                                               ("no", ("yes", "no"), "yes_no")]
    path = write_jsonl(tmp_path / "num.jsonl", [{"question": "2+2?", "label": 4.0},
                                                {"question": "half?", "label": "0.50",
                                                 "teacher_label": "1,000"}])
    numeric = load_examples("file", "train", path=path, kind="numeric")
    assert [(e.label, e.teacher_label, e.choices) for e in numeric] == [("4", None, None),
                                                                        ("0.5", "1000", None)]


# --- bad input ------------------------------------------------------------------------------

def error(tmp_path, name, text, **options):
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    with pytest.raises(DataError) as e:
        load_examples("file", "train", path=path, **options)
    assert e.value.file == str(path)
    return e.value


def test_label_not_among_choices(tmp_path):
    e = error(tmp_path, "f.csv", 'q,opts,ans\nA?,"[""x"", ""y""]",a\nB?,"[""x"", ""y""]",c\n',
              columns={"question": "q", "choices": "opts", "label": "ans"})
    assert (e.row, e.field) == (2, "ans") and "label not among the choices: 'c'" in str(e)


@pytest.mark.parametrize("label_format, label, message", [
    ("text", "purple", "'purple' is not one of ['x', 'y']"),
    ("index", "2", "'2' is not a 0-based index below 2"),
    ("index", "-1", "'-1' is not a 0-based index"),
    ("letter", "xy", "'xy' is not a letter a-b"),
])
def test_bad_labels_per_format(tmp_path, label_format, label, message):
    record = {"question": "Q?", "choices": ["x", "y"], "label": label}
    e = error(tmp_path, "f.jsonl", json.dumps(record) + "\n", label_format=label_format)
    assert (e.row, e.field) == (1, "label") and message in str(e)


def test_tsv_written_with_commas(tmp_path):
    e = error(tmp_path, "f.tsv", 'question,choices,label\nQ?,"[""x""]",a\n')
    assert ("expected tab-separated columns question, label, choices, found "
            "'question,choices,label'") in str(e)


def test_missing_column_and_missing_field(tmp_path):
    e = error(tmp_path, "f.csv", "question,label\nQ?,a\n")
    assert e.field == "choices" and "found 'question, label'" in str(e)
    e = error(tmp_path, "f.jsonl", '{"question": "Q?", "choices": ["x", "y"], "label": "a"}\n'
                                   '{"question": "Q?", "choices": ["x", "y"]}\n')
    assert (e.row, e.field) == (2, "label") and "missing field" in str(e)
    e = error(tmp_path, "g.csv", 'question,choices,label\nQ?,"[""x"", ""y""]",a\n',
              columns={"rationale": "why"})
    assert e.field == "why"


@pytest.mark.parametrize("cell, message", [
    ("x;y", "expected the choices as a JSON list"),
    ('"[""x""]"', "expected a list of at least 2 choices"),
    ('"[""x"", """"]"', "empty value: a choice is empty"),
])
def test_bad_choices(tmp_path, cell, message):
    e = error(tmp_path, "f.csv", f"question,choices,label\nQ?,{cell},a\n")
    assert (e.row, e.field) == (1, "choices") and message in str(e)


def test_empty_question_and_empty_label(tmp_path):
    e = error(tmp_path, "f.csv", 'question,choices,label\n ,"[""x"", ""y""]",a\n')
    assert (e.row, e.field) == (1, "question") and "empty value" in str(e)
    e = error(tmp_path, "g.csv", 'question,choices,label\nQ,"[""x"", ""y""]",\n')
    assert (e.row, e.field) == (1, "label") and "empty value" in str(e)


def test_non_utf8_empty_and_duplicate_ids(tmp_path):
    e = error(tmp_path, "f.csv", b'question,choices,label\nQ\xff,"[""x"", ""y""]",a\n')
    assert e.row == 2 and "not UTF-8" in str(e)
    e = error(tmp_path, "g.csv", b"")
    assert "file is empty" in str(e)
    e = error(tmp_path, "h.csv", 'id,question,choices,label\n7,Q,"[""x"", ""y""]",a\n'
                                 '7,R,"[""x"", ""y""]",b\n')
    assert (e.row, e.field) == (2, "id") and "duplicate id '7', first seen at row 1" in str(e)


def test_bad_options(tmp_path):
    path = write_jsonl(tmp_path / "f.jsonl", RECORDS)
    for options, message in [
        ({"format": "xml"}, "unknown format 'xml'"),
        ({"kind": "essay"}, "unknown kind 'essay'"),
        ({"label_format": "number"}, "unknown label_format 'number'"),
        ({"kind": "numeric", "label_format": "text"}, "label_format applies to multiple_choice"),
        ({"columns": {"answer": "x"}}, "unknown field 'answer' in 'columns'"),
        ({"sep": ","}, "unknown option 'sep' for dataset 'file'"),
    ]:
        with pytest.raises(DataError, match=message):
            load_examples("file", "train", path=path, **options)


# --- text a set cannot store, choices, duplicate keys, sizes (issue 22) -------------------------

@pytest.mark.parametrize("name, text, row, field, found", [
    ("f.jsonl", '{"question": "Q?", "choices": ["x", "y"], "label": "a"}\n'
                '{"question": "Q\\u0000?", "choices": ["x", "y"], "label": "a"}\n', 2, "question",
     "a NUL character (\\x00) at character 2"),
    ("f.jsonl", '{"question": "Q?", "choices": ["x", "y\\u0000"], "label": "a"}\n', 1, "choices",
     "a NUL character (\\x00) at character 2"),
    ("f.jsonl", '{"question": "Q?", "choices": ["x", "y"], "label": "a", "rationale": "\\ud800"}\n',
     1, "rationale", "a lone surrogate (\\ud800) at character 1"),
    ("f.csv", 'question,choices,label,why\nQ?,"[""x"", ""y""]",a,bec\x00ause\n', 1, "why",
     "a NUL character (\\x00) at character 4"),
    ("f.csv", 'question,choices,label\nQ?,x|y\x00,a\n', 1, "choices", "a NUL character (\\x00) at character 4"),
])
def test_text_holding_nul_or_a_lone_surrogate_is_refused_with_row_and_field(tmp_path, name, text, row,
                                                                             field, found):
    options = {"columns": {"rationale": "why"}} if "why" in text else {}
    if "x|y" in text:
        options["choices_sep"] = "|"
    e = error(tmp_path, name, text, **options)
    assert (e.row, e.field) == (row, field)
    assert f"the text holds {found}; remove it from the file (" in str(e)


def test_more_than_26_choices_is_reported_under_choices(tmp_path):
    record = {"question": "Q?", "choices": [f"c{i}" for i in range(27)], "label": "a"}
    e = error(tmp_path, "f.jsonl", json.dumps(record) + "\n")
    assert (e.row, e.field) == (1, "choices")
    assert "27 choices, more than the 26 letters a-z that label them" in str(e)


def test_duplicate_choices_are_counted_and_warned_not_refused(tmp_path):
    from cotdistill.data.report import data_report
    rows = [{"id": "a", "question": "Q1?", "choices": ["red", "Red ", "blue"], "label": "c"},
            {"id": "b", "question": "Q2?", "choices": ["red", "blue"], "label": "a"}]
    path = write_jsonl(tmp_path / "f.jsonl", rows)
    examples = load_examples("file", "train", path=str(path))
    report = data_report({"train": examples})
    assert (report["splits"]["train"]["n_duplicate_choices"],
            report["splits"]["train"]["duplicate_choices_examples"]) == (1, ["a"])
    assert ("train: 1 rows list the same choice twice (e.g. a): two letters name one answer, so "
            "scoring splits between them; remove the repeated choice") in report["warnings"]


@pytest.mark.parametrize("name, text, row, message", [
    ("f.jsonl", '{"question": "Q?", "choices": ["x", "y"], "label": "a", "label": "b"}\n', 1,
     "line 1: the key 'label' is written twice in one object; keep one"),
    ("f.json", '[{"question": "Q?", "choices": ["x", "y"], "label": "a"},\n'
               ' {"question": "R?", "question": "S?", "choices": ["x", "y"], "label": "a"}]', 1,
     "element 1 from 0, on line 2: the key 'question' is written twice in one object"),
    ("f.jsonl", '{"question": "Q?", "choices": ' + "[" * 70 + "]" * 70 + ', "label": "a"}\n', 1,
     "line 1: nested 71 levels deep, more than 64"),
    ("f.json", "[" * 200_000, None, "nested 200,000 levels deep, more than 64"),
])
def test_duplicate_keys_and_deep_json_name_the_row(tmp_path, name, text, row, message):
    e = error(tmp_path, name, text)
    assert e.row == row and message in str(e) and "\n" not in str(e)


def test_utf16_data_and_a_json_document_above_the_cap(tmp_path, monkeypatch):
    e = error(tmp_path, "f.jsonl", '{"question": "Q?"}\n'.encode("utf-16"))
    assert str(e).endswith("the file is UTF-16, not UTF-8; re-save it as UTF-8")
    from cotdistill.data import readers
    monkeypatch.setattr(readers, "MAX_JSON_BYTES", 1 << 20)
    e = error(tmp_path, "g.json", json.dumps([{"question": "q" * 1000, "choices": ["x", "y"],
                                                "label": "a"}] * 1100))
    assert "more than the 1 MiB a whole-file JSON document may have; write it as JSON Lines" in str(e)


def test_a_line_above_the_line_cap_is_refused_before_it_is_read_whole(tmp_path, monkeypatch):
    from cotdistill.data import layouts
    monkeypatch.setattr(layouts, "MAX_LINE_BYTES", 100)
    e = error(tmp_path, "f.jsonl", '{"question": "Q?", "choices": ["x", "y"], "label": "a"}\n'
                                   '{"question": "' + "q" * 200 + '"}\n')
    assert e.row == 2 and "line 2 is longer than" in str(e)
