"""The five local loaders on the real releases (counts from each SOURCE.md), then on small broken
copies of their layouts written to tmp_path."""

import functools
import json
import re

import pytest

from cotdistill.data import load_examples
from cotdistill.errors import DataError
from cotdistill.examples import Example


@functools.lru_cache(maxsize=None)
def load(name, split, **options):
    return load_examples(name, split, **options)


def teacher_correct(examples):
    return sum(1 for e in examples if e.teacher_correct)


# --- CommonsenseQA (Distilling Step-by-Step) ------------------------------------------------

def test_commonsenseqa_counts():
    assert len(load("commonsenseqa-dsbs", "train")) == 9741
    assert len(load("commonsenseqa-dsbs", "test")) == 1221


def test_commonsenseqa_first_record():
    first = load("commonsenseqa-dsbs", "train")[0]
    assert first == Example(
        id="6b819727eb8a670df26a7ffad036c119",
        question='"There are 10 apples on an apple tree.  Three fall off.  Now there are X '
                 'apples."  What is this an example of?',
        choices=("park", "coloring book", "garden center", "math problem", "gravity"),
        label="d",
        rationale="The answer must be something that has to do with the above problem. Of the "
                  "above choices, only math problem has to do with the above problem.",
        teacher_label="d")
    assert first.meta["teacher_answer"] == "(d) math problem."


@pytest.mark.parametrize("split", ["train", "test"])
def test_commonsenseqa_rationales_are_cut(split):
    for example in load("commonsenseqa-dsbs", split):
        assert example.rationale and "Q:" not in example.rationale
        assert "So the answer is" not in example.rationale


def dsbs_answer_text(answer):
    """Distilling-Step-by-Step's own parse of the teacher's answer text (data_utils.py)."""
    try:
        text = re.split(r"\(.\)", answer)[1].strip()
    except IndexError:
        return " "
    return text[:-1] if text.endswith(".") else text


@pytest.mark.parametrize("split, by_text, by_letter, unparsed", [
    ("train", 7234, 7341, 287), ("test", 943, 958, 25)])
def test_commonsenseqa_teacher_accuracy(split, by_text, by_letter, unparsed):
    examples = load("commonsenseqa-dsbs", split)
    # SOURCE.md's count compares DSbS's parsed answer text with the gold text, case-sensitively
    assert sum(dsbs_answer_text(e.meta["teacher_answer"]) == e.choices["abcde".index(e.label)]
               for e in examples) == by_text
    # our teacher_label is the single '(x)' letter; hedges like 'either (a) … or (e) …' are None
    assert teacher_correct(examples) == by_letter
    assert sum(e.teacher_label is None for e in examples) == unparsed


# --- OpenBookQA (TinyLLM) -------------------------------------------------------------------

@pytest.mark.parametrize("split, n", [("train", 4957), ("valid", 500), ("test", 500)])
def test_openbookqa_counts_and_flan_teacher_always_right(split, n):
    examples = load("openbookqa-tinyllm", split)
    assert len(examples) == n and teacher_correct(examples) == n
    assert all(len(e.choices) == 4 and e.meta["teacher"] == "flan" for e in examples)
    for example in examples:
        assert "Thus, the answer is" not in example.rationale
        assert " llama rationale:" not in example.rationale and "\n\nQ:" not in example.rationale


def test_openbookqa_first_record_flan():
    first = load("openbookqa-tinyllm", "train")[0]
    assert first == Example(
        id="7-980", question="The sun is responsible for",
        choices=("puppies learning new tricks", "children growing up and getting old",
                 "flowers wilting in a vase", "plants sprouting, blooming and wilting"),
        label="d", rationale="Sun is responsible for plants sprouting, blooming and wilting.",
        teacher_label="d")


def test_openbookqa_llama_teacher_is_verbatim():
    examples = load("openbookqa-tinyllm", "train", teacher="llama")
    first = examples[0]
    assert first.rationale.startswith("Let's think step by step.\nIf the sun is not there, "
                                      "the plants will not sprout, bloom and wilt.")
    assert first.teacher_label is None and first.meta["teacher"] == "llama"
    assert all(" llama rationale:" not in e.rationale for e in examples)
    assert sum(e.teacher_label is not None for e in examples) == 194
    assert teacher_correct(examples) == 171


def test_openbookqa_unknown_teacher():
    with pytest.raises(DataError, match="unknown teacher 'gpt'; expected one of flan, llama"):
        load_examples("openbookqa-tinyllm", "test", teacher="gpt")


# --- QuaRel (MaRio) -------------------------------------------------------------------------

@pytest.mark.parametrize("split, options, n", [
    ("train", {}, 1757), ("train", {"dedupe": False}, 8203), ("dev", {}, 278), ("test", {}, 552)])
