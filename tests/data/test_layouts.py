"""The importer's layouts (issue 14, layouts 1-10), one fixture file each under fixtures/, and the
silent failures that must now be errors or correct imports."""

from pathlib import Path

import pytest

from cotdistill.data import load_examples
from cotdistill.data.choices import split_choices
from cotdistill.data.labels import to_bool, to_letter, to_yes_no
from cotdistill.data.layouts import MISSING, pick
from cotdistill.errors import DataError
from cotdistill.examples import Example, question_id

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
    # one question: its two rationales share the question's identity (stem + choices)
    assert question_id(examples[0]) == question_id(examples[1]) != question_id(examples[2])


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
    from cotdistill.data.store import import_file, open_rationale_set

    path = import_file({"train": FIX / "array.json", "test": FIX / "keyed.json"}, tmp_path / "s",
                       columns={"label": "answer"},
                       split_options={"test": {"columns": {"label": "answer",
                                                           "rationale": "why"}}})
    rs = open_rationale_set(path)
    assert [e.rationale for e in rs.examples("test")] == [SKY.rationale, GRASS.rationale]


def test_one_file_as_train_and_test_is_refused(tmp_path):
    from cotdistill.data.store import import_file

    with pytest.raises(DataError, match="--holdout") as e:
        import_file({"train": FIX / "array.json", "test": FIX / "array.json"}, tmp_path / "s",
                    columns={"label": "answer"})
    assert e.value.field == "split" and not (tmp_path / "s").exists()


# --- issue 23: published releases' styles, each imported right or refused with its row --------
# Each fixture below was checked to import wrongly (or to be accepted silently) on the code before
# issue 23.

def test_lettered_blocks_in_upper_and_lower_case_with_and_without_a_header():
    examples = load("lettered.jsonl", embedded_choices=True)
    assert [(e.question, e.choices, e.label) for e in examples] == [
        ("Which molecule carries the genes of a cell?", ("DNA", "photosynthesis", "starch"), "a"),
        ("Which planet is the largest?", ("Mars", "Jupiter", "Venus", "Mercury"), "b"),
        ("What do green plants give off in daylight?", ("oxygen", "helium", "neon"), "a"),
        ("Where is a phone usually kept?", ("pocket", "fridge", "oven"), "a"),
        ("Which one is a mammal?", ("shark", "whale", "trout"), "b"),
        ("Which metal is liquid at room temperature?", ("mercury", "iron"), "a")]


def test_a_question_with_a_and_p_of_a_before_its_options_keeps_them_in_the_stem():
    examples = load("stem_markers.jsonl", embedded_choices=True)
    assert [(e.question, e.choices, e.label) for e in examples] == [
        ("Events A and B are disjoint. If P(A) = 1/3 and P(B) = 2/15, what is P(A or B)?",
         ("1/5", "7/15", "2/5"), "b"),
        ("Statement (a) says salt dissolves in water and statement (b) says sand does. "
         "Which is true?", ("only (a)", "only (b)", "both"), "a")]


def test_markers_that_skip_a_letter_are_refused_with_the_row(tmp_path):
    path = tmp_path / "gap.jsonl"
    path.write_text('{"question": "Q? (a) x (b) y (c) z", "label": "a"}\n'
                    '{"question": "Which? (a) x (b) y (d) z", "label": "a"}\n', encoding="utf-8")
    with pytest.raises(DataError) as e:
        load_examples("file", "train", path=str(path), embedded_choices=True)
    assert (e.value.row, e.value.field) == (2, "question")
    assert "the choice markers (a), (b) are followed by (d)" in str(e.value)


def test_text_labels_that_differ_only_in_case_match_exactly_first():
    examples = load("case_labels.jsonl", label_format="text")
    assert [e.label for e in examples] == ["b", "c", "b"]


def test_an_ambiguous_text_label_is_refused_naming_the_row_and_the_candidates():
    with pytest.raises(DataError) as e:
        load("case_labels_ambiguous.jsonl", label_format="text")
    assert (e.value.row, e.value.field) == (2, "label")
    assert "the text label 'rR' matches several choices up to case and spaces: (b) 'rr', " \
           "(c) 'Rr', (d) 'RR', and none exactly" in str(e.value)


def test_nan_rationales_at_one_percent_are_dropped_counted_or_refused():
    examples = load("nan_rationales.jsonl")
    assert len(examples) == 100 and examples[36].rationale is None
    assert examples[36].meta["placeholder"] == "nan"
    assert sum(e.rationale is None for e in examples) == 1
    kept = load("nan_rationales.jsonl", placeholders="keep")
    assert kept[36].rationale == "nan" and kept[36].meta["placeholder"] == "nan"
    with pytest.raises(DataError) as e:
        load("nan_rationales.jsonl", placeholders="error")
    assert (e.value.row, e.value.field) == (37, "rationale")
    assert "the rationale 'nan' is a placeholder (the word 'nan')" in str(e.value)
    with pytest.raises(DataError, match="unknown placeholders mode 'skip'"):
        load("nan_rationales.jsonl", placeholders="skip")


