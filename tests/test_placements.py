import itertools

import pytest

from cotdistill.examples import Example
from cotdistill.sequences.perturbations import PERTURBATIONS, validate_params
from cotdistill.sequences.placements import IGNORE, SequenceBuilder, parse_label
from tests.conftest import WORDS

ID = {w: i for i, w in enumerate(WORDS)}
PROMPT = ["Question", ":", "what", "colour", "sky", "?", "Choices", ":", "(", "a", ")", "red",
          "(", "b", ")", "blue", "(", "c", ")", "green", "Answer", ":"]
LABEL = ["(", "b", ")"]
RATIONALE = ["the", "sky", "scatters", "blue", "light", "."]


def ids(words):
    return [ID[w] for w in words]


def test_golden_ids_none(word_tokenizer, sky_example):
    seq = SequenceBuilder(word_tokenizer, "none").build(sky_example)
    assert seq.input_ids == ids(PROMPT + LABEL) + [0]
    assert seq.labels == [IGNORE] * len(PROMPT) + ids(LABEL) + [0]
    assert seq.spans == {"prompt": (0, 22), "label": (22, 25), "eos": (25, 26)}


def test_golden_ids_after(word_tokenizer, sky_example):
    seq = SequenceBuilder(word_tokenizer, "after").build(sky_example)
    assert seq.input_ids == ids(PROMPT + LABEL + ["Explanation", ":"] + RATIONALE) + [0]
    assert seq.labels == [IGNORE] * 22 + seq.input_ids[22:]
    assert seq.spans["rationale"] == (27, 33)


def test_golden_ids_before(word_tokenizer, sky_example):
    seq = SequenceBuilder(word_tokenizer, "before").build(sky_example)
    assert seq.input_ids == ids(PROMPT + RATIONALE + ["So", "the", "answer", "is"] + LABEL) + [0]
    assert seq.spans == {"prompt": (0, 22), "rationale": (22, 28), "answer_marker": (28, 32),
                         "label": (32, 35), "eos": (35, 36)}


def test_rationale_weight_zero_is_context_only(word_tokenizer, sky_example):
    seq = SequenceBuilder(word_tokenizer, "after", rationale_weight=0.0).build(sky_example)
    a, b = seq.spans["rationale"]
    assert all(seq.labels[i] == IGNORE for i in range(a, b))
    assert seq.labels[22:25] == ids(LABEL)


def test_rationale_weight_is_recorded(word_tokenizer, sky_example):
    seq = SequenceBuilder(word_tokenizer, "before", rationale_weight=0.25).build(sky_example)
    a, b = seq.spans["rationale"]
    assert seq.weights[a:b] == [0.25] * (b - a)
    assert seq.weights[slice(*seq.spans["label"])] == [1.0, 1.0, 1.0]


POOL = [Example(id=f"p{i}", question="what colour sky ?", choices=("red", "blue"), label="a",
                rationale=" ".join(["red", "light", "is", "the", "answer"][: 2 + i])) for i in range(3)]
PARAMS = {"mask": [{"p": 0.5, "mode": "drop"}, {"p": 0.5, "mode": "replace"}], "truncate": [{"k": 2}],
          "random_subset": [{"fraction": 0.5}], "key_tokens": [{"k": 2}, {"fraction": 0.5, "order": "shuffled"}]}
CASES = [(placement, kind, params, weight, level)
         for placement in ("none", "before", "after") for kind in PERTURBATIONS
         for params in PARAMS.get(kind, [{}]) for weight in (1.0, 0.0) for level in ("token", "word")]


@pytest.mark.parametrize("placement,kind,params,weight,level", CASES)
def test_every_label_position_ignored_or_its_token(word_tokenizer, sky_example, placement, kind, params,
                                                   weight, level):
    examples = POOL + [sky_example]
    scores = {ex.id: [float(i % 3) for i in range(len(ex.rationale.split()))] for ex in examples}
    builder = SequenceBuilder(word_tokenizer, placement, rationale_weight=weight, perturbation=kind,
                              perturbation_params=validate_params(kind, params), level=level, seed=3,
                              pool=examples, scores=scores)
    for ex in examples:
        seq = builder.build(ex)
        assert len(seq.labels) == len(seq.input_ids)
        for token, label in zip(seq.input_ids, seq.labels):
            assert label in (IGNORE, token)
        spans = list(seq.spans.values())     # contiguous, in order, covering the sequence
        assert spans[0][0] == 0 and spans[-1][1] == len(seq)
        assert all(a[1] == b[0] for a, b in itertools.pairwise(spans))
        p0, p1 = seq.spans["prompt"]
        assert seq.labels[p0:p1] == [IGNORE] * (p1 - p0) and seq.input_ids[p0:p1] == builder.prompt_ids(ex)
        l0, l1 = seq.spans["label"]
        assert seq.labels[l0:l1] == builder.label_ids(ex.label, ex.kind)
        if placement == "none":
            assert "rationale" not in seq.spans
        else:
            r0, r1 = seq.spans["rationale"]
            assert seq.weights[r0:r1] == [weight] * (r1 - r0)
            assert (r0 < l0) == (placement == "before")
            assert seq.input_ids[r0:r1] == builder.rationale_ids(ex)


