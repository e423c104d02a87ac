"""train.loss_normalization: `token` (every supervised token once, weighted) and `segment` (per example,
the label's mean and the rationale's mean combined as (label + w x rationale) / (1 + w), averaged over
the examples of the global batch). Exact label shares, the segment loss against a hand computation, and
the same loss padded, packed, accumulated and (tests/test_distributed.py) on two processes."""

import copy

import pytest
import torch
import torch.nn.functional as F

from cotdistill.config import TrainConfig
from cotdistill.examples import Example
from cotdistill.train.packing import collate_packed, resolve_packing
from cotdistill.sequences.placements import SequenceBuilder, label_share
from cotdistill.train.loop import collate, train
from cotdistill.train.loss import weighted_loss_sum
from tests.helpers import colour_examples, tiny_model
from tests.test_training import _family_model, _sequences

SKY = Example(id="q1", question="what colour sky ?", choices=("red", "blue", "green"), label="b",
              rationale="the sky scatters blue light .")
# With the word tokenizer: label ' (b)' 3 tokens, eos 1, rationale 6, '\nExplanation:' 2, '\nSo the answer is' 4.


@pytest.mark.parametrize("w, none, after, before", [
    (1.0, 1.0, 3 / 12, 8 / 14),          # after: 3 / (3 + 2 + 6 + 1); before: (4 + 3 + 1) / (6 + 8)
    (0.5, 1.0, 3 / 7.5, 8 / 11),         # after: 3 / (3 + 0.5 x 9);   before: 8 / (0.5 x 6 + 8)
    (0.0, 1.0, 1.0, 1.0),
])
def test_label_share_exact_values(word_tokenizer, w, none, after, before):
    shares = {p: SequenceBuilder(word_tokenizer, p, rationale_weight=w).build(SKY) for p in ("none", "after", "before")}
    assert {p: s.label_share("token") for p, s in shares.items()} == \
        pytest.approx({"none": none, "after": after, "before": before}, abs=1e-12)
    assert {p: s.label_share("segment") for p, s in shares.items()} == \
        {"none": 1 / (1 + w), "after": 1 / (1 + w), "before": 1 / (1 + w)}


def test_segment_gives_every_placement_the_same_label_share_over_a_batch(word_tokenizer):
    exs = colour_examples(12)                          # rationales of different lengths
    token, segment = {}, {}
    for p in ("none", "after", "before"):
        seqs = [SequenceBuilder(word_tokenizer, p, rationale_weight=0.5).build(ex) for ex in exs]
        token[p], segment[p] = label_share(seqs, "token"), label_share(seqs, "segment")
    assert segment == {"none": 2 / 3, "after": 2 / 3, "before": 2 / 3}
    assert token["none"] == 1.0 and token["after"] < token["before"] < 1.0      # placement-dependent
    assert label_share([], "token") is None


def test_segment_weights_make_each_parts_mean(word_tokenizer):
    """Per example, the label part's factors sum to 1 / (1 + w), the rationale part's to w / (1 + w),
    spread evenly over each part's tokens; token mode keeps the builder's weights unchanged."""
    for p in ("none", "after", "before"):
        s = SequenceBuilder(word_tokenizer, p, rationale_weight=0.5).build(SKY)
        factors, groups = s.loss_weights("segment"), s.groups()
        label = [f for f, g in zip(factors, groups) if g == "label"]
        rationale = [f for f, g in zip(factors, groups) if g == "rationale"]
        assert sum(label) == pytest.approx(2 / 3, abs=1e-12) and len(set(label)) == 1
        assert sum(rationale) == pytest.approx(0 if p == "none" else 1 / 3, abs=1e-12)
        assert all(f == 0 for f, g in zip(factors, groups) if g is None)
        assert s.loss_weights("token") == s.weights
    with pytest.raises(ValueError, match="loss normalisation must be token or segment, not 'sample'"):
        s.loss_weights("sample")


def _by_hand(model, seqs, w: float) -> float:
    """Mean over the examples of (label mean + w x rationale mean) / (1 + w), each mean of the next-token
    cross-entropy over the part's tokens, from each sequence's own full forward."""
    losses = []
    with torch.no_grad():
        for s in seqs:
            logp = F.log_softmax(model(input_ids=torch.tensor([s.input_ids])).logits.float()[0], -1)
            ce = {"label": [], "rationale": []}
            for t, g in enumerate(s.groups()):
                if g is not None and s.weights[t] > 0:
                    ce[g].append(-float(logp[t - 1, s.input_ids[t]]))
            rationale = sum(ce["rationale"]) / len(ce["rationale"]) if ce["rationale"] else 0.0
            losses.append((sum(ce["label"]) / len(ce["label"]) + w * rationale) / (1 + w))
    return sum(losses) / len(losses)


@pytest.mark.parametrize("placement", ["none", "after", "before"])
@pytest.mark.parametrize("w", [0.5, 0.0])
def test_segment_loss_equals_the_hand_computation(word_tokenizer, placement, w):
    model = tiny_model(word_tokenizer, dropout=0.0).eval()
    seqs = [SequenceBuilder(word_tokenizer, placement, rationale_weight=w).build(ex) for ex in colour_examples(4)]
    batch = collate(seqs, word_tokenizer.pad_token_id, "segment")
    with torch.no_grad():
        ours = weighted_loss_sum(model, batch) / len(seqs)
    assert ours.item() == pytest.approx(_by_hand(model, seqs, w), abs=1e-6)


