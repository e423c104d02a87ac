import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cotdistill.config import TrainConfig
from cotdistill.placements import SequenceBuilder
from cotdistill.runner import RunError
from cotdistill.training import (NonFiniteLoss, check_finite_loss, collate, length_grouped_batches, lr_lambda,
                                 random_batches, train, weighted_loss_sum)
from tests.helpers import colour_examples, tiny_model


def test_length_grouped_batches_cover_every_index_once_and_pad_less():
    rng = np.random.default_rng(0)
    lengths = rng.integers(10, 200, size=1000).tolist()
    grouped = length_grouped_batches(lengths, 16, np.random.default_rng(1))
    assert sorted(i for b in grouped for i in b) == list(range(1000))
    assert all(len(b) == 16 for b in grouped[:-1]) or sum(len(b) < 16 for b in grouped) <= 1
    plain = random_batches(lengths, 16, np.random.default_rng(1))
    padded = lambda batches: sum(max(lengths[i] for i in b) * len(b) for b in batches)  # noqa: E731
    assert padded(grouped) < 0.7 * padded(plain)


def test_collate_pads_right_and_keeps_weights(word_tokenizer):
    b = SequenceBuilder(word_tokenizer, "after")
    seqs = [b.build(ex) for ex in colour_examples(3)]
    batch = collate(seqs, word_tokenizer.pad_token_id)
    width = max(len(s) for s in seqs)
    assert batch["input_ids"].shape == (3, width)
    for row, s in enumerate(seqs):
        assert batch["attention_mask"][row].sum() == len(s)
        assert batch["weights"][row, :len(s)].tolist() == s.weights
        assert (batch["input_ids"][row, len(s):] == word_tokenizer.pad_token_id).all()


def test_weighted_loss_equals_masked_cross_entropy(word_tokenizer):
    model = tiny_model(word_tokenizer, dropout=0.0).eval()
    seqs = [SequenceBuilder(word_tokenizer, "after").build(ex) for ex in colour_examples(4)]
    batch = collate(seqs, word_tokenizer.pad_token_id)
    ours = weighted_loss_sum(model, batch) / batch["weights"][:, 1:].sum()
    labels = torch.full_like(batch["input_ids"], -100)
    for row, s in enumerate(seqs):
        labels[row, :len(s)] = torch.tensor(s.labels)
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    reference = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1))
    assert ours.item() == pytest.approx(reference.item(), rel=1e-5)


def test_lr_schedule_warms_up_then_decays():
    f = lr_lambda(TrainConfig(steps=100, warmup_steps=10, min_lr_ratio=0.1))
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0)
    assert f(10) == pytest.approx(1.0) and f(100) == pytest.approx(0.1)
    assert f(55) == pytest.approx(0.55)


def test_training_lowers_the_loss_and_reports_progress(word_tokenizer):
    model = tiny_model(word_tokenizer)
    seqs = [SequenceBuilder(word_tokenizer, "none").build(ex) for ex in colour_examples()]
    events = []
    cfg = TrainConfig(steps=40, batch_size=8, lr=3e-3, warmup_steps=4, log_every=5)
    result = train(model, seqs, cfg, seed=0, pad_id=word_tokenizer.pad_token_id, callback=events.append)
    assert [e["step"] for e in events] == list(range(1, 41))
    assert events[0]["total"] == 40 and events[-1]["eta_s"] == 0
    assert result.final_loss < 0.5 * events[0]["loss"]
    assert result.tokens_per_s > 0


def test_gradient_accumulation_matches_the_big_batch(word_tokenizer):
    seqs = [SequenceBuilder(word_tokenizer, "after").build(ex) for ex in colour_examples(16)]
    big, small = tiny_model(word_tokenizer, dropout=0.0), tiny_model(word_tokenizer, dropout=0.0)
    common = dict(steps=1, lr=1e-2, warmup_steps=1, group_by_length=False)
    train(big, seqs, TrainConfig(batch_size=16, grad_accum=1, **common), seed=0, pad_id=1)
    train(small, seqs, TrainConfig(batch_size=8, grad_accum=2, **common), seed=0, pad_id=1)
    for a, b in zip(big.parameters(), small.parameters()):
        assert torch.allclose(a, b, atol=1e-6)


class Crash(Exception):
    pass


def test_resume_from_checkpoint_is_exact(word_tokenizer, tmp_path):
    seqs = [SequenceBuilder(word_tokenizer, "after").build(ex) for ex in colour_examples()]
    cfg = TrainConfig(steps=8, batch_size=5, lr=3e-3, warmup_steps=2, checkpoint_every=3)
    straight = tiny_model(word_tokenizer)
    train(straight, seqs, cfg, seed=7, pad_id=1, checkpoint_dir=tmp_path / "a")

    def crash_at_4(event):
        if event["step"] == 4:
            raise Crash()

    interrupted = tiny_model(word_tokenizer)
    with pytest.raises(Crash):
        train(interrupted, seqs, cfg, seed=7, pad_id=1, checkpoint_dir=tmp_path / "b", callback=crash_at_4)
    torch.manual_seed(12345)                          # a different RNG state: the checkpoint restores it
    resumed = tiny_model(word_tokenizer, seed=99)
    result = train(resumed, seqs, cfg, seed=7, pad_id=1, checkpoint_dir=tmp_path / "b")
    assert result.resumed_from == 3
    for a, b in zip(straight.parameters(), resumed.parameters()):
        assert torch.equal(a, b)


@pytest.mark.parametrize("loss, kind", [(float("nan"), "NaN"), (float("inf"), "inf"), (float("-inf"), "-inf")])
def test_a_non_finite_loss_is_named_with_its_step_and_what_to_change(loss, kind):
    cfg = TrainConfig(lr=0.5, clip=1.0, precision="fp32")
    with pytest.raises(NonFiniteLoss) as e:
        check_finite_loss(loss, 7, cfg)
    assert str(e.value) == (f"loss became {kind} at step 7: training diverged (train.lr=0.5, train.clip=1, "
                            "train.precision=fp32); lower train.lr or raise train.warmup_steps and run again")
    assert isinstance(e.value, RunError)              # the CLI and the worker report it like any run error
    check_finite_loss(3.25, 7, cfg)                   # a finite loss passes
    check_finite_loss(0.0, 1, cfg)


def test_a_diverging_run_stops_at_the_first_nan_step_before_the_optimizer_applies_it(word_tokenizer, tmp_path):
    model = tiny_model(word_tokenizer)
    seqs = [SequenceBuilder(word_tokenizer, "none").build(ex) for ex in colour_examples()]
    events = []
    cfg = TrainConfig(steps=6, batch_size=8, lr=1e30, warmup_steps=0, log_every=1, checkpoint_every=1)
    with pytest.raises(NonFiniteLoss, match=r"^loss became NaN at step 2: .*train\.lr=1e\+30"):
        train(model, seqs, cfg, seed=0, pad_id=word_tokenizer.pad_token_id, callback=events.append,
              checkpoint_dir=tmp_path)
    assert [e["step"] for e in events] == [1]         # step 1 was finite and reported; step 2 never was
    assert np.isfinite(events[0]["loss"])
    assert (tmp_path / "step").read_text() == "1"     # no checkpoint of the NaN step