def test_perturbation_changes_only_the_rationale(word_tokenizer, sky_example):
    plain = SequenceBuilder(word_tokenizer, "after").build(sky_example)
    shuffled = SequenceBuilder(word_tokenizer, "after", perturbation="shuffle", seed=1).build(sky_example)
    a, b = plain.spans["rationale"]
    assert shuffled.input_ids[:a] == plain.input_ids[:a]
    assert sorted(shuffled.input_ids[a:b]) == sorted(plain.input_ids[a:b])
    assert shuffled.input_ids[a:b] != plain.input_ids[a:b]


def test_mask_replace_uses_the_placeholder_not_the_mask_token(word_tokenizer, sky_example):
    b = SequenceBuilder(word_tokenizer, "after", perturbation="mask",
                        perturbation_params=validate_params("mask", {"p": 1.0, "mode": "replace"}))
    assert b.rationale_ids(sky_example) == [ID["_"]] * len(RATIONALE)
    w = SequenceBuilder(word_tokenizer, "after", perturbation="mask", level="word",
                        perturbation_params=validate_params("mask", {"p": 1.0, "mode": "replace"}))
    assert w.rationale_ids(sky_example) == [ID["_"]] * len(RATIONALE)


def test_key_tokens_keep_the_top_scored(word_tokenizer, sky_example):
    scores = {"q1": [0.0, 0.9, 0.1, 0.8, 0.0, 0.0]}
    b = SequenceBuilder(word_tokenizer, "after", perturbation="key_tokens",
                        perturbation_params=validate_params("key_tokens", {"k": 2}), scores=scores)
    assert b.rationale_ids(sky_example) == ids(["sky", "blue"])
    with pytest.raises(ValueError, match="no scores for example"):
        SequenceBuilder(word_tokenizer, "after", perturbation="key_tokens",
                        perturbation_params=validate_params("key_tokens", {"k": 2}),
                        scores={}).build(sky_example)


@pytest.mark.parametrize("placement", ["none", "before", "after"])
def test_truncation_never_cuts_the_label(word_tokenizer, sky_example, placement):
    builder = SequenceBuilder(word_tokenizer, placement, max_length=12)
    seq = builder.build(sky_example)
    assert len(seq) == 12 and seq.truncated
    l0, l1 = seq.spans["label"]
    assert seq.input_ids[l0:l1] == ids(LABEL)
    p0, p1 = seq.spans["prompt"]
    assert seq.input_ids[p1 - 2:p1] == ids(["Answer", ":"])      # the prompt loses its start


def test_truncation_cuts_rationale_first(word_tokenizer, sky_example):
    seq = SequenceBuilder(word_tokenizer, "after", max_length=30).build(sky_example)
    assert seq.spans["prompt"] == (0, 22)
    assert seq.input_ids[slice(*seq.spans["rationale"])] == ids(RATIONALE[:2])   # 22 prompt + 3 label + 2 marker + 1 eos


def test_too_short_max_length_is_an_error(word_tokenizer, sky_example):
    with pytest.raises(ValueError, match="exceed max_length"):
        SequenceBuilder(word_tokenizer, "before", max_length=8).build(sky_example)


def test_numeric_and_yes_no_labels(word_tokenizer):
    yn = Example(id="y", question="sky blue ?", choices=("yes", "no"), label="yes", kind="yes_no",
                 rationale="it is .")
    seq = SequenceBuilder(word_tokenizer, "none").build(yn)
    assert seq.input_ids[slice(*seq.spans["label"])] == [ID["yes"]]
    assert "Choices" not in word_tokenizer.convert_ids_to_tokens(seq.input_ids)
    num = Example(id="n", question="what ?", label="42", choices=None, kind="numeric")
    seq = SequenceBuilder(word_tokenizer, "none").build(num)
    assert seq.input_ids[slice(*seq.spans["label"])] == [ID["42"]]


@pytest.mark.parametrize("text,kind,placement,finished,expected", [
    (" (c)", "multiple_choice", "after", False, "c"),
    (" (c", "multiple_choice", "after", False, None),
    (" (b)\nExplanation: because", "multiple_choice", "none", False, "b"),
    (" red light. So the answer is (a)", "multiple_choice", "before", False, "a"),
    (" red light. So the answer", "multiple_choice", "before", False, None),
    (" (a) is wrong. So the answer is (b)", "multiple_choice", "before", False, "b"),
    (" yes", "yes_no", "after", False, None),
    (" yes", "yes_no", "after", True, "yes"),
    (" Yes.", "yes_no", "none", False, "yes"),
    (" nothing", "yes_no", "none", True, None),
    (" 4", "numeric", "after", False, None),
    (" 42.", "numeric", "after", False, None),
    (" 42.5\n", "numeric", "after", False, "42.5"),
    (" 1,200 apples", "numeric", "none", False, "1200"),
    (" -3", "numeric", "none", True, "-3"),
    (" so 5 - 2 = 3. So the answer is 3", "numeric", "before", True, "3"),
])
def test_parse_label(text, kind, placement, finished, expected):
    assert parse_label(text, kind, placement, finished) == expected
