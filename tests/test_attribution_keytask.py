"""The `synthetic-key` task, the attribution tests' ground truth (belongs in tests/data/ later)."""

import pytest

from cotdistill.data import load_examples
from cotdistill.data.keytoken import DISTRACTORS, KEYS
from cotdistill.examples import DataError


def test_one_key_word_decides_the_label_and_the_rest_are_distractors():
    for ex in load_examples("synthetic-key", "test", n_test=200):
        words = ex.rationale.split()
        i = ex.meta["key_index"]
        assert words[i] == ex.meta["key"] and words[i] in KEYS[ex.label]
        assert all(w in DISTRACTORS for j, w in enumerate(words) if j != i)
        assert ex.kind == "yes_no" and ex.teacher_label == ex.label
        assert not any(w in ex.question.lower() for keys in KEYS.values() for w in keys)


def test_blank_training_examples_have_no_key_word_and_balanced_labels():
    train = load_examples("synthetic-key", "train", n_train=1000, blank_share=0.3)
    blank = [ex for ex in train if ex.meta["key_index"] is None]
    assert 200 < len(blank) < 400
    assert all(set(ex.rationale.split()) <= set(DISTRACTORS) for ex in blank)
    assert 0.4 < sum(ex.label == "yes" for ex in blank) / len(blank) < 0.6
    assert sum(ex.label == "yes" for ex in train) == 500
    assert load_examples("synthetic-key", "train", n_train=50, blank_share=0.0)[0].meta["key_index"] is not None


def test_deterministic_and_disjoint():
    a = load_examples("synthetic-key", "train", n_train=300, n_test=100)
    assert a == load_examples("synthetic-key", "train", n_train=300, n_test=100)
    assert a != load_examples("synthetic-key", "train", n_train=300, n_test=100, seed=1)
    test = load_examples("synthetic-key", "test", n_train=300, n_test=100)
    assert not {ex.rationale for ex in a} & {ex.rationale for ex in test}
    assert len({ex.id for ex in a}) == 300


@pytest.mark.parametrize("options,field", [({"n_words": 1}, "n_words"), ({"blank_share": 1.0}, "blank_share"),
                                           ({"n_train": 5000, "n_words": 3}, "n_words"),
                                           ({"colours": 3}, "colours")])
def test_bad_options_are_named(options, field):
    with pytest.raises(DataError) as e:
        load_examples("synthetic-key", "train", **options)
    assert e.value.field == field
