"""Unit tests of the shared file mechanics: exact values, and errors that name file/row/field."""

import csv
import json

import pytest

from cotdistill.data.readers import (Where, answer_letter, cut_cot, read_json, read_jsonl,
                                     read_keyed_object, read_shards, read_table, read_text)
from cotdistill.errors import DataError


def write(path, text, encoding="utf-8"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding) if isinstance(text, str) else text)
    return path


# --- cut_cot / answer_letter ------------------------------------------------------------

def test_cut_cot_drops_hallucinated_continuation_and_answer():
    cot = ("Only math problem fits. So the answer is (d) math problem.\n\n"
           "Q: next question\nA: more. So the answer is (a) x.")
    assert cut_cot(cot, "So the answer is") == ("Only math problem fits.", "(d) math problem.")


def test_cut_cot_without_marker_has_neither_part():
    assert cut_cot("loops forever 32 sacks 32 sacks", "The answer is") == (None, None)


def test_cut_cot_custom_stop_and_empty_rationale():
    assert cut_cot("Thus, the answer is (b) y\n\nQ: q", "Thus, the answer is",
                   stop="\n\nQ:") == (None, "(b) y")


@pytest.mark.parametrize("answer, n, expected", [
    ("(d) math problem.", 5, "d"),
    ("(D) Math", 5, "d"),
    ("either (a) aquarium or (e) pond.", 5, None),   # hedged: two letters
    ("(c) cinema or (c) theatre", 5, "c"),
    ("(f) something", 5, None),                      # out of range
    ("math problem", 5, None),
    (None, 5, None),
])
def test_answer_letter(answer, n, expected):
    assert answer_letter(answer, n) == expected


# --- read_text / read_jsonl ---------------------------------------------------------------

