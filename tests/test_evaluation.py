import pytest
import torch

from cotdistill.config import TrainConfig
from cotdistill.evaluation import evaluate, summarize
from cotdistill.placements import SequenceBuilder, parse_label
from cotdistill.training import train
from tests.helpers import colour_examples, tiny_model


@pytest.fixture(scope="module")
def trained(word_tokenizer):
    """A tiny model trained on the toy task with the rationale before the label."""
    model = tiny_model(word_tokenizer, dropout=0.0)
    builder = SequenceBuilder(word_tokenizer, "before")
    seqs = [builder.build(ex) for ex in colour_examples(30)]
    train(model, seqs, TrainConfig(steps=60, batch_size=10, lr=5e-3, warmup_steps=10), seed=0, pad_id=1)
    return model.eval()


def reference_score(model, builder, ex, option):
    """Log-likelihood of one continuation, one unpadded sequence at a time."""
    prompt = builder.prompt_ids(ex)
    ids = prompt + builder.continuation_ids(option, ex.kind)
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([ids])).logits[0].float(), -1)
    return sum(logp[i - 1, ids[i]].item() for i in range(len(prompt), len(ids)))


@pytest.mark.parametrize("placement", ["none", "after", "before"])
def test_score_equals_one_at_a_time_reference(word_tokenizer, trained, placement):
    builder = SequenceBuilder(word_tokenizer, placement)
    examples = colour_examples(7)
    records = evaluate(trained, builder, examples, mode="score", batch_size=4)
    assert [r["example_id"] for r in records] == [ex.id for ex in examples]
    for ex, rec in zip(examples, records):
        for option in ("a", "b", "c"):
            assert rec["scores"][option] == pytest.approx(reference_score(trained, builder, ex, option), abs=1e-4)
        assert rec["predicted"] == max(rec["scores"], key=rec["scores"].get)
        assert rec["correct"] == (rec["predicted"] == ex.label)


def naive_greedy(model, builder, ex, max_new_tokens):
    """Greedy decoding without a cache, recomputing everything each step."""
    ids, out = builder.prompt_ids(ex), []
    with torch.no_grad():
        for _ in range(max_new_tokens):
            t = model(torch.tensor([ids + out])).logits[0, -1].argmax().item()
            if t == builder.tok.eos_token_id:
                break
            out.append(t)
            if parse_label(builder.tok.decode(out), ex.kind, builder.placement, False):
                break
    return builder.tok.decode(out)


def test_generate_matches_uncached_greedy_and_stops_at_the_label(word_tokenizer, trained):
    builder = SequenceBuilder(word_tokenizer, "before")
    examples = colour_examples(9)
    records = evaluate(trained, builder, examples, mode="generate", batch_size=4, max_new_tokens=20)
    for ex, rec in zip(examples, records):
        assert rec["generated"] == naive_greedy(trained, builder, ex, 20)
        assert rec["generated"].rstrip().endswith(")")          # stopped as soon as the label closed
        assert rec["predicted"] == parse_label(rec["generated"], ex.kind, "before")
        assert rec["predicted"] in ("a", "b", "c")               # the trained format was followed


def test_score_mode_refuses_numeric_examples(word_tokenizer):
    from cotdistill.examples import Example
    num = [Example(id="n", question="what ?", label="42", kind="numeric")]
    with pytest.raises(ValueError, match="use eval.mode=generate"):
        evaluate(tiny_model(word_tokenizer), SequenceBuilder(word_tokenizer, "none"), num, mode="score")


def test_summary_has_accuracy_with_interval():
    records = [{"correct": i % 4 != 0, "predicted": "a"} for i in range(200)] + [{"correct": False, "predicted": None}]
    s = summarize(records, n_boot=2000)
    assert s["n"] == 201 and s["accuracy"] == pytest.approx(150 / 201)
    assert s["accuracy_low"] < s["accuracy"] < s["accuracy_high"] and s["unparsed"] == 1