def test_quarel_counts(split, options, n):
    assert len(load("quarel-mario", split, **options)) == n


def test_quarel_first_record_and_ids():
    examples = load("quarel-mario", "train")
    assert examples[0] == Example(
        id="quarel-train-0001",
        question="The boys were racing their cars in the soapbox derby and found that the cars "
                 "that _____ moved faster.",
        choices=("weighed more", "weighed less"), label="b",
        rationale="When something is lighter, it is easier to move faster. Thus, the cars that "
                  "weighed less moved faster.")
    assert examples[-1].id == "quarel-train-1757"
    every = load("quarel-mario", "train", dedupe=False)
    assert [e.id for e in every[:3]] == ["quarel-train-0001-row00001", "quarel-train-0001-row00002",
                                         "quarel-train-0001-row00003"]


def test_quarel_dev_test_have_no_rationales():
    test = load("quarel-mario", "test")
    assert all(e.rationale is None for e in test + load("quarel-mario", "dev"))
    assert test[0].question == "Does the Sun appear dimmer on Earth or Pluto?"
    assert (test[0].choices, test[0].label) == (("Pluto", "Earth"), "a")


def test_quarel_gpt3_source_keeps_wrong_teacher_samples():
    every = load("quarel-mario", "train", source="gpt3", dedupe=False)
    assert len(every) == 9650 and teacher_correct(every) == 8203
    assert len(load("quarel-mario", "train", source="gpt3")) == 1930
    test = load("quarel-mario", "test", source="gpt3")
    assert len(test) == 552 and teacher_correct(test) == 460
    assert every[0].id == "quarel-gpt3-train-0001-row00000" and every[0].teacher_label == "b"


def test_quarel_gpt3_has_no_dev_and_source_is_checked():
    with pytest.raises(DataError, match="source 'gpt3' has no 'dev' split"):
        load_examples("quarel-mario", "dev", source="gpt3")
    with pytest.raises(DataError, match="unknown source 'flan'"):
        load_examples("quarel-mario", "dev", source="flan")
    with pytest.raises(DataError, match="option 'dedupe' must be true or false"):
        load_examples("quarel-mario", "dev", dedupe="no")


# --- StrategyQA (MaRio) ---------------------------------------------------------------------

@pytest.mark.parametrize("split, options, n", [
    ("train", {}, 1385), ("train", {"dedupe": False}, 5492), ("dev", {}, 184), ("test", {}, 458)])
def test_strategyqa_counts(split, options, n):
    examples = load("strategyqa-mario", split, **options)
    assert len(examples) == n
    assert all(e.kind == "yes_no" and e.choices == ("yes", "no") for e in examples)


def test_strategyqa_first_record():
    assert load("strategyqa-mario", "train")[0] == Example(
        id="strategyqa-train-0001", question="Can I build a house on an asteroid?", label="no",
        choices=("yes", "no"), kind="yes_no",
        rationale="Building a house on an asteroid is impossible as of now due to the lack of "
                  "technologies and resources needed. It would be extremely difficult to build a "
                  "house that could withstand the extreme temperatures, radiation, and extreme "
                  "gravitational pull.")


def test_strategyqa_keeps_quotes_at_cell_start():
    # the TSVs are unquoted: a rationale starting with '"' must keep it
    rationales = [e.rationale for e in load("strategyqa-mario", "train", dedupe=False)]
    assert ('"A Tale of Two Cities" is a novel by Charles Dickens. It is not a parody of the '
            'Bible.') in rationales


def test_strategyqa_test_rationales_are_human_facts():
    first = load("strategyqa-mario", "test")[0]
    assert first.rationale.startswith("When Gauss died in 1855, his brain was preserved")
    assert first.meta["rationale_source"] == "strategyqa facts (human)"


# --- SVAMP (Distilling Step-by-Step) --------------------------------------------------------

def test_svamp_counts_and_first_record():
    train, test = load("svamp-dsbs", "train"), load("svamp-dsbs", "test")
    assert (len(train), len(test)) == (800, 200)
    first = train[0]
    assert first == Example(
        id="svamp-train-0001",
        question="Luke scored 84 points after playing 2 rounds of a trivia game. If he gained the "
                 "same number of points each round\nHow many points did he score per round?",
        label="42", kind="numeric",
        rationale="Luke scored 84 points after 2 rounds. So he scored 84 points in 2 rounds. "
                  "84 / 2 = 42.",
        teacher_label="42")
    assert first.meta["equation"] == "( 84.0 / 2.0 )"
    assert test[1].label == "1"   # ( 10.0 - ( 6.0 + 3.0 ) )


