"""The training loop: plain PyTorch, AdamW, warmup + cosine decay, accumulation, clipping.

    result = train(model, sequences, TrainConfig(steps=200), seed=0, callback=print,
                   checkpoint_dir=run_dir / "checkpoint")

Batches group sequences of similar length and pad only to the longest in the batch, or pack them
padding-free where the student supports it (cotdistill.packing, train.packing). The loss is the
token-weighted cross-entropy of the supervised positions (weights from the sequence builder), and
the output layer runs only on those positions, not on the (never supervised) prompt. A checkpoint
holds the model, optimizer, scheduler, data cursor and RNG state: resuming from it continues the run
exactly as if it had never stopped. The function never seeds global RNGs beyond restoring a checkpoint.
A step whose loss is NaN or infinite ends the run at once (NonFiniteLoss), before the optimizer applies
it: every later step would be NaN too, and a summary with a NaN loss is no result.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from cotdistill.config import TrainConfig
from cotdistill.logits import logits_at
from cotdistill.packing import collate_packed, resolve_packing
from cotdistill.placements import TrainingSequence
from cotdistill.runner import RunError         # runner imports this module only inside run(): no cycle

CHECKPOINT = "checkpoint.pt"


@dataclass
class TrainResult:
    steps: int
    final_loss: float          # mean loss of the last `log_every` steps
    tokens: int                # real (non-padding) tokens processed
    seconds: float
    resumed_from: int = 0
    packed: bool = False       # sequences were packed (cotdistill.packing), not padded

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else float("nan")


class NonFiniteLoss(RunError):
    """The loss of a step was NaN or infinite: training diverged, and no later step can recover."""


def check_finite_loss(loss: float, step: int, cfg: TrainConfig) -> None:
    """Raise NonFiniteLoss naming the (1-based) step whose loss is NaN or inf, and what to change."""
    if math.isfinite(loss):
        return
    kind = "NaN" if math.isnan(loss) else ("inf" if loss > 0 else "-inf")
    raise NonFiniteLoss(f"loss became {kind} at step {step}: training diverged (train.lr={cfg.lr:g}, "
                        f"train.clip={cfg.clip:g}, train.precision={cfg.precision}); lower train.lr or "
                        f"raise train.warmup_steps and run again")


def length_grouped_batches(lengths: Sequence[int], batch_size: int, rng: np.random.Generator,
                           group: int = 64) -> list[list[int]]:
    """Shuffle, sort within windows of `group` batches by length, cut into batches, shuffle batches."""
    order = rng.permutation(len(lengths))
    window = batch_size * group
    batches = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start:start + window].tolist(), key=lambda i: lengths[i], reverse=True)
        batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def random_batches(lengths: Sequence[int], batch_size: int, rng: np.random.Generator) -> list[list[int]]:
    order = rng.permutation(len(lengths)).tolist()
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


def collate(seqs: Sequence[TrainingSequence], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad to the longest sequence of the batch. -> input_ids, attention_mask, weights (B, T)."""
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    weights = torch.zeros((len(seqs), width), dtype=torch.float32)
    for row, s in enumerate(seqs):
        n = len(s)
        ids[row, :n] = torch.tensor(s.input_ids)
        mask[row, :n] = 1
        weights[row, :n] = torch.tensor(s.weights)
    return {"input_ids": ids, "attention_mask": mask, "weights": weights}


