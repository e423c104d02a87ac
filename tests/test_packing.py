"""Padding-free packing: rows, positions and weights exactly as documented; the weighted loss and its
gradients equal the padded ones across families; no attention across packed sequences."""

import pytest
import torch

from cotdistill.config import TrainConfig
from cotdistill.errors import PackingError
from cotdistill.train.packing import collate_packed, pack_rows, resolve_packing
from cotdistill.sequences.placements import Segment, TrainingSequence
from cotdistill.train.loop import collate, train
from cotdistill.train.loss import weighted_loss_sum
from test_logits import model_of

PACK_FAMILIES = ("gpt2", "llama", "qwen2", "gemma", "gemma2", "phi")


def seq(ids, weights, name="s"):
    return TrainingSequence(name, [Segment("prompt", list(ids[:2]), 0.0)] +
                            [Segment("label", [i], w) for i, w in zip(ids[2:], weights[2:])])


def random_seqs(lengths, vocab=128, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = []
    for n, length in enumerate(lengths):
        ids = torch.randint(3, vocab, (length,), generator=g).tolist()
        weights = [0.0, 0.0] + [0.5 + (i % 3) / 2 for i in range(length - 2)]
        out.append(seq(ids, weights, f"s{n}"))
    return out


def test_pack_rows_first_fit_decreasing():
    assert pack_rows([5, 3, 2, 4, 1]) == [[0], [3, 4], [1, 2]]
    assert pack_rows([2, 2, 2], capacity=4) == [[0, 1], [2]]
    assert pack_rows([]) == []
    with pytest.raises(ValueError, match="does not fit rows of 3"):
        pack_rows([4], capacity=3)


def test_collate_packed_restarts_positions_and_pads_as_its_own_segment():
    a = seq([10, 11, 12, 13], [0, 0, 1, 1])
    b = seq([20, 21, 22], [0, 0, 2])
    c = seq([30, 31], [0, 0])
    batch = collate_packed([a, b, c], pad_id=0)
    assert batch["input_ids"].tolist() == [[10, 11, 12, 13], [20, 21, 22, 0], [30, 31, 0, 0]]
    assert batch["position_ids"].tolist() == [[0, 1, 2, 3], [0, 1, 2, 0], [0, 1, 0, 1]]
    assert batch["weights"].tolist() == [[0, 0, 1, 1], [0, 0, 2, 0], [0, 0, 0, 0]]
    two = collate_packed([b, c, seq([40, 41, 42, 43, 44], [0, 0, 1, 1, 1])], pad_id=0)
    assert two["input_ids"].tolist() == [[40, 41, 42, 43, 44], [20, 21, 22, 30, 31]]
    assert two["position_ids"].tolist() == [[0, 1, 2, 3, 4], [0, 1, 2, 0, 1]]
    assert "attention_mask" not in two
    assert two["roles"].tolist() == [[0, 0, 0, 0, 1], [0, 0, 1, 0, 0]]     # the (last) label span: code 1


def test_a_sequences_first_weight_is_dropped_as_in_the_padded_loss():
    batch = collate_packed([seq([1, 2, 3], [0, 0, 1]), seq([4, 5, 6], [7, 0, 1])], pad_id=0, capacity=6)
    assert batch["weights"].tolist() == [[0, 0, 1, 0, 0, 1]]


@pytest.mark.parametrize("family", PACK_FAMILIES)
def test_packed_loss_and_gradients_equal_padded(family):
    model = model_of(family)
    seqs = random_seqs([9, 4, 5, 3, 7, 2, 6])
    assert resolve_packing(model, None) is True
    padded = collate(seqs, pad_id=0)
    packed = collate_packed(seqs, pad_id=0)
    assert packed["input_ids"].shape[0] < padded["input_ids"].shape[0]      # fewer rows: less padding
    losses, grads = [], []
    for batch in (padded, packed):
        model.zero_grad()
        loss = weighted_loss_sum(model, batch)
        loss.backward()
        losses.append(loss.item())
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]))
    assert losses[0] == pytest.approx(losses[1], abs=1e-5, rel=1e-6)
    assert torch.allclose(grads[0], grads[1], atol=1e-5)


