import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cotdistill.train import checkpoints
from cotdistill.train.checkpoints import Checkpoint, candidates
from cotdistill.errors import CorruptCheckpoint
from cotdistill.config import TrainConfig
from cotdistill.sequences.placements import SequenceBuilder
from cotdistill.errors import RunError
from cotdistill.errors import NonFiniteLoss
from cotdistill.train.loop import (check_finite_loss, collate, length_grouped_batches, lr_lambda,
                                   random_batches, train)
from cotdistill.train.loss import weighted_loss_sum
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
    assert [c.step for c in candidates(tmp_path)] == [1]   # no checkpoint of the NaN step


# ------------------------------------------------------------------ verified checkpoints

def _crashed_run(word_tokenizer, folder, *, steps=8, every=3, crash_at=7):
    """A run that checkpointed every `every` steps and crashed at step `crash_at`."""
    seqs = [SequenceBuilder(word_tokenizer, "after").build(ex) for ex in colour_examples()]
    cfg = TrainConfig(steps=steps, batch_size=5, lr=3e-3, warmup_steps=2, checkpoint_every=every)

    def crash(event):
        if event["step"] == crash_at:
            raise Crash()

    with pytest.raises(Crash):
        train(tiny_model(word_tokenizer), seqs, cfg, seed=7, pad_id=1, checkpoint_dir=folder, callback=crash)
    return seqs, cfg


