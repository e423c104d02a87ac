"""The synthetic task: determinism, arithmetic checked by recomputation, disjoint splits, balanced
letters, teacher errors, option validation, and the pure helpers with exact values."""

import re
from collections import Counter

import pytest

from cotdistill.data import load_examples
from cotdistill.data.synthetic import Chain, decode, distractors, question_space, rationale
from cotdistill.examples import LETTERS
from cotdistill.errors import DataError

STEP = re.compile(r"(\d+) ([+*-]) (\d+) = (\d+)\.")
WORDS = {"Add": "+", "Subtract": "-", "Multiply by": "*"}


def parse_question(question):
    start = int(re.match(r"Start at (\d+)\.", question).group(1))
    steps = [(WORDS[w], int(k)) for w, k in re.findall(r"(Add|Subtract|Multiply by) (\d+)\.",
                                                         question)]
    return start, steps


def recompute(op, a, k, modulus):
    return {"+": a + k, "-": a - k, "*": a * k}[op] % modulus


def check_rationale(example, modulus):
    """(number of wrong steps, final value written) after checking the chain is well formed."""
    start, steps = parse_question(example.question)
    written = STEP.findall(example.rationale)
    assert " ".join(f"{a} {op} {k} = {b}." for a, op, k, b in written) == example.rationale
    assert len(written) == len(steps)
    value, wrong = start, 0
    for (a, op, k, b), (q_op, q_k) in zip(written, steps):
        assert (int(a), op, int(k)) == (value, q_op, q_k)   # each step starts where the last ended
        wrong += int(b) != recompute(op, int(a), int(k), modulus)
        value = int(b)
    return wrong, value


def true_answer(example, modulus):
    value, steps = parse_question(example.question)
    for op, k in steps:
        value = recompute(op, value, k, modulus)
    return value


@pytest.fixture(scope="module")
def train():
    return load_examples("synthetic", "train")


def test_default_sizes_and_shape(train):
    test = load_examples("synthetic", "test")
    assert (len(train), len(test)) == (2000, 300)
    assert all(len(e.choices) == 4 and len(set(e.choices)) == 4 for e in train)
    assert train[0].id == "synthetic-train-00001" and test[-1].id == "synthetic-test-00300"


def test_every_rationale_is_right_and_label_is_the_final_value(train):
    for example in train:
        wrong, final = check_rationale(example, 10)
        assert wrong == 0 and final == true_answer(example, 10)
        assert example.choices[LETTERS.index(example.label)] == str(final)
        assert example.teacher_label == example.label


def test_deterministic_for_a_seed_and_different_for_another(train):
    again = load_examples("synthetic", "train")
    assert [(e.id, e.question, e.choices, e.label, e.rationale) for e in again] == \
           [(e.id, e.question, e.choices, e.label, e.rationale) for e in train]
    other = load_examples("synthetic", "train", seed=1)
    assert sum(a.question == b.question for a, b in zip(train, other)) < 20


def test_train_and_test_share_no_question(train):
    test = load_examples("synthetic", "test")
    assert len({e.question for e in train}) == 2000
    assert not {e.question for e in train} & {e.question for e in test}
    # the test split does not depend on the train size, nor train on the test size
    assert load_examples("synthetic", "test", n_train=50) == test
    assert load_examples("synthetic", "train", n_test=7) == train


def test_letters_are_balanced(train):
    shares = {letter: n / len(train) for letter, n in Counter(e.label for e in train).items()}
    assert set(shares) == set("abcd")
    assert all(abs(share - 0.25) <= 0.1 for share in shares.values())


def test_distractors_prefer_intermediate_values(train):
    with_room = [e for e in train if len(set(e.meta["values"][:-1]) - {e.meta["values"][-1]}) >= 3]
    assert with_room
    for example in with_room:
        values = example.meta["values"]
        wrong = set(example.choices) - {str(values[-1])}
        assert wrong <= {str(v) for v in values[:-1]}


def test_steps_choices_and_modulus_knobs():
    examples = load_examples("synthetic", "test", steps=5, n_choices=6, modulus=17, n_test=100,
                             seed=3)
    for example in examples:
        assert len(example.choices) == 6 and len(parse_question(example.question)[1]) == 5
        wrong, final = check_rationale(example, 17)
        assert wrong == 0 and example.choices[LETTERS.index(example.label)] == str(final)
        assert all(0 <= int(c) < 17 for c in example.choices)


def test_imperfect_teacher_makes_one_wrong_step():
    examples = load_examples("synthetic", "train", teacher_accuracy=0.7, n_train=1000, seed=5)
    errors = [e for e in examples if e.meta["teacher_error_step"] is not None]
    assert 0.25 <= len(errors) / len(examples) <= 0.35
    for example in examples:
        wrong, final = check_rationale(example, 10)
        assert example.choices[LETTERS.index(example.teacher_label)] == str(final)
        if example.meta["teacher_error_step"] is None:
            assert wrong == 0 and example.teacher_correct
        else:
            assert wrong == 1 and not example.teacher_correct
            assert final != true_answer(example, 10)


def test_teacher_accuracy_zero_is_always_wrong():
    examples = load_examples("synthetic", "test", teacher_accuracy=0, n_test=50)
    assert not any(e.teacher_correct for e in examples)


@pytest.mark.parametrize("options, field", [
    ({"steps": 0}, "steps"), ({"steps": "3"}, "steps"), ({"n_choices": 1}, "n_choices"),
    ({"n_choices": 11}, "n_choices"), ({"modulus": 2}, "modulus"), ({"n_train": 0}, "n_train"),
    ({"n_train": True}, "n_train"), ({"teacher_accuracy": 1.5}, "teacher_accuracy"),
    ({"teacher_accuracy": "high"}, "teacher_accuracy"), ({"seed": 1.5}, "seed"),
    ({"steps": 1, "n_train": 500}, "n_train"),
])
def test_options_are_validated(options, field):
    with pytest.raises(DataError) as e:
        load_examples("synthetic", "train", **options)
    assert e.value.field == field and f"'{field}'" in str(e.value)


def test_too_many_examples_says_what_to_do():
    with pytest.raises(DataError, match="260 distinct questions; at most 26 for this split\\): "
                                        "raise steps or modulus"):
        load_examples("synthetic", "test", steps=1)


# --- pure helpers ---------------------------------------------------------------------------

def test_chain_question_values_and_rationale():
    chain = Chain(7, (("+", 5), ("*", 3), ("-", 4)))
    assert chain.question() == ("Start at 7. Add 5. Multiply by 3. Subtract 4. "
                                "What number do you get?")
    assert chain.values(10) == [7, 2, 6, 2]
    assert rationale(chain, chain.values(10)) == "7 + 5 = 2. 2 * 3 = 6. 6 - 4 = 2."


def test_decode_and_question_space():
    assert question_space(3, 10) == 10 * 26 ** 3
    assert decode(0, 2, 10) == Chain(0, (("+", 1), ("+", 1)))
    assert decode(7 + 10 * (9 + 26 * 25), 2, 10) == Chain(7, (("-", 1), ("*", 9)))


def test_distractors_take_forced_then_intermediates():
    import random
    picked = distractors([7, 2, 6, 2], forced=5, n=3, rng=random.Random(0), modulus=10)
    assert sorted(picked) == [5, 6, 7]
