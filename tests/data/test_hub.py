"""Hugging Face hub datasets: fail fast offline, refuse unlabeled splits, read any other id through
the importer's column mapping, and convert hub records exactly (checked on records shaped like the hub's, without the network)."""

import json
import time

import pytest

from cotdistill.data import hub, load_examples
from cotdistill.data.readers import Where
from cotdistill.errors import DataError
from cotdistill.examples import Example

WHERE = Where("hf://datasets/x:train", 0, "record index 0 from 0")


@pytest.fixture
def no_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    for name in ("HF_DATASETS_CACHE", "HF_HUB_CACHE"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "hf"


@pytest.mark.parametrize("dataset_id", list(hub.HUB_DATASETS))
def test_offline_fails_fast_naming_the_dataset(monkeypatch, no_cache, dataset_id):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    with pytest.raises(DataError) as e:
        load_examples(dataset_id, "train")
    assert time.perf_counter() - start < 2.0
    message = str(e.value)
    assert repr(dataset_id) in message and "offline" in message
    assert "name: file" in message or "does not split" in message
    assert "HF_HOME" in message and hub.HUB_DATASETS[dataset_id].local_release in message


def test_datasets_offline_variable_alone_is_enough(monkeypatch, no_cache):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(DataError, match="'allenai/openbookqa' cannot be downloaded"):
        load_examples("allenai/openbookqa", "validation")


def test_any_other_id_offline_fails_fast_and_says_how_to_supply_it(no_cache):
    with pytest.raises(DataError) as e:
        load_examples("someone/some_qa", "train", columns={"label": "answer"})
    message = str(e.value)
    assert "Hugging Face dataset 'someone/some_qa' cannot be downloaded: offline mode is on" in message
    assert "to_json('train.jsonl')" in message and "name: file" in message


def test_a_local_dataset_folder_loads_through_the_column_mapping(tmp_path):
    """Any dataset `datasets` can read (here a local folder, offline) with the importer's mapping."""
    folder = tmp_path / "my_qa"
    folder.mkdir()
    rows = [{"uid": f"q{i}", "stem": f"question {i}?", "options": {"label": ["A", "B"], "text": ["x", "y"]},
             "answerKey": "AB"[i % 2], "why": f"because {i}"} for i in range(3)]
    (folder / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    columns = {"id": "uid", "question": "stem", "choices": "options", "label": "answerKey", "rationale": "why"}
    examples = load_examples(str(folder), "train", columns=columns)
    assert [(e.id, e.question, e.choices, e.label, e.rationale) for e in examples] == [
        ("q0", "question 0?", ("x", "y"), "a", "because 0"), ("q1", "question 1?", ("x", "y"), "b", "because 1"),
        ("q2", "question 2?", ("x", "y"), "a", "because 2")]
    rows[1]["answerKey"] = "Z"
    (folder / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(DataError) as e:
        load_examples(str(folder), "train", columns=columns)
    assert e.value.row == 1 and e.value.field == "answerKey"


def test_csqa_test_split_is_refused_and_splits_checked():
    with pytest.raises(DataError, match="test split has no labels.*use split 'validation'"):
        load_examples("tau/commonsense_qa", "test")
    with pytest.raises(DataError, match="has no split 'eval'; valid splits: train, validation$"):
        load_examples("tau/commonsense_qa", "eval")


def test_options_are_checked():
    with pytest.raises(DataError, match="unknown option 'flavour'.*accepted: revision, config, columns"):
        load_examples("allenai/openbookqa", "train", flavour="additional")


def test_cached_dataset_is_loaded_offline(monkeypatch, no_cache):
    (no_cache / "hub" / "datasets--allenai--openbookqa").mkdir(parents=True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    calls = []

    def fake_download(dataset_id, spec, split, revision):
        calls.append((dataset_id, spec.config, split, revision))
        return [{"id": "7-980", "question_stem": "The sun is responsible for",
                 "choices": {"text": ["a", "b"], "label": ["A", "B"]}, "answerKey": "B"}]

    monkeypatch.setattr(hub, "_download", fake_download)
    examples = load_examples("allenai/openbookqa", "dev", revision="main")
    assert calls == [("allenai/openbookqa", "main", "validation", "main")]
    assert examples == [Example(id="7-980", question="The sun is responsible for",
                                choices=("a", "b"), label="b")]


def test_connection_errors_become_data_errors(monkeypatch, no_cache):
    datasets = pytest.importorskip("datasets")
    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)

    def refuse(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'tau/commonsense_qa' on the Hub")

    monkeypatch.setattr(datasets, "load_dataset", refuse)
    with pytest.raises(DataError, match="could not load Hugging Face dataset "
                                        "'tau/commonsense_qa' split 'validation': ConnectionError"):
        load_examples("tau/commonsense_qa", "validation")


# --- record converters ----------------------------------------------------------------------

def test_convert_commonsense_qa():
    record = {"id": "075e483d21c29a511267ef62bedc0461",
              "question": "The sanctions against the school were a punishing blow, and they "
                          "seemed to what the efforts the school had made to change?",
              "question_concept": "punishing",
              "choices": {"label": ["A", "B", "C", "D", "E"],
                          "text": ["ignore", "enforce", "authoritarian", "yell at", "avoid"]},
              "answerKey": "A"}
    assert hub.convert_commonsense_qa(WHERE, record) == Example(
        id="075e483d21c29a511267ef62bedc0461", question=record["question"],
        choices=("ignore", "enforce", "authoritarian", "yell at", "avoid"), label="a")


def test_convert_commonsense_qa_without_answer_key():
    record = {"id": "x", "question": "q", "answerKey": "",
              "choices": {"label": ["A", "B"], "text": ["y", "z"]}}
    with pytest.raises(DataError, match="label not among the choices: answerKey ''") as e:
        hub.convert_commonsense_qa(WHERE, record)
    assert (e.value.file, e.value.row, e.value.field) == ("hf://datasets/x:train", 0, "answerKey")


def test_convert_openbookqa_checks_choice_labels():
    record = {"id": "1", "question_stem": "q", "answerKey": "A",
              "choices": {"label": ["B", "A"], "text": ["y", "z"]}}
    with pytest.raises(DataError, match="expected choices"):
        hub.convert_openbookqa(WHERE, record)


def test_convert_quarel():
    record = {"id": "QuaRel_V1_Fr_0223", "answer_index": 1,
              "question": "Mike was snowboarding on the snow and hit a piece of ice. He went much "
                          "faster on the ice because _____ is smoother. (A) snow (B) ice",
              "world_literals": {"world1": ["snow"], "world2": ["ice"]}}
    assert hub.convert_quarel(WHERE, record) == Example(
        id="QuaRel_V1_Fr_0223",
        question="Mike was snowboarding on the snow and hit a piece of ice. He went much faster "
                 "on the ice because _____ is smoother.",
        choices=("snow", "ice"), label="b")
    with pytest.raises(DataError, match="answer_index 2"):
        hub.convert_quarel(WHERE, {**record, "answer_index": 2})
