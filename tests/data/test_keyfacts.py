"""The built-in key-token study task (synthetic-keyfacts): test questions differ and carry the
signal, the fact words are known per example and hold everything the rationale says."""

import pytest

from cotdistill.data import load_examples
from cotdistill.data.counting import world
from cotdistill.data.keyfacts import FILLERS, fact_slots
from cotdistill.examples import LETTERS
from cotdistill.errors import DataError


@pytest.fixture(scope="module")
def test_split():
    return load_examples("synthetic-keyfacts", "test")


def test_the_first_example_exactly():
    ex = load_examples("synthetic-keyfacts", "train", n_train=1)[0]
    assert ex.id == "keyfacts-train-00001"
    assert ex.question == "Items: lafo, kofa, kada. How many are blue?"
    assert ex.rationale == "so lafo=blue we have kofa=red that and kada=blue also"
    assert ex.choices == ("0", "1", "2", "3") and ex.label == "c" == ex.teacher_label
    assert ex.meta["key_indices"] == [1, 4, 7]
    assert ex.meta["keys"] == ["lafo=blue", "kofa=red", "kada=blue"]


def test_fact_slots_spread_evenly():
    assert fact_slots(3, 6) == [1, 4, 7]
    assert fact_slots(3, 0) == [0, 1, 2]
    assert fact_slots(2, 3) == [1, 3]
    assert fact_slots(1, 4) == [2]


def test_test_questions_differ_and_the_key_words_carry_the_answer(test_split):
    assert len(test_split) == 300 and len({ex.question for ex in test_split}) == 300
    facts = world(24, 2, 0)
    for ex in test_split:
        words = ex.rationale.split()
        keys = [words[i] for i in ex.meta["key_indices"]]
        assert keys == ex.meta["keys"]
        items = ex.question.removeprefix("Items: ").split(". ")[0].split(", ")
        assert keys == [f"{item}={facts[item]}" for item in items]           # one fact per item, in order
        assert all(w in FILLERS for i, w in enumerate(words) if i not in ex.meta["key_indices"])
        colour = ex.question.split()[-1].rstrip("?")
        assert ex.label == LETTERS[sum(k.endswith("=" + colour) for k in keys)]
    labels = {ex.label for ex in test_split}
    assert labels == {"a", "b", "c", "d"}


def test_train_and_test_never_share_a_question_and_loading_is_pure(test_split):
    train = load_examples("synthetic-keyfacts", "train")
    assert not {ex.question for ex in train} & {ex.question for ex in test_split}
    assert train == load_examples("synthetic-keyfacts", "train")
    assert train != load_examples("synthetic-keyfacts", "train", seed=1)
    assert load_examples("synthetic-keyfacts", "train", n_train=5, n_fillers=13)[0].rationale.split()[-3:] == [
        "kada=blue", "it", "so"]                                             # the fillers cycle


@pytest.mark.parametrize("options,field", [({"n_fillers": -1}, "n_fillers"), ({"n_objects": 10}, "n_train"),
                                           ({"n_items": 50}, "n_items"), ({"words": 3}, "words")])
def test_bad_options_are_named(options, field):
    with pytest.raises(DataError) as e:
        load_examples("synthetic-keyfacts", "train", **options)
    assert e.value.field == field