@pytest.mark.parametrize("family", ["gpt2", "llama", "gemma2", "phi"])
@pytest.mark.parametrize("placement", ["none", "after", "before"])
def test_a_training_step_logs_the_segment_loss_by_hand_with_accumulation(family, placement):
    """Two micro-batches of two: the step's loss is the mean over the four examples, as by hand."""
    model = _family_model(family)
    before = copy.deepcopy(model).eval()
    seqs = _sequences(placement, bos=family != "gpt2")
    for s in seqs:
        s.rationale_weight = 0.5
    events = []
    cfg = TrainConfig(steps=1, batch_size=2, grad_accum=2, lr=1e-3, warmup_steps=1, precision="fp32",
                      loss_normalization="segment")
    train(model, seqs, cfg, seed=0, pad_id=0, callback=events.append)
    assert events[0]["loss"] == pytest.approx(_by_hand(before, seqs, 0.5), abs=1e-6)


@pytest.mark.parametrize("family", ["gpt2", "llama", "gemma2", "phi"])
def test_segment_loss_and_gradients_packed_equal_padded(family):
    model = _family_model(family)
    assert resolve_packing(model, None) is True
    seqs = _sequences("after", bos=family != "gpt2") + _sequences("before", bos=family != "gpt2")
    losses, grads = [], []
    for batch in (collate(seqs, 0, "segment"), collate_packed(seqs, 0, "segment")):
        model.zero_grad()
        loss = weighted_loss_sum(model, batch) / len(seqs)
        loss.backward()
        losses.append(loss.item())
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]))
    assert losses[0] == pytest.approx(losses[1], abs=1e-6)
    assert torch.allclose(grads[0], grads[1], atol=1e-5)


def test_segment_training_packed_follows_padded_and_accumulation_matches_the_big_batch(word_tokenizer):
    seqs = [SequenceBuilder(word_tokenizer, "after", rationale_weight=0.5).build(ex) for ex in colour_examples(16)]
    curves = []
    for packing in (False, True):
        cfg = TrainConfig(steps=5, batch_size=8, lr=1e-3, warmup_steps=1, group_by_length=False, packing=packing,
                          loss_normalization="segment")
        losses = []
        result = train(tiny_model(word_tokenizer, dropout=0.0), seqs, cfg, seed=0, pad_id=word_tokenizer.pad_token_id,
                       callback=lambda p: losses.append(p["loss"]))
        assert result.packed is packing
        curves.append(losses)
    assert curves[0] == pytest.approx(curves[1], abs=1e-5)
    big, small = tiny_model(word_tokenizer, dropout=0.0), tiny_model(word_tokenizer, dropout=0.0)
    common = dict(steps=1, lr=1e-2, warmup_steps=1, group_by_length=False, loss_normalization="segment")
    train(big, seqs, TrainConfig(batch_size=16, grad_accum=1, **common), seed=0, pad_id=1)
    train(small, seqs, TrainConfig(batch_size=8, grad_accum=2, **common), seed=0, pad_id=1)
    for a, b in zip(big.parameters(), small.parameters()):
        assert torch.allclose(a, b, atol=1e-6)


def test_token_normalisation_is_the_default_and_segment_changes_the_result(word_tokenizer):
    seqs = [SequenceBuilder(word_tokenizer, "after", rationale_weight=0.5).build(ex) for ex in colour_examples(8)]
    curves = {}
    for cfg in (TrainConfig(steps=3, batch_size=4, lr=3e-3, warmup_steps=1),
                TrainConfig(steps=3, batch_size=4, lr=3e-3, warmup_steps=1, loss_normalization="token"),
                TrainConfig(steps=3, batch_size=4, lr=3e-3, warmup_steps=1, loss_normalization="segment")):
        torch.manual_seed(0)
        losses = []
        train(tiny_model(word_tokenizer), seqs, cfg, seed=0, pad_id=1, callback=lambda p: losses.append(p["loss"]))
        curves.setdefault(cfg.loss_normalization, []).append(losses)
    assert curves["token"][0] == curves["token"][1]           # bit for bit
    assert curves["segment"][0] != curves["token"][0]


def test_the_preview_states_each_arms_label_share(tmp_path):
    from cotdistill.config import RunConfig, from_dict
    from cotdistill.preview import SHARE_SAMPLE, preview_rows, render
    from cotdistill.run import load_examples, make_builder
    from tests.test_placeholders import llama_style
    tok = llama_style()
    tok.save_pretrained(tmp_path / "tok")
    base = {"student": {"name": str(tmp_path / "tok")}, "rationale_weight": 0.5,
            "data": {"name": "synthetic", "options": {"n_train": 80, "n_test": 10}}}
    cfg = from_dict(RunConfig, base)
    rows = preview_rows(cfg, n=1, placements=["none", "before", "after"])
    train_ex, _ = load_examples(cfg)
    for row in rows:
        arm = from_dict(RunConfig, {**base, "placement": row["placement"]})
        seqs = [make_builder(arm, tok, train_ex).build(ex) for ex in train_ex[:SHARE_SAMPLE]]
        assert row["label_share"] == label_share(seqs, "token") and row["label_share_n"] == SHARE_SAMPLE
    assert [r["label_share"] == 1.0 for r in rows] == [True, False, False]
    assert f"label share of the loss {rows[2]['label_share']:.3f} (token normalisation, 64 training examples)" \
        in render(rows[2], color=False)
    segment = preview_rows(from_dict(RunConfig, {**base, "train": {"loss_normalization": "segment"}}), n=1,
                           placements=["none", "before", "after"])
    assert [r["label_share"] for r in segment] == [2 / 3] * 3
    assert "label share of the loss 0.667 (segment normalisation: 1 / (1 + rationale_weight))" in \
        render(segment[0], color=False)