def weighted_loss_sum(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Sum over supervised positions of weight x cross-entropy of the next token, with logits computed
    as model(...).logits would be (cotdistill.logits: the output layer only where supervised)."""
    w = batch["weights"][:, 1:]                         # position t predicts token t+1
    keep = w > 0
    at = torch.zeros_like(batch["weights"], dtype=torch.bool)
    at[:, :-1] = keep                                   # (B, T): positions whose next token is supervised
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "position_ids") if k in batch}
    if "position_ids" in batch:
        inputs["use_cache"] = False                     # with a cache, transformers ignores packed positions
    logits, _ = logits_at(model, at, **inputs)          # (n_supervised, vocab)
    ce = F.cross_entropy(logits, batch["input_ids"][:, 1:][keep], reduction="none")
    return (ce * w[keep]).sum()


def lr_lambda(cfg: TrainConfig) -> Callable[[int], float]:
    def f(step: int) -> float:
        if step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
        return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return f


def make_optimizer(model, cfg: TrainConfig, device: torch.device):
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.95), fused=device.type == "cuda")
    return opt, torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(cfg))


def autocast_dtype(cfg: TrainConfig, device: torch.device) -> torch.dtype | None:
    if cfg.precision == "bf16" or (cfg.precision == "auto" and device.type == "cuda"):
        return torch.bfloat16
    return None


class _Batcher:
    """Micro-batches in a fixed order determined by (seed, epoch): the cursor alone resumes it."""

    def __init__(self, seqs, cfg: TrainConfig, seed: int):
        self.seqs, self.cfg, self.seed = seqs, cfg, seed
        self.lengths = [len(s) for s in seqs]
        self._epoch, self._batches = -1, []

    def __call__(self, cursor: int) -> list[int]:
        n = math.ceil(len(self.seqs) / self.cfg.batch_size)
        epoch, index = divmod(cursor, n)
        if epoch != self._epoch:
            rng = np.random.default_rng([self.seed, epoch])
            make = length_grouped_batches if self.cfg.group_by_length else random_batches
            self._epoch, self._batches = epoch, make(self.lengths, self.cfg.batch_size, rng)
        return self._batches[index]


def save_checkpoint(path: Path, model, opt, sched, step: int, cursor: int) -> None:
    path.mkdir(parents=True, exist_ok=True)
    state = {"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
             "step": step, "cursor": cursor, "torch_rng": torch.get_rng_state(),
             "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}
    tmp = path / (CHECKPOINT + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path / CHECKPOINT)                  # atomic: a crash never leaves half a file
    (path / "step").write_text(str(step))


def checkpoint_step(path: Path) -> int:
    """The step of the checkpoint in `path`, 0 if there is none (cheap: the weights stay on disk)."""
    marker = Path(path) / "step"
    return int(marker.read_text()) if (Path(path) / CHECKPOINT).exists() and marker.exists() else 0


def load_checkpoint(path: Path, model, opt, sched) -> tuple[int, int]:
    state = torch.load(path / CHECKPOINT, map_location="cpu", weights_only=False)
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["torch_rng"])
    if state["cuda_rng"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    return state["step"], state["cursor"]


def train(model, sequences: Sequence[TrainingSequence], cfg: TrainConfig, *, seed: int, pad_id: int,
          device: torch.device | str = "cpu", callback: Callable[[dict], None] | None = None,
          checkpoint_dir: Path | None = None, resume: bool = True) -> TrainResult:
    """Train `model` in place for cfg.steps optimizer steps; see the module docstring."""
    if not sequences:
        raise ValueError("no training sequences")
    device = torch.device(device)
    model.to(device).train()
    opt, sched = make_optimizer(model, cfg, device)
    step = cursor = start_step = 0
    if checkpoint_dir is not None and resume and (Path(checkpoint_dir) / CHECKPOINT).exists():
        step, cursor = load_checkpoint(Path(checkpoint_dir), model, opt, sched)
        start_step = step
    batcher, amp = _Batcher(sequences, cfg, seed), autocast_dtype(cfg, device)
    packed = resolve_packing(model, cfg.packing)
    make_batch = collate_packed if packed else collate
    tokens, recent, t0 = 0, [], time.perf_counter()
    while step < cfg.steps:
        picked = [[sequences[i] for i in batcher(cursor + k)] for k in range(cfg.grad_accum)]
        micro = [make_batch(seqs, pad_id) for seqs in picked]
        tokens += sum(len(s) for seqs in picked for s in seqs)
        cursor += cfg.grad_accum
        total_w = sum(float(b["weights"][:, 1:].sum()) for b in micro) or 1.0
        step_loss = 0.0
        for b in micro:
            b = {k: v.to(device, non_blocking=True) for k, v in b.items()}
            with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
                loss = weighted_loss_sum(model, b) / total_w
            loss.backward()
            step_loss += loss.item()
        check_finite_loss(step_loss, step + 1, cfg)
        if cfg.clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        step += 1
        recent = (recent + [step_loss])[-max(1, cfg.log_every):]
        if checkpoint_dir is not None and (step == cfg.steps or
                                           (cfg.checkpoint_every and step % cfg.checkpoint_every == 0)):
            save_checkpoint(Path(checkpoint_dir), model, opt, sched, step, cursor)
        if callback is not None:
            elapsed = time.perf_counter() - t0
            rate = (step - start_step) / elapsed if elapsed > 0 else 0.0
            callback({"step": step, "total": cfg.steps, "loss": step_loss, "lr": sched.get_last_lr()[0],
                      "tokens_per_s": tokens / elapsed if elapsed > 0 else 0.0, "elapsed_s": elapsed,
                      "eta_s": (cfg.steps - step) / rate if rate > 0 else float("nan")})
    return TrainResult(step, float(np.mean(recent)) if recent else float("nan"), tokens,
                       time.perf_counter() - t0, start_step, packed)
