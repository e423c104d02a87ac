"""The importer's layouts (issue 14, layouts 1-10), one fixture file each under fixtures/, and the
silent failures that must now be errors or correct imports."""

from pathlib import Path

import pytest

from cotdistill.data import load_examples
from cotdistill.data.choices import split_choices
from cotdistill.data.labels import to_bool, to_letter, to_yes_no
from cotdistill.data.layouts import MISSING, pick
from cotdistill.examples import DataError, Example

FIX = Path(__file__).parent / "fixtures"
SKY = Example("q1", "Sky colour?", "b", ("red", "blue"), "Air scatters short wavelengths.")
GRASS = Example("q2", "Grass colour?", "a", ("green", "blue"), "Chlorophyll reflects it.")


def load(name, split="train", **options):
    return load_examples("file", split, path=str(FIX / name), **options)


def test_json_array_with_letters_in_any_bracket():
    assert load("array.json", columns={"label": "answer"}) == [SKY, GRASS]


def test_json_object_keyed_by_row_number_uses_the_key_as_id():
    examples = load("keyed.json", columns={"label": "answer", "rationale": "why"})
    assert [e.id for e in examples] == ["0", "1"]
    assert [(e.question, e.label, e.rationale) for e in examples] == [
        ("Sky colour?", "b", SKY.rationale), ("Grass colour?", "a", GRASS.rationale)]


def test_headerless_unquoted_tsv_with_positional_columns_and_unescape():
    examples = load("positional.tsv", header=False, quoting=False, unescape=True,
                    embedded_choices=True,
                    columns={"question": "0", "label": "1", "rationale": "2"})
    assert examples[0].question == '"Sky colour?'
    assert examples[0].choices == ("red", 'blue"')  # quoting off keeps the literal quotes
    assert examples[0].rationale == '"Air scatters\nshort wavelengths."'
    assert [e.id for e in examples] == ["1", "2"] and examples[1].label == "a"


def test_quoting_option_reads_literal_quotes():
    assert load("quoted.csv", kind="yes_no")[0].question == 'He said "hi"'
    examples = load("unquoted.tsv", kind="yes_no", header=False, quoting=False,
                    columns={"question": "0", "label": "1"})
    assert examples[0].question == '"He said "hi" twice"'
    with pytest.raises(DataError, match="no-quoting") as e:
        load("unquoted.tsv", kind="yes_no", header=False, columns={"question": "0", "label": "1"})
    assert e.value.row == 1


def test_nested_fields_by_path():
    examples = load("nested.jsonl", columns={"question": "question.stem", "label": "answerKey",
                                             "choices": "question.choices[].text"})
    assert examples == [Example("q1", "Sky colour?", "b", ("red", "blue")),
                        Example("q2", "Grass colour?", "a", ("green", "blue"))]


def test_pick_paths():
    record = {"a": {"b": [{"c": 1}, {"c": 2}]}, "x.y": 3, "l": [[1, 2], [3]]}
    assert pick(record, "a.b[].c") == [1, 2]
    assert pick(record, "a.b[1].c") == 2
    assert pick(record, "x.y") == 3
    assert pick(record, "l[0][1]") == 2
    assert pick(record, "a.b[5].c") is MISSING and pick(record, "a.z") is MISSING


def test_embedded_choices_in_the_common_forms():
    examples = load("embedded.jsonl", columns={"question": "input"}, embedded_choices=True)
    assert [(e.question, e.choices, e.label) for e in examples] == [
        ("Where do you keep a phone?", ("pocket", "fridge", "oven"), "a"),
        ("Q: What is wet?", ("water", "sand"), "a"),
        ("Which is a fruit?", ("apple", "brick"), "a")]
    assert split_choices("Pick (A) one (B) two (C) (b) three") == (
        "Pick", ("one", "two", "(b) three"))
    assert split_choices("No choices here (b) only") is None


def test_a_row_whose_embedded_choices_cannot_be_parsed_is_named():
    with pytest.raises(DataError, match="no choices found in the question text") as e:
        load("embedded_bad.jsonl", columns={"question": "input"}, embedded_choices=True)
    assert (e.value.row, e.value.field) == (2, "input")


def test_choices_split_out_of_the_question_column_is_refused():
    """Why: the question itself became choice (a) and gold b pointed at the wrong text."""
    with pytest.raises(DataError, match="use embedded_choices"):
        load("embedded.jsonl", columns={"question": "input", "choices": "input"},
             choices_sep="(")