def test_svamp_rationales_and_teacher():
    train = load("svamp-dsbs", "train")
    assert sum(e.rationale is not None for e in train) == 789   # 11 never say 'The answer is'
    for example in train:
        assert "Q:" not in (example.rationale or "")
        assert "The answer is" not in (example.rationale or "")
    assert teacher_correct(train) == 595
    assert teacher_correct(load("svamp-dsbs", "test")) == 155


# --- broken copies of the layouts -----------------------------------------------------------

def write_json_lines(path, records):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")


def cqa_item(i, **changes):
    item = {"id": f"id{i}", "question": f"Question {i}?", "choices": list("vwxyz"),
            "answer": "x"}
    return {**item, **changes}


def make_cqa(root, items, shard_sizes=None):
    """A commonsenseqa-dsbs folder with these train items and shards of the given sizes."""
    folder = root / "commonsenseqa-dsbs"
    write_json_lines(folder / "cqa_train.json", items)
    sizes = shard_sizes or [len(items)]
    (folder / "llm").mkdir(parents=True, exist_ok=True)
    for i, n in enumerate(sizes):
        cots = [f"Because. So the answer is (c) x.\n\nQ: junk {i}-{k}" for k in range(n)]
        (folder / "llm" / f"train_CoT_{i}.json").write_text(json.dumps(cots), encoding="utf-8")
    return folder


def test_small_cqa_copy_loads(tmp_path):
    make_cqa(tmp_path, [cqa_item(i) for i in range(3)], [2, 1])
    examples = load_examples("commonsenseqa-dsbs", "train", data_dir=tmp_path)
    assert [(e.id, e.label, e.rationale, e.teacher_label) for e in examples] == [
        (f"id{i}", "c", "Because.", "c") for i in range(3)]


def test_cqa_shard_short(tmp_path):
    folder = make_cqa(tmp_path, [cqa_item(i) for i in range(3)], [2])
    with pytest.raises(DataError) as e:
        load_examples("commonsenseqa-dsbs", "train", data_dir=tmp_path)
    assert "llm/train_CoT_*.json has 2 rationales for 3 items in cqa_train.json" in str(e.value)
    assert e.value.file == str(folder / "llm")


def test_cqa_label_not_among_choices(tmp_path):
    folder = make_cqa(tmp_path, [cqa_item(0), cqa_item(1, answer="zebra")])
    with pytest.raises(DataError, match="label not among the choices: answer 'zebra'") as e:
        load_examples("commonsenseqa-dsbs", "train", data_dir=tmp_path)
    assert (e.value.file, e.value.row, e.value.field) == (str(folder / "cqa_train.json"), 2,
                                                          "answer")
    assert "line 2 of the JSON Lines file" in str(e.value)


@pytest.mark.parametrize("changes, field, message", [
    ({"question": ""}, "question", "empty value"),
    ({"question": None}, "question", "empty value"),
    ({"choices": ["a", "b"]}, "choices", "expected a list of 5 choices"),
    ({"choices": ["v", "w", "", "y", "z"]}, "choices", "empty value"),
])
def test_cqa_bad_fields(tmp_path, changes, field, message):
    make_cqa(tmp_path, [cqa_item(0), cqa_item(1), cqa_item(2, **changes)])
    with pytest.raises(DataError, match=message) as e:
        load_examples("commonsenseqa-dsbs", "train", data_dir=tmp_path)
    assert (e.value.row, e.value.field) == (3, field)
    assert f"row 3, field '{field}'" in str(e.value) and "cqa_train.json" in str(e.value)


def test_cqa_missing_field(tmp_path):
    item = cqa_item(1)
    del item["answer"]
    make_cqa(tmp_path, [cqa_item(0), item])
    with pytest.raises(DataError, match="row 2, field 'answer': missing field"):
        load_examples("commonsenseqa-dsbs", "train", data_dir=tmp_path)


def test_cqa_duplicate_ids(tmp_path):
    make_cqa(tmp_path, [cqa_item(0), cqa_item(1), cqa_item(0)])
    with pytest.raises(DataError, match="'id0' at examples 0 and 2") as e:
        load_examples("commonsenseqa-dsbs", "train", data_dir=tmp_path)
    assert e.value.field == "id"


def test_cqa_non_utf8_and_empty_files(tmp_path):
    folder = make_cqa(tmp_path, [cqa_item(0), cqa_item(1)])
    items = folder / "cqa_train.json"
    items.write_bytes(items.read_bytes().replace(b"Question 1", b"Questi\xf3n 1"))
    with pytest.raises(DataError, match="not UTF-8: byte 0xf3 on line 2") as e:
        load_examples("commonsenseqa-dsbs", "train", data_dir=tmp_path)
    assert (e.value.file, e.value.row) == (str(items), 2)
    items.write_text("", encoding="utf-8")
    with pytest.raises(DataError, match="file is empty") as e:
        load_examples("commonsenseqa-dsbs", "train", data_dir=tmp_path)
    assert e.value.file == str(items)