def truncate(c: Checkpoint) -> str:
    path = c.path / checkpoints.STATE
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.truncate(size // 2)
    return f"{path} has {size // 2} bytes, its manifest says {size}"


def flip_byte(c: Checkpoint) -> str:
    path = c.path / checkpoints.STATE
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    return f"{path} does not match its manifest's sha256"


def drop_manifest(c: Checkpoint) -> str:
    (c.path / checkpoints.MANIFEST).unlink()
    return f"{c.path / checkpoints.MANIFEST} is missing (the checkpoint was never completed)"


def test_checkpoints_keep_the_last_two_good_ones_with_a_manifest_each(word_tokenizer, tmp_path):
    seqs = [SequenceBuilder(word_tokenizer, "after").build(ex) for ex in colour_examples()]
    cfg = TrainConfig(steps=8, batch_size=5, lr=3e-3, warmup_steps=2, checkpoint_every=2)
    train(tiny_model(word_tokenizer), seqs, cfg, seed=0, pad_id=1, checkpoint_dir=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-6", "checkpoint-8"]
    for c in candidates(tmp_path):
        assert sorted(p.name for p in c.path.iterdir()) == ["manifest.json", "state.pt"]
        checkpoints.verify(c)                         # sizes and hashes match
        assert checkpoints.load(c)["step"] == c.step


def test_a_crash_while_saving_never_costs_the_previous_good_checkpoints(word_tokenizer, tmp_path, monkeypatch):
    seqs = [SequenceBuilder(word_tokenizer, "after").build(ex) for ex in colour_examples()]
    cfg = TrainConfig(steps=8, batch_size=5, lr=3e-3, warmup_steps=2, checkpoint_every=2)
    real_sha = checkpoints.sha256

    def die_hashing_step_6(path):                   # the state is written, its manifest never is
        if path.parent.name == "checkpoint-6":
            raise Crash()
        return real_sha(path)

    monkeypatch.setattr(checkpoints, "sha256", die_hashing_step_6)
    with pytest.raises(Crash):
        train(tiny_model(word_tokenizer), seqs, cfg, seed=0, pad_id=1, checkpoint_dir=tmp_path)
    monkeypatch.setattr(checkpoints, "sha256", real_sha)
    # nothing pruned before 6 was complete; the half-written 6 is removed by the failed save (a process
    # killed outright leaves it without a manifest: moved aside on resume, see the test below)
    assert [c.step for c in candidates(tmp_path)] == [4, 2]
    events = []
    assert checkpoints.latest(tmp_path, report=events.append).step == 4
    assert events == []


@pytest.mark.parametrize("corrupt", [truncate, flip_byte, drop_manifest])
def test_a_corrupt_checkpoint_is_moved_aside_and_the_run_resumes_exactly_from_the_previous_one(
        word_tokenizer, tmp_path, corrupt):
    seqs, cfg = _crashed_run(word_tokenizer, tmp_path / "b")
    assert [c.step for c in candidates(tmp_path / "b")] == [6, 3]
    why = corrupt(candidates(tmp_path / "b")[0])
    straight = tiny_model(word_tokenizer)
    train(straight, seqs, cfg, seed=7, pad_id=1, checkpoint_dir=tmp_path / "a")
    events = []
    torch.manual_seed(12345)
    resumed = tiny_model(word_tokenizer, seed=99)
    result = train(resumed, seqs, cfg, seed=7, pad_id=1, checkpoint_dir=tmp_path / "b", on_checkpoint=events.append)
    assert result.resumed_from == 3
    aside = tmp_path / "b" / "checkpoint-6.corrupt-1"
    assert events == [{"phase": "checkpoint", "kind": "corrupt", "path": str(tmp_path / "b" / "checkpoint-6"),
                       "moved_to": str(aside), "resume_step": 3,
                       "message": f"checkpoint at step 6 is corrupt or incomplete: {why}; moved it aside to "
                                  f"{aside}; resuming from the previous good checkpoint, step 3 "
                                  f"({tmp_path / 'b' / 'checkpoint-3'})"}]
    assert aside.is_dir()
    for a, b in zip(straight.parameters(), resumed.parameters()):
        assert torch.equal(a, b)                      # exact, as if the run had never stopped


def test_with_no_good_checkpoint_left_training_starts_from_scratch_and_says_so(word_tokenizer, tmp_path):
    seqs, cfg = _crashed_run(word_tokenizer, tmp_path)
    newest, older = candidates(tmp_path)
    drop_manifest(newest)
    why = flip_byte(older)
    events = []
    result = train(tiny_model(word_tokenizer), seqs, cfg, seed=7, pad_id=1, checkpoint_dir=tmp_path,
                   on_checkpoint=events.append)
    assert result.resumed_from == 0 and result.steps == 8
    assert [e["resume_step"] for e in events] == [0, 0]
    assert events[1]["message"] == (f"checkpoint at step 3 is corrupt or incomplete: {why}; moved it aside to "
                                    f"{tmp_path / 'checkpoint-3.corrupt-1'}; no good checkpoint is left, so "
                                    f"training starts from scratch")
    assert {p.name for p in tmp_path.iterdir()} == {"checkpoint-3.corrupt-1", "checkpoint-6.corrupt-1",
                                                    "checkpoint-6", "checkpoint-8"}   # the new run's two


def test_moving_aside_numbers_the_corrupt_copies(tmp_path):
    for n in (1, 2):
        (tmp_path / "checkpoint-5").mkdir()
        assert checkpoints.move_aside(Checkpoint(tmp_path / "checkpoint-5", 5)) == \
            tmp_path / f"checkpoint-5.corrupt-{n}"
    assert checkpoints.latest(tmp_path) is None       # corrupt copies are never candidates again


def test_a_manifest_that_is_not_json_is_named(tmp_path):
    folder = tmp_path / "checkpoint-2"
    folder.mkdir()
    (folder / "state.pt").write_bytes(b"x")
    (folder / "manifest.json").write_text("{not json")
    with pytest.raises(CorruptCheckpoint, match=rf"^{folder / 'manifest.json'} is not a valid manifest \(JSONDecodeError"):
        checkpoints.verify(Checkpoint(folder, 2))


def test_a_checkpoint_that_verifies_but_cannot_be_loaded_is_moved_aside_and_named(word_tokenizer, tmp_path):
    """A manifest written for a bad file (say by a buggy copy tool): the hashes match, torch cannot read it."""
    import json
    seqs, cfg = _crashed_run(word_tokenizer, tmp_path)
    newest = candidates(tmp_path)[0]
    state = newest.path / checkpoints.STATE
    state.write_bytes(b"not a torch file")
    manifest = {"step": 6, "files": {"state.pt": {"size": state.stat().st_size, "sha256": checkpoints.sha256(state)}}}
    (newest.path / checkpoints.MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(RunError, match=rf"^checkpoint {state} matches its manifest but cannot be loaded \(.*\); "
                                       rf"moved it aside to {tmp_path / 'checkpoint-6.corrupt-1'}: retry the run"):
        train(tiny_model(word_tokenizer), seqs, cfg, seed=7, pad_id=1, checkpoint_dir=tmp_path)
    result = train(tiny_model(word_tokenizer), seqs, cfg, seed=7, pad_id=1, checkpoint_dir=tmp_path)
    assert result.resumed_from == 3                   # the retry resumes from the one before


def test_a_checkpoint_of_the_layout_before_manifests_is_moved_aside_and_said(word_tokenizer, tmp_path):
    seqs = [SequenceBuilder(word_tokenizer, "none").build(ex) for ex in colour_examples(8)]
    (tmp_path / "checkpoint.pt").write_bytes(b"old")
    (tmp_path / "step").write_text("40")
    events = []
    result = train(tiny_model(word_tokenizer), seqs, TrainConfig(steps=2, batch_size=4), seed=0, pad_id=1,
                   checkpoint_dir=tmp_path, on_checkpoint=events.append)
    assert result.resumed_from == 0
    assert [e["message"] for e in events] == [
        f"checkpoint at step 40 is corrupt or incomplete: {tmp_path / 'checkpoint.pt'} has no manifest (an "
        f"older cotdistill wrote it); moved it aside to {tmp_path / 'checkpoint.pt.corrupt-1'}; no good "
        f"checkpoint is left, so training starts from scratch"]


# ------------------------------------------------------------------------------------------ curves

def _family_model(family: str):
    """A small random model of `family` (configs as tests/test_logits.py builds them), without dropout:
    the logged losses are compared with a forward in eval mode."""
    from tests.test_logits import FAMILIES
    config_cls, model_cls, kw = FAMILIES[family]
    if family == "gpt2":
        kw = {**kw, "resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0}
    torch.manual_seed(0)
    return model_cls(config_cls(**kw))


def _sequences(placement: str, bos: bool, rationale_weight: float = 0.5) -> list:
    """Four sequences of random token ids (vocab 128) laid out as `placement` lays them out, with
    labels of one and two tokens and rationales of different lengths."""
    from cotdistill.sequences.placements import Segment, TrainingSequence
    g = torch.Generator().manual_seed(3)
    ids = lambda n: torch.randint(3, 128, (n,), generator=g).tolist()    # noqa: E731
    out = []
    for i in range(4):
        lead = [Segment("bos", [1], 0.0)] if bos else []
        prompt, label = Segment("prompt", ids(5 + i), 0.0), Segment("label", ids(1 + i % 2), 1.0)
        rationale = Segment("rationale", ids(3 + 2 * i), rationale_weight)
        if placement == "none":
            segs = [prompt, label, Segment("eos", [2], 1.0)]
        elif placement == "after":
            segs = [prompt, label, Segment("rationale_marker", ids(2), rationale_weight), rationale,
                    Segment("eos", [2], rationale_weight)]
        else:
            segs = [prompt, rationale, Segment("answer_marker", ids(2), 1.0), label, Segment("eos", [2], 1.0)]
        out.append(TrainingSequence(f"x{i}", lead + segs))
    return out


def _by_hand(model, seqs, role: str | None) -> float:
    """Mean cross-entropy of the next token over the tokens of segment `role` (None: every supervised
    token, weighted), from each sequence's own full forward."""
    total = weight = 0.0
    with torch.no_grad():
        for s in seqs:
            ids = torch.tensor([s.input_ids])
            logp = F.log_softmax(model(input_ids=ids).logits.float()[0], -1)     # (T, vocab)
            positions = range(*s.spans[role]) if role else range(1, len(s))
            for t in positions:
                w = 1.0 if role else s.weights[t]
                total += -float(logp[t - 1, s.input_ids[t]]) * w
                weight += w
    return total / weight


@pytest.mark.parametrize("family", ["gpt2", "llama", "gemma2"])
@pytest.mark.parametrize("placement", ["none", "after", "before"])
def test_logged_label_and_rationale_loss_equal_the_cross_entropy_by_hand(family, placement):
    import copy
    model = _family_model(family)
    before = copy.deepcopy(model).eval()              # the step's loss is taken before the update
    seqs = _sequences(placement, bos=family != "gpt2")
    events = []
    cfg = TrainConfig(steps=1, batch_size=2, grad_accum=2, lr=1e-3, warmup_steps=1, precision="fp32")
    train(model, seqs, cfg, seed=0, pad_id=0, callback=events.append)
    [event] = events
    assert abs(event["label_loss"] - _by_hand(before, seqs, "label")) < 1e-6
    assert abs(event["loss"] - _by_hand(before, seqs, None)) < 1e-6
    if placement == "none":
        assert event["rationale_loss"] is None        # no rationale token was trained on
    else:
        assert abs(event["rationale_loss"] - _by_hand(before, seqs, "rationale")) < 1e-6
        assert event["label_loss"] != event["loss"]   # the total mixes in the rationale


def test_an_unweighted_rationale_has_no_rationale_loss():
    model = _family_model("gpt2")
    events = []
    train(model, _sequences("after", bos=False, rationale_weight=0.0), TrainConfig(steps=1, batch_size=4),
          seed=0, pad_id=0, callback=events.append)
    assert events[0]["rationale_loss"] is None and events[0]["label_loss"] == pytest.approx(events[0]["loss"])


def test_tokens_seen_and_epochs_continue_across_a_resume(word_tokenizer, tmp_path):
    seqs = [SequenceBuilder(word_tokenizer, "after").build(ex) for ex in colour_examples(10)]
    cfg = TrainConfig(steps=6, batch_size=4, lr=3e-3, warmup_steps=2, checkpoint_every=2)
    straight = []
    train(tiny_model(word_tokenizer), seqs, cfg, seed=1, pad_id=1, callback=straight.append)
    # 10 sequences in batches of 4: 3 micro-batches an epoch; every epoch sees every token once.
    assert [e["epoch"] for e in straight] == pytest.approx([1 / 3, 2 / 3, 1, 4 / 3, 5 / 3, 2])
    every_token = sum(len(s) for s in seqs)
    assert straight[2]["tokens"] == every_token and straight[5]["tokens"] == 2 * every_token

    def crash_at_3(event):
        if event["step"] == 3:
            raise Crash()
    with pytest.raises(Crash):
        train(tiny_model(word_tokenizer), seqs, cfg, seed=1, pad_id=1, checkpoint_dir=tmp_path, callback=crash_at_3)
    resumed = []
    train(tiny_model(word_tokenizer), seqs, cfg, seed=1, pad_id=1, checkpoint_dir=tmp_path, callback=resumed.append)
    assert [e["step"] for e in resumed] == [3, 4, 5, 6]
    assert [(e["tokens"], e["epoch"]) for e in resumed] == [(e["tokens"], e["epoch"]) for e in straight[2:]]
    assert [e["label_loss"] for e in resumed] == pytest.approx([e["label_loss"] for e in straight[2:]], abs=1e-6)


def test_validation_runs_every_n_steps_and_changes_no_result(word_tokenizer):
    """The real evaluator (score and generate) between steps draws no random numbers and leaves the model
    in training mode: a run with dropout ends with the same weights as one without validation."""
    from cotdistill.evaluate.evaluation import evaluate
    builder = SequenceBuilder(word_tokenizer, "after")
    seqs = [builder.build(ex) for ex in colour_examples()]
    cfg = TrainConfig(steps=7, batch_size=8, lr=3e-3, warmup_steps=2)
    plain, checked = tiny_model(word_tokenizer), tiny_model(word_tokenizer)    # dropout 0.1: uses the RNG
    torch.manual_seed(5)
    train(plain, seqs, cfg, seed=0, pad_id=1)
    modes, events = [], []

    def validate():
        mode = ("score", "generate")[len(modes) % 2]
        modes.append(mode)
        records = evaluate(checked, builder, colour_examples(6), mode=mode, max_new_tokens=4)
        return {"val_accuracy": sum(r["correct"] for r in records) / len(records)}

    torch.manual_seed(5)
    train(checked, seqs, cfg, seed=0, pad_id=1, callback=events.append, validate=validate, validate_every=3)
    assert [e["step"] for e in events if "val_accuracy" in e] == [3, 6, 7]     # every 3 steps and the last
    assert modes == ["score", "generate", "score"] and checked.training
    for a, b in zip(plain.parameters(), checked.parameters()):
        assert torch.equal(a, b)


def test_curve_values_choose_the_rows_of_a_step():
    from cotdistill.train.curves import curve_values
    event = {"step": 4, "total": 10, "loss": 2.5, "label_loss": 0.75, "rationale_loss": None, "lr": 1e-3,
             "tokens_per_s": 100.0, "tokens": 640, "epoch": 0.5, "eta_s": 3.0}
    assert curve_values(event, 2) == {"loss": 2.5, "label_loss": 0.75, "lr": 1e-3, "tokens_per_s": 100.0,
                                      "tokens": 640.0, "epoch": 0.5}
    assert curve_values(event, 3) == {}                                     # not a logging step
    assert curve_values({**event, "val_accuracy": 0.25}, 3) == {"val_accuracy": 0.25, "tokens": 640.0,
                                                                "epoch": 0.5}
    assert curve_values({**event, "step": 10, "loss": float("nan")}, 3) == \
        {"label_loss": 0.75, "lr": 1e-3, "tokens_per_s": 100.0, "tokens": 640.0, "epoch": 0.5}   # last step