def test_read_text_rejects_missing_empty_and_non_utf8(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        read_text(tmp_path / "nope.json")
    with pytest.raises(DataError, match="file is empty") as e:
        read_text(write(tmp_path / "empty.json", "  \n"))
    assert e.value.file.endswith("empty.json")
    bad = write(tmp_path / "latin.json", b'{"a": "ok"}\n{"a": "caf\xe9"}\n')
    with pytest.raises(DataError, match="not UTF-8: byte 0xe9 on line 2") as e:
        read_text(bad)
    assert (e.value.file, e.value.row) == (str(bad), 2)


def test_read_text_accepts_bom(tmp_path):
    assert read_text(write(tmp_path / "bom.csv", "\ufeffa,b\n")) == "a,b\n"


def test_read_jsonl_numbers_rows_by_line_and_skips_blank_lines(tmp_path):
    path = write(tmp_path / "x.jsonl", '{"a": 1}\n\n{"a": 2}\n')
    rows = read_jsonl(path)
    assert [(w.row, r) for w, r in rows] == [(1, {"a": 1}), (3, {"a": 2})]
    assert rows[1][0].note == "line 3 of the JSON Lines file"


def test_read_jsonl_bad_line(tmp_path):
    path = write(tmp_path / "x.jsonl", '{"a": 1}\n{"a": \n')
    with pytest.raises(DataError, match="line 2 is not valid JSON") as e:
        read_jsonl(path)
    assert e.value.row == 2 and "x.jsonl" in str(e.value)


def test_read_jsonl_detects_one_object_files(tmp_path):
    path = write(tmp_path / "mario.jsonl", json.dumps({"0": {"q": "a"}, "1": {"q": "b"}}))
    with pytest.raises(DataError, match="one JSON object keyed '0', '1', … holding 2 records"):
        read_jsonl(path)


def test_read_keyed_object(tmp_path):
    path = write(tmp_path / "m.jsonl", json.dumps({"0": {"q": "a"}, "1": {"q": "b"}}))
    assert [(w.row, r) for w, r in read_keyed_object(path)] == [(0, {"q": "a"}), (1, {"q": "b"})]
    bad = write(tmp_path / "b.jsonl", json.dumps({"0": {"q": "a"}, "2": {"q": "b"}}))
    with pytest.raises(DataError, match="record key '2' out of order") as e:
        read_keyed_object(bad)
    assert e.value.row == 1


def test_read_json_reports_line(tmp_path):
    with pytest.raises(DataError, match="not valid JSON") as e:
        read_json(write(tmp_path / "a.json", '[\n"a",\n]'))
    assert e.value.row == 3


# --- Where ------------------------------------------------------------------------------

def test_where_text_checks_missing_empty_and_type(tmp_path):
    where = Where(tmp_path / "f.jsonl", 7, "line 7 of the JSON Lines file")
    assert where.text({"q": "  hi "}, "q") == "hi"
    assert where.text({"q": ""}, "q", optional=True) is None
    assert where.text({}, "q", optional=True) is None
    with pytest.raises(DataError) as e:
        where.text({}, "q")
    assert str(e.value) == (f"file {tmp_path / 'f.jsonl'}, row 7, field 'q': missing field "
                            f"(line 7 of the JSON Lines file)")
    with pytest.raises(DataError, match="field 'q': empty value"):
        where.text({"q": " "}, "q")
    with pytest.raises(DataError, match="expected text, found int"):
        where.text({"q": 3}, "q")


# --- read_table -----------------------------------------------------------------------------

def test_read_table_rows_and_quote_none(tmp_path):
    path = write(tmp_path / "t.tsv", 'Question\tLabel\n"Quoted" title?\tno\n\nSecond\tyes\n')
    header, rows = read_table(path, ["Question", "Label"], "\t", quoting=csv.QUOTE_NONE)
    assert header == ["Question", "Label"]
    assert [(w.row, r) for w, r in rows] == [(1, {"Question": '"Quoted" title?', "Label": "no"}),
                                             (2, {"Question": "Second", "Label": "yes"})]
    assert rows[1][0].note == "data row 2 from 1, header excluded; file line 4"


def test_read_table_wrong_delimiter_names_expected_columns(tmp_path):
    path = write(tmp_path / "t.tsv", "Question,Rationale,Label\nq,r,(A)\n")
    with pytest.raises(DataError) as e:
        read_table(path, ["Question", "Rationale", "Label"], "\t")
    message = str(e.value)
    assert "expected tab-separated columns Question, Rationale, Label, found " \
           "'Question,Rationale,Label'" in message
    assert "comma-separated" in message and e.value.file == str(path)


def test_read_table_missing_column_and_bad_row(tmp_path):
    path = write(tmp_path / "t.csv", "question,label\nq,a\n")
    with pytest.raises(DataError, match="found 'question, label'") as e:
        read_table(path, ["question", "choices"], ",")
    assert e.value.field == "choices"
    path = write(tmp_path / "u.csv", "question,label\nq,a\nonly one\n")
    with pytest.raises(DataError, match="expected 2 comma-separated cells like the header, "
                                        "found 1") as e:
        read_table(path, ["question"], ",")
    assert e.value.row == 2


def test_read_table_header_only(tmp_path):
    with pytest.raises(DataError, match="header but no data rows"):
        read_table(write(tmp_path / "h.csv", "question,label\n"), ["question"], ",")


# --- read_shards ----------------------------------------------------------------------------

def shards(folder, split, sizes):
    for i, n in enumerate(sizes):
        write(folder / "llm" / f"{split}_CoT_{i}.json", json.dumps([f"r{i}-{k}" for k in range(n)]))


def test_read_shards_concatenates_in_numeric_order(tmp_path):
    shards(tmp_path, "train", [2] * 11 + [1])   # _CoT_10 must come after _CoT_9
    cots = read_shards(tmp_path, "train", 23, "items.json")
    assert cots[:3] == ["r0-0", "r0-1", "r1-0"] and cots[20:] == ["r10-0", "r10-1", "r11-0"]


def test_read_shards_count_mismatch(tmp_path):
    shards(tmp_path, "train", [2, 1])
    with pytest.raises(DataError, match=r"llm/train_CoT_\*\.json has 3 rationales for 4 items "
                                        r"in items\.json"):
        read_shards(tmp_path, "train", 4, "items.json")


def test_read_shards_short_middle_shard(tmp_path):
    shards(tmp_path, "train", [2, 1, 3])
    with pytest.raises(DataError, match="llm/train_CoT_1.json has 1 rationales but "
                                        "llm/train_CoT_0.json has 2") as e:
        read_shards(tmp_path, "train", 6, "items.json")
    assert e.value.file.endswith("train_CoT_1.json")


def test_read_shards_gap_and_none(tmp_path):
    with pytest.raises(DataError, match="no rationale shards llm/test_CoT_<i>.json"):
        read_shards(tmp_path, "test", 1, "items.json")
    shards(tmp_path, "train", [1, 1])
    (tmp_path / "llm" / "train_CoT_0.json").unlink()
    with pytest.raises(DataError, match="shard llm/train_CoT_0.json is missing"):
        read_shards(tmp_path, "train", 1, "items.json")


def test_read_shards_bad_element(tmp_path):
    write(tmp_path / "llm" / "dev_CoT_0.json", json.dumps(["ok", ""]))
    with pytest.raises(DataError, match="empty value at array index 1") as e:
        read_shards(tmp_path, "dev", 2, "items.json")
    assert e.value.row == 1


def test_line_separators_inside_cells_do_not_split_rows(tmp_path):
    path = write(tmp_path / "u.jsonl", '{"q": "a\u2028b"}\r\n{"q": "c"}\n')
    assert [r["q"] for _, r in read_jsonl(path)] == ["a\u2028b", "c"]
    path = write(tmp_path / "u.csv", 'q,label\n"two\nlines",a\nx\u2028y,b\n')
    _, rows = read_table(path, ["q"], ",")
    assert [(w.row, r["q"]) for w, r in rows] == [(1, "two\nlines"), (2, "x\u2028y")]