@pytest.mark.parametrize("family", PACK_FAMILIES)
def test_changing_one_packed_sequence_leaves_the_others_logits_unchanged(family):
    model = model_of(family)
    a, b = random_seqs([6, 5])
    other = random_seqs([6], seed=7)[0]
    rows = [collate_packed([a, b], pad_id=0, capacity=11), collate_packed([other, b], pad_id=0, capacity=11)]
    assert [r["input_ids"].shape for r in rows] == [torch.Size([1, 11])] * 2
    assert rows[0]["input_ids"][0, :6].tolist() != rows[1]["input_ids"][0, :6].tolist()
    with torch.no_grad():
        out = [model(input_ids=r["input_ids"], position_ids=r["position_ids"], use_cache=False).logits
               for r in rows]
        alone = model(input_ids=torch.tensor([b.input_ids])).logits
    assert torch.equal(out[0][0, 6:], out[1][0, 6:])                       # b sees nothing of a
    assert (out[0][0, :6] - out[1][0, :6]).abs().max() > 1e-3               # a's change is visible in a
    assert torch.allclose(out[0][0, 6:], alone[0], atol=1e-5)              # b as if alone: positions restart


def test_training_packed_follows_the_padded_loss_curve(word_tokenizer):
    from helpers import colour_examples, tiny_model
    from cotdistill.sequences.placements import SequenceBuilder
    builder = SequenceBuilder(word_tokenizer, "after")
    seqs = [builder.build(ex) for ex in colour_examples(24)]
    curves = []
    for packing in (False, True):
        cfg = TrainConfig(steps=6, batch_size=8, lr=1e-3, warmup_steps=1, group_by_length=False, packing=packing)
        losses = []
        result = train(tiny_model(word_tokenizer, dropout=0.0), seqs, cfg, seed=0,
                       pad_id=word_tokenizer.pad_token_id,
                       callback=lambda p: losses.append((p["loss"], p["label_loss"], p["rationale_loss"], p["tokens"])))
        assert result.packed is packing
        curves.append(losses)
    for padded, packed in zip(*curves):                 # total, label and rationale loss; tokens seen
        assert padded[:3] == pytest.approx(packed[:3], abs=1e-5) and padded[3] == packed[3]


def test_a_student_that_mixes_packed_sequences_is_padded_on_auto_and_refused_when_asked():
    model = model_of("llama")
    model.config._attn_implementation = "sdpa"
    original = type(model.model).forward

    def ignores_positions(self, *args, position_ids=None, **kwargs):     # a family blind to packed positions
        return original(self, *args, **kwargs)
    type(model.model).forward = ignores_positions
    try:
        assert resolve_packing(model, None) is False
        assert resolve_packing(model, False) is False
        with pytest.raises(PackingError, match="does not keep packed sequences apart.*set train.packing to false"):
            resolve_packing(model, True)
    finally:
        type(model.model).forward = original


def test_packed_roles_mark_each_sequences_label_and_rationale_spans(word_tokenizer):
    from helpers import colour_examples
    from cotdistill.sequences.placements import SequenceBuilder
    a, b = [SequenceBuilder(word_tokenizer, "after").build(ex) for ex in colour_examples(2)]
    batch = collate_packed([a, b], pad_id=0, capacity=len(a) + len(b))
    first = 0 if len(a) >= len(b) else len(b)                 # the longer sequence goes first
    second = len(b) if first == 0 else 0
    roles = batch["roles"][0].tolist()
    for s, at in ((a, first), (b, second)):
        for role, code in (("label", 1), ("rationale", 2)):
            start, end = s.spans[role]
            assert roles[at + start:at + end] == [code] * (end - start) and end > start
    assert roles.count(1) == sum(s.spans["label"][1] - s.spans["label"][0] for s in (a, b))
