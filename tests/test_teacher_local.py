"""The local transformers teacher: the built-in tiny model end to end, left-padded batches that
match one-at-a-time generation, seeded sampling, and SmolLM2-135M on a few real questions."""

import pytest
import torch

from cotdistill.data import load_examples
from cotdistill.examples import Example
from cotdistill.data.store import open_rationale_set
from cotdistill.teachers import (Decoding, LocalTeacher, TeacherError, generate_rationales,
                                 load_teacher, make_prompt)

QUESTIONS = ["Where is milk kept?", "What makes a spoon hot in soup, and why would it be so?",
             "Why?", "Which colour is the sky on a clear day at noon?"]


@pytest.fixture(scope="module")
def tiny():
    return LocalTeacher("tiny", device="cpu", max_batch_size=4)


@pytest.fixture(scope="module")
def noisy():
    """The tiny teacher with large random weights, so that different prompts give different
    continuations (the default init answers every prompt the same way)."""
    teacher = LocalTeacher("tiny", device="cpu")
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for weight in teacher.model.parameters():
            weight.normal_(0, 0.2, generator=generator)
    return teacher


def short_prompts():
    prompt = make_prompt("multiple_choice", template="Q: {question}\n{choices}\nA:")
    return [prompt.render(Example(id=str(i), question=q, choices=("red", "blue", "green"),
                                  label="a")) for i, q in enumerate(QUESTIONS)]


def test_tiny_teacher_end_to_end(tiny, tmp_path):
    examples = load_examples("synthetic", "train", n_train=5, steps=2)
    out = tmp_path / "set"
    result = generate_rationales({"train": examples}, tiny, make_prompt("multiple_choice"),
                                 Decoding(max_new_tokens=8), out, batch_size=2,
                                 dataset={"name": "synthetic", "options": {"n_train": 5}},
                                 cache_dir=tmp_path / "cache")
    assert result.set_path == out and result.done == 5 and result.teacher_calls == 5
    rs = open_rationale_set(out)
    assert all(isinstance(r["raw_output"], str) and r["raw_output"] for r in rs.records)
    assert rs.provenance["teacher"]["model"] == "tiny" and rs.provenance["teacher"]["device"] == "cpu"
    assert rs.provenance["teacher_accuracy"] == result.correct / 5
    loaded = load_examples("rationale-set", "train", path=str(out))
    assert [ex.id for ex in loaded] == [ex.id for ex in examples]
    assert [ex.question for ex in loaded] == [ex.question for ex in examples]


def test_left_padded_batches_match_one_at_a_time(noisy):
    prompts = short_prompts()
    lengths = {len(noisy.tokenizer(p)["input_ids"]) for p in prompts}
    assert len(lengths) == len(prompts)                   # every row gets a different padding
    greedy = Decoding(max_new_tokens=12, stop=())
    batched = [c.text for c in noisy.complete(prompts, greedy)]
    single = [noisy.complete([p], greedy)[0].text for p in prompts]
    assert batched == single and len(set(batched)) == len(prompts)


def test_sampling_is_seeded_and_leaves_the_global_rng_alone(noisy):
    prompts = short_prompts()[:2]
    state = torch.get_rng_state()
    sample = lambda seed: [c.text for c in noisy.complete(  # noqa: E731
        prompts, Decoding(max_new_tokens=10, temperature=1.0, seed=seed, stop=()))]
    assert sample(3) == sample(3) and sample(3) != sample(4)
    assert torch.equal(state, torch.get_rng_state())


def test_bad_local_teachers_fail_fast():
    with pytest.raises(TeacherError, match="teacher model 'nobody/none-xyz'.*HF_HUB_OFFLINE"):
        load_teacher({"kind": "local", "model": "nobody/none-xyz"})
    with pytest.raises(TeacherError, match="unknown dtype"):
        LocalTeacher("tiny", dtype="int3")


@pytest.mark.slow
def test_smollm2_teacher_on_a_few_strategyqa_questions(tmp_path):
    examples = load_examples("strategyqa-mario", "test")[:2]
    teacher = LocalTeacher("smollm2-135m", device="cpu")
    result = generate_rationales({"test": examples}, teacher, make_prompt("yes_no"),
                                 Decoding(max_new_tokens=32), tmp_path / "set", batch_size=2,
                                 dataset="strategyqa-mario", cache_dir=tmp_path / "cache")
    records = open_rationale_set(result.set_path).records
    assert len(records) == 2 and all(r["raw_output"].strip() for r in records)
    assert all("\nQ:" not in r["raw_output"] for r in records)          # stopped at the stop string
    parsed = [r for r in records if r["teacher_label"] is not None]
    assert parsed and all(r["rationale"] for r in parsed)            # SmolLM2 follows the format
    assert result.unparsed == 2 - len(parsed)