def test_missing_dataset_folder(tmp_path):
    with pytest.raises(DataError, match="'svamp-dsbs' not found under .*; put the release there "
                                        "or set COTDISTILL_DATA_DIR"):
        load_examples("svamp-dsbs", "train", data_dir=tmp_path)


def write_tsv(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_quarel_tsv_with_commas(tmp_path):
    path = write_tsv(tmp_path / "quarel-mario" / "raw" / "test.tsv",
                     "Question,Rationale,Label\nWhich? (A) x (B) y,dummy,(A)\n")
    with pytest.raises(DataError) as e:
        load_examples("quarel-mario", "test", data_dir=tmp_path)
    assert ("expected tab-separated columns Question, Rationale, Label, found "
            "'Question,Rationale,Label'") in str(e.value)
    assert e.value.file == str(path)


@pytest.mark.parametrize("row, field, message", [
    ("Which? (A) x (B) y\tdummy\t(C)", "Label", "label not among the choices: '(C)'"),
    ("Which one x or y?\tdummy\t(A)", "Question", "expected a question 'stem (A) option"),
    ("Which? (A) x (B) y\t\t(A)", "Rationale", "empty value"),
    ("Which? (A) x (B) y\t(A)", None, "expected 3 tab-separated cells"),
])
def test_quarel_bad_rows(tmp_path, row, field, message):
    path = write_tsv(tmp_path / "quarel-mario" / "raw" / "dev.tsv",
                     f"Question\tRationale\tLabel\nFine? (A) a (B) b\tdummy\t(B)\n{row}\n")
    with pytest.raises(DataError, match=re.escape(message)) as e:
        load_examples("quarel-mario", "dev", data_dir=tmp_path)
    assert (e.value.file, e.value.row, e.value.field) == (str(path), 2, field)
    assert "data row 2 from 1, header excluded" in str(e.value)


def test_quarel_conflicting_labels_for_one_question(tmp_path):
    write_tsv(tmp_path / "quarel-mario" / "raw" / "train.tsv",
              "Question\tRationale\tLabel\nQ? (A) a (B) b\tr1\t(B)\nQ? (A) a (B) b\tr2\t(A)\n")
    with pytest.raises(DataError, match="label '\\(A\\)' here but '\\(B\\)' at row 1") as e:
        load_examples("quarel-mario", "train", data_dir=tmp_path)
    assert e.value.row == 2


def test_strategyqa_bad_label(tmp_path):
    write_tsv(tmp_path / "strategyqa-mario" / "raw" / "test.tsv",
              "Question\tRationale\tLabel\nIs it?\tfacts\tmaybe\n")
    with pytest.raises(DataError, match="'maybe' is not yes or no") as e:
        load_examples("strategyqa-mario", "test", data_dir=tmp_path)
    assert (e.value.row, e.value.field) == (1, "Label")


def test_quarel_gpt3_file_errors_name_the_record(tmp_path):
    path = tmp_path / "quarel-mario" / "gpt3" / "test_gpt3_responses.jsonl"
    path.parent.mkdir(parents=True)
    record = {"question": "Q? (A) a (B) b", "gold_label": "(b)", "predicted_label": "(a)",
              "predicted_rationale": "r"}
    path.write_text(json.dumps({"0": record, "1": {**record, "gold_label": ""}}), encoding="utf-8")
    with pytest.raises(DataError, match='empty value \\(record "1", row = record index from 0\\)') \
            as e:
        load_examples("quarel-mario", "test", data_dir=tmp_path, source="gpt3")
    assert (e.value.file, e.value.row, e.value.field) == (str(path), 1, "gold_label")


def test_svamp_bad_equation(tmp_path):
    folder = tmp_path / "svamp-dsbs"
    write_json_lines(folder / "svamp_test.json", [{"input": "How many?", "label": "( 2.0 + 3.0 )"},
                                                  {"input": "How many?", "label": "( x + 3.0 )"}])
    (folder / "llm").mkdir()
    (folder / "llm" / "test_CoT_0.json").write_text(json.dumps(
        ["2 + 3 = 5. The answer is (2 + 3).", "The answer is 4."]), encoding="utf-8")
    with pytest.raises(DataError, match="equation '\\( x \\+ 3.0 \\)' is not plain arithmetic") \
            as e:
        load_examples("svamp-dsbs", "test", data_dir=tmp_path)
    assert (e.value.row, e.value.field) == (2, "label")
