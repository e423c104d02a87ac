"""The `synthetic-key` task, the attribution tests' ground truth (belongs in tests/data/ later)."""

import pytest

from cotdistill.data import load_examples
from cotdistill.data.keytoken import DISTRACTORS, KEYS
from cotdistill.errors import DataError


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


# ------------------------------------------------------------------ agreement with the known key words

def test_key_agreement_exact_values():
    from cotdistill.attribution import key_agreement
    scores = {"a": [0.1, 0.9, 0.2, 0.3],        # key 1 ranked first
              "b": [0.5, 0.5, 0.0, 0.4],        # keys 1, 3: a tie goes to the earlier word, ranks 2 and 3
              "c": [-2.0, 0.1, 0.3, 0.0],       # key 0 is last when signed, first by magnitude
              "d": [1.0, 0.0]}                  # no ground truth: ignored
    keys = {"a": [1], "b": [1, 3], "c": [0], "e": [0]}
    assert key_agreement(scores, keys) == {"n": 3, "first": 1 / 3, "mean_rank": (1 + 2 + 4) / 3, "recall": 2 / 4}
    assert key_agreement(scores, keys, absolute=True) == {"n": 3, "first": 2 / 3, "mean_rank": (1 + 2 + 1) / 3,
                                                          "recall": 3 / 4}
    assert key_agreement(scores, {"d": [0]}) == {"n": 1, "first": 1.0, "mean_rank": 1.0, "recall": 1.0}
    assert key_agreement(scores, {"e": [0]}) is None


def test_key_agreement_names_a_key_position_beyond_the_scores():
    from cotdistill.attribution import key_agreement
    with pytest.raises(ValueError, match="example 'a': key word position 4 is beyond its 2 scored words"):
        key_agreement({"a": [0.0, 1.0]}, {"a": [4]})


def test_agreement_reads_the_ground_truth_of_both_built_in_tasks():
    from cotdistill.attribution import agreement, agreement_text, key_positions
    key = load_examples("synthetic-key", "test", n_test=2)
    facts = load_examples("synthetic-keyfacts", "test", n_test=2)
    assert [key_positions(ex) for ex in key] == [[ex.meta["key_index"]] for ex in key]
    assert [key_positions(ex) for ex in facts] == [ex.meta["key_indices"] for ex in facts]
    assert key_positions(load_examples("synthetic-count", "test", n_test=1)[0]) is None
    perfect = [{"example_id": ex.id, "method": "ig",
                "word_scores": [1.0 if i in ex.meta["key_indices"] else 0.0 for i in range(9)]} for ex in facts]
    found = agreement(perfect, facts)
    assert found == {"n": 2, "first": 1.0, "mean_rank": 1.0, "recall": 1.0}
    assert agreement_text(found).startswith("agreement with the known key words (2 example(s)): a key word "
                                            "ranked first in 100%, mean rank of the best key word 1.00")