CHAINS = {"label": "answer", "rationale": "chain", "teacher_correct": "teacher_right"}


def test_three_chains_per_question_stay_together_and_test_keeps_one_row_per_question():
    from cotdistill.data.store import read_import

    files = {"train": str(FIX / "chains.jsonl")}
    split = read_import(files, holdout=0.25, seed=0, kind="yes_no", columns=CHAINS)
    train_q = {question_id(e) for e in split["train"]}
    test_q = [question_id(e) for e in split["test"]]
    assert (len(split["train"]), len(train_q), len(split["test"]), len(set(test_q))) == (27, 9, 3, 3)
    assert not train_q & set(test_q)
    assert [e.meta["duplicates_dropped"] for e in split["test"]] == [2, 2, 2]
    kept = read_import(files, holdout=0.25, seed=0, kind="yes_no", columns=CHAINS,
                       keep_duplicate_test_rows=True)
    assert len(kept["test"]) == 9 and {question_id(e) for e in kept["test"]} == set(test_q)


def test_generic_stems_with_different_choices_are_different_questions():
    from cotdistill.data.report import data_report
    from cotdistill.data.store import read_import

    examples = load("generic_stems.jsonl", label_format="sentence")
    assert len({e.question for e in examples}) == 1
    assert len({question_id(e) for e in examples}) == 8
    assert data_report({"train": examples})["warnings"] == []
    split = read_import({"train": str(FIX / "generic_stems.jsonl")}, holdout=0.25, seed=0,
                        label_format="sentence")
    assert (len(split["train"]), len(split["test"])) == (6, 2)
    assert data_report(split)["overlap"]["test"]["normalized"] == 0


def test_rationale_files_in_the_wrong_order_are_refused():
    rationales = [str(FIX / "embedded_rationales_1.json"), str(FIX / "embedded_rationales_0.json")]
    with pytest.raises(DataError) as e:
        load("embedded_questions.json", columns={"label": "answer"}, rationales=rationales)
    assert e.value.file.endswith("embedded_rationales_1.json") and e.value.row == 0
    assert "embeds the question 'Which is a conductor?' but is matched to row 0 of " \
           "embedded_questions.json, whose question is 'Which gas do plants take in?'" \
           in str(e.value)
    right = load("embedded_questions.json", columns={"label": "answer"},
                 rationales=rationales[::-1])
    assert [e.rationale.split("\n")[0] for e in right] == [
        "Question: Which gas do plants take in?", "Question: What melts ice fastest?",
        "Question: Which is a conductor?"]


def test_a_rationale_object_with_another_question_is_refused(tmp_path):
    side = tmp_path / "by_id.jsonl"
    side.write_text('{"id": "q1", "question": "Can fish fly?", "rationale": "No wings."}\n',
                    encoding="utf-8")
    with pytest.raises(DataError) as e:
        load("questions.json", kind="yes_no", columns={"label": "answer"}, rationales=str(side))
    assert (e.value.row, e.value.field) == (1, "rationales") and "Can fish fly?" in str(e.value)


KEYED = {"label": "gold_label", "rationale": "predicted_rationale",
         "teacher_label": "predicted_label"}


def test_a_keyed_object_in_a_jsonl_file_names_format_json():
    with pytest.raises(DataError) as e:
        load("keyed_object.jsonl", columns=KEYED, embedded_choices=True)
    assert (e.value.row, e.value.field) == (1, "format")
    assert "not JSON Lines: read the file as one JSON object with --format json" in str(e.value)
    examples = load("keyed_object.jsonl", format="json", columns=KEYED, embedded_choices=True)
    assert [(e.id, e.question, len(e.choices), e.label, e.teacher_label) for e in examples] == [
        ("0", "Which of these is a prime number?", 8, "c", "c"),
        ("1", "Which animal lives in water?", 8, "d", "b")]
    assert examples[0].choices[2] == "7"


@pytest.mark.parametrize("name, options, row, option", [
    ("case_labels.jsonl", {}, 1, "use --label-format text"),
    ("chains.jsonl", {"columns": CHAINS}, 1, "use --kind yes_no"),
    ("positional.tsv", {}, 0, "read it with --no-header"),
    ("keyed_object.jsonl", {}, 1, "--format json"),
    ("embedded.jsonl", {"columns": {"question": "input"}}, 1, "use --embedded-choices"),
    ("numeric_statements.jsonl", {}, 1, "use --kind numeric"),
])
def test_first_mistakes_name_the_option_that_fixes_them(name, options, row, option):
    with pytest.raises(DataError) as e:
        load(name, **options)
    assert e.value.row == row and option in str(e.value)