@pytest.mark.parametrize("value, fmt, expected", [
    ("B", "letter", "b"), ("(a)", "letter", "a"), ("c)", "letter", "c"), ("[C]", "letter", "c"),
    ("blue", "text", "b"), ("BLUE", "text", "b"), (0, "index", "a"), ("2", "index", "c"),
    (1, "index1", "a"), ("3", "index1", "c"), ("Sentence B", "sentence", "b"),
    ("option 3", "sentence", "c"), ("d", "letter", None), (3, "index", None), (0, "index1", None),
    ("purple", "text", None), (True, "index", None)])
def test_label_formats(value, fmt, expected):
    assert to_letter(value, fmt, ("red", "blue", "green")) == expected


def test_yes_no_and_flags():
    assert [to_yes_no(v) for v in ("Yes", "FALSE", True, "0", "maybe")] == [
        "yes", "no", "yes", "no", None]
    assert [to_bool(v) for v in (True, "true", "No", "x")] == [True, True, False, None]


def test_sentence_style_labels():
    examples = load("sentence.csv", choices_sep="|", label_format="sentence",
                    columns={"question": "id"})
    assert [e.label for e in examples] == ["b", "a"]


def test_rationales_in_numbered_files_aligned_by_position():
    examples = load("questions.json", kind="yes_no", columns={"label": "answer"},
                    rationales=[str(FIX / "rationales_0.json"), str(FIX / "rationales_1.json")])
    assert [(e.id, e.label, e.rationale) for e in examples] == [
        ("q1", "yes", "Air scatters blue light."), ("q2", "no", "Fish swim; they lack wings."),
        ("q3", "yes", "Ice is frozen water.")]
    with pytest.raises(DataError, match="2 rationales .* for 3 rows"):
        load("questions.json", kind="yes_no", columns={"label": "answer"},
             rationales=str(FIX / "rationales_0.json"))


def test_several_rationales_per_question_by_id():
    examples = load("questions.json", kind="yes_no", columns={"label": "answer"},
                    rationales=str(FIX / "rationales_by_id.jsonl"))
    assert [(e.id, e.rationale) for e in examples] == [
        ("q1#0", "Air scatters blue light."), ("q1#1", "Rayleigh scattering."),
        ("q2", "Fish lack wings."), ("q3", None)]
    assert examples[0].meta["question_id"] == "q1"


def test_teacher_correct_flag_column_gives_the_files_own_accuracy():
    examples = load("teacher_flag.jsonl", kind="yes_no",
                    columns={"label": "answer", "teacher_correct": "pred_correct"})
    assert [e.teacher_correct for e in examples] == [True, True, False]
    assert [e.teacher_label for e in examples] == [None, None, None]


def test_boolean_column_mapped_to_teacher_label_is_refused():
    """Why: 'was the teacher right' read as the teacher's answer gave accuracy 0.434, not 0.938."""
    with pytest.raises(DataError, match="teacher_correct=pred_correct") as e:
        load("teacher_flag.jsonl", kind="yes_no",
             columns={"label": "answer", "teacher_label": "pred_correct"})
    assert (e.value.row, e.value.field) == (1, "pred_correct")


def test_rationale_cut_keeps_only_the_reasoning():
    examples = load("completions.jsonl", columns={"rationale": "completion"},
                    rationale_cut=["Thus, the answer is", "So the answer is", "Q:"])
    assert [e.rationale for e in examples] == ["Air scatters short wavelengths.",
                                               "Chlorophyll reflects that colour."]


def test_one_mapping_per_split(tmp_path):
    from cotdistill.rationale_sets import import_file, open_rationale_set

    path = import_file({"train": FIX / "array.json", "test": FIX / "keyed.json"}, tmp_path / "s",
                       columns={"label": "answer"},
                       split_options={"test": {"columns": {"label": "answer",
                                                           "rationale": "why"}}})
    rs = open_rationale_set(path)
    assert [e.rationale for e in rs.examples("test")] == [SKY.rationale, GRASS.rationale]


def test_one_file_as_train_and_test_is_refused(tmp_path):
    from cotdistill.rationale_sets import import_file

    with pytest.raises(DataError, match="--holdout") as e:
        import_file({"train": FIX / "array.json", "test": FIX / "array.json"}, tmp_path / "s",
                    columns={"label": "answer"})
    assert e.value.field == "split" and not (tmp_path / "s").exists()
