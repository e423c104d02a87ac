from collections import Counter

import pytest

from cotdistill.data import load_examples
from cotdistill.data.counting import world
from cotdistill.examples import LETTERS
from cotdistill.errors import DataError


def test_world_is_seeded_and_balanced():
    facts = world(40, 3, seed=0)
    assert facts == world(40, 3, seed=0) and facts != world(40, 3, seed=1)
    assert len(facts) == 40 and Counter(facts.values()) == {"red": 14, "blue": 13, "green": 13}


def test_labels_follow_from_the_facts_the_rationale_recalls():
    facts = world(40, 3, seed=0)
    for ex in load_examples("synthetic-count", "train", n_train=500):
        items = ex.question.removeprefix("Items: ").split(". How many are ")[0].split(", ")
        colour = ex.meta["colour"]
        assert ex.rationale == " ".join(f"{i} is {facts[i]}." for i in items)
        assert ex.choices == ("0", "1", "2", "3", "4")
        assert ex.label == LETTERS[sum(facts[i] == colour for i in items)]
        assert ex.teacher_label == ex.label


def test_deterministic_disjoint_and_sized():
    a = load_examples("synthetic-count", "train", n_train=400, n_test=100)
    assert a == load_examples("synthetic-count", "train", n_train=400, n_test=100)
    assert a != load_examples("synthetic-count", "train", n_train=400, n_test=100, seed=1)
    test = load_examples("synthetic-count", "test", n_train=400, n_test=100)
    assert len(a) == 400 and len(test) == 100
    norm = lambda ex: (frozenset(ex.question.split(": ")[1].split(".")[0].split(", ")), ex.meta["colour"])  # noqa: E731
    assert not {norm(e) for e in a} & {norm(e) for e in test}


def test_noisy_teacher_rate():
    ex = load_examples("synthetic-count", "train", n_train=2000, teacher_accuracy=0.7)
    clean = load_examples("synthetic-count", "train", n_train=2000)
    wrong_fact = sum(e.rationale != c.rationale for e, c in zip(ex[:200], clean))
    assert 30 <= wrong_fact <= 90                     # about 30% of 200 have one misremembered fact
    assert all(e.teacher_correct == (e.teacher_label == e.label) for e in ex)


@pytest.mark.parametrize("options,message", [
    ({"n_items": 0}, "'n_items' must be an integer >= 1"),
    ({"n_colours": 9}, "'n_colours' must be an integer >= 2 and <= 6"),
    ({"colour": "red"}, "unknown option 'colour'"),
    ({"n_objects": 5, "n_items": 4}, "raise n_objects"),
    ({"teacher_accuracy": 2}, "between 0 and 1"),
])
def test_bad_options(options, message):
    with pytest.raises(DataError, match=message):
        load_examples("synthetic-count", "train", **options)
