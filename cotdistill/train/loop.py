"""The training loop: plain PyTorch, AdamW, warmup + cosine decay, accumulation, clipping.

    result = train(model, sequences, TrainConfig(steps=200), seed=0, callback=print,
                   checkpoint_dir=run_dir / "checkpoint")

Batches group sequences of similar length and pad only to the longest in the batch, or pack them
padding-free where the student supports it (cotdistill.train.packing, train.packing). The loss is the
token-weighted cross-entropy of the supervised positions (weights from the sequence builder), divided
by the global batch's supervised weight (train.loss_normalization token) or, with `segment`, each
example's label and rationale parts averaged over their own tokens and the examples averaged
(TrainingSequence.loss_weights); the output layer runs only on those positions, not on the (never
supervised) prompt. A checkpoint holds the model, optimizer, scheduler, data cursor and RNG state:
resuming from it continues the run exactly as if it had never stopped. Checkpoints are verified on load (cotdistill.train.checkpoints: a
manifest of sizes and hashes, the last two kept); a corrupt one is moved aside and the one before used.
The function never seeds global RNGs beyond restoring a checkpoint.
A step whose loss is NaN or infinite ends the run at once (NonFiniteLoss), before the optimizer applies
it: every later step would be NaN too, and a summary with a NaN loss is no result.

Each step reports, besides the total (weighted) loss, the loss of the label tokens alone and of the
rationale tokens alone (mean cross-entropy per token of the `label` and `rationale` segments): the label
loss means the same thing for every placement, the total does not. It also reports the training tokens
seen so far (kept across a resume) and the epoch (micro-batches consumed / micro-batches per epoch).
With `validate` and `validate_every`, the model is evaluated every N steps (and at the last step) in
eval mode, then put back in training mode; evaluation draws no random numbers, so the run's result is
the same with or without it.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from cotdistill.train import checkpoints
from cotdistill.config import TrainConfig
from cotdistill.train.loss import ROLE_CODES
from cotdistill.train.packing import collate_packed, resolve_packing
from cotdistill.sequences.placements import TrainingSequence
from cotdistill.files import os_error_of, write_failure
from cotdistill.errors import ArtifactsMissing, NonFiniteLoss, RunError, WriteFailed

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    steps: int
    final_loss: float          # mean loss of the last `log_every` steps
    tokens: int                # real (non-padding) tokens processed
    seconds: float
    resumed_from: int = 0
    packed: bool = False       # sequences were packed (cotdistill.train.packing), not padded

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else float("nan")


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


def collate(seqs: Sequence[TrainingSequence], pad_id: int, normalization: str = "token") -> dict[str, torch.Tensor]:
    """Right-pad to the longest sequence of the batch. -> input_ids, attention_mask, weights, roles
    (B, T); weights: each token's loss factor under `normalization` (TrainingSequence.loss_weights);
    roles: LABEL on the label segment's tokens, RATIONALE on the rationale's, 0 elsewhere."""
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    weights = torch.zeros((len(seqs), width), dtype=torch.float32)
    roles = torch.zeros((len(seqs), width), dtype=torch.long)
    for row, s in enumerate(seqs):
        n = len(s)
        ids[row, :n] = torch.tensor(s.input_ids)
        mask[row, :n] = 1
        weights[row, :n] = torch.tensor(s.loss_weights(normalization))
        for role, code in ROLE_CODES.items():
            start, end = s.spans.get(role, (0, 0))
            roles[row, start:end] = code
    return {"input_ids": ids, "attention_mask": mask, "weights": weights, "roles": roles}


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


def save_checkpoint(path: Path, states: tuple[dict, dict], sched, step: int, cursor: int,
                    tokens_seen: int = 0) -> checkpoints.Checkpoint:
    """Checkpoint `step` under `path` (cotdistill.train.checkpoints: manifest last, the last two kept).
    `states`: the (model, optimizer) state dicts, from the rank context's full_state (gathered when
    the model is sharded)."""
    vanished = ArtifactsMissing(f"the run folder {Path(path).parent} vanished while the run was in progress "
                                f"(checkpoint {step} could not be written): run it again")
    if not Path(path).parent.is_dir():
        raise vanished
    model_state, opt_state = states
    state = {"model": model_state, "optimizer": opt_state, "scheduler": sched.state_dict(),
             "step": step, "cursor": cursor, "tokens_seen": tokens_seen, "torch_rng": torch.get_rng_state(),
             "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}
    try:
        return checkpoints.save(Path(path), step, state)
    except FileNotFoundError:
        if not Path(path).parent.is_dir():       # deleted while the checkpoint was being written
            raise vanished from None
        raise
    except Exception as e:                       # a full disk: torch wraps the OSError in a RuntimeError
        if (error := os_error_of(e)) is None:
            raise
        raise WriteFailed(write_failure(error, "checkpoint", Path(path), checkpoints.kept(Path(path)))) from None


def checkpoint_step(path: Path) -> int:
    """The step of the newest checkpoint in `path` that has a manifest, 0 if none (hashes not read)."""
    return next((c.step for c in checkpoints.candidates(path) if (c.path / checkpoints.MANIFEST).is_file()), 0)


def load_checkpoint(found: checkpoints.Checkpoint, model, opt, sched, dist=None) -> tuple[int, int, int]:
    """Restore a verified checkpoint (-> step, cursor, training tokens seen up to that step); one that verifies but cannot be read is moved aside, and the
    RunError names it (a retry then resumes from the one before)."""
    try:
        from cotdistill.train.distributed import SINGLE
        state = checkpoints.load(found)
        (dist or SINGLE).load_state(model, opt, state["model"], state["optimizer"])
        sched.load_state_dict(state["scheduler"])
    except MemoryError:                          # the machine's trouble, not the checkpoint's
        raise
    except Exception as e:
        aside = checkpoints.move_aside(found)
        raise RunError(f"checkpoint {found.path / checkpoints.STATE} matches its manifest but cannot be "
                       f"loaded ({type(e).__name__}: {e}); moved it aside to {aside}: retry the run to "
                       f"resume from the checkpoint before it") from None
    torch.set_rng_state(state["torch_rng"])
    if state["cuda_rng"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    return state["step"], state["cursor"], state.get("tokens_seen", 0)


def _mean(total: float, n: int) -> float | None:
    return total / n if n else None


def train(model, sequences: Sequence[TrainingSequence], cfg: TrainConfig, *, seed: int, pad_id: int,
          device: torch.device | str = "cpu", callback: Callable[[dict], None] | None = None,
          checkpoint_dir: Path | None = None, resume: bool | checkpoints.Checkpoint = True,
          on_checkpoint: Callable[[dict], None] | None = None,
          validate: Callable[[], dict] | None = None, validate_every: int = 0, dist=None,
          before_write: Callable[[Path], None] | None = None) -> TrainResult:
    """Train `model` in place for cfg.steps optimizer steps; see the module docstring.

    With `resume` True the newest good checkpoint in `checkpoint_dir` is found and verified (bad ones
    are moved aside and reported to `on_checkpoint`, default the log); a Checkpoint the
    caller already found with cotdistill.train.checkpoints.latest is loaded as it is; False starts afresh.

    The callback gets, per step: step, total, loss (the weighted total), label_loss, rationale_loss
    (None when the step had no such supervised token), tokens (seen so far), epoch, lr, tokens_per_s,
    elapsed_s, eta_s, and on validation steps what `validate()` returned (e.g. val_accuracy).

    `dist` (a rank of a multi-process run, cotdistill.train.distributed) gives each rank its slice of every
    micro-batch; losses, parts and tokens are summed over ranks; rank 0 alone checkpoints, validates
    and calls back. `before_write(path)` is called before each checkpoint is written; an exception it
    raises stops training without writing (a job system's fence: cotdistill.run.run)."""
    from cotdistill.train.distributed import SINGLE
    ctx = dist or SINGLE
    if not ctx.is_main and not ctx.lockstep_eval:
        validate = None                         # FSDP: every rank validates (the weights are sharded)
    if not sequences:
        raise ValueError("no training sequences")
    device = torch.device(device)
    if not ctx.shards_model:
        model.to(device)                        # FSDP moves each rank's shard to its device itself
    model.train()
    loss_fn = ctx.loss_fn(model)                # wrapped (DDP) or sharded (FSDP) before the optimizer
    opt, sched = make_optimizer(model, cfg, device)
    step = cursor = start_step = seen = 0
    found = None
    if isinstance(resume, checkpoints.Checkpoint):
        found = resume
    elif checkpoint_dir is not None and resume:
        found = checkpoints.latest(Path(checkpoint_dir),
                                   report=on_checkpoint or (lambda e: log.warning("%s", e["message"])))
    if found is not None:
        step, cursor, seen = load_checkpoint(found, model, opt, sched, dist)
        ctx.load_rng(Path(checkpoint_dir), step)
        start_step = step
    per_epoch = math.ceil(len(sequences) / cfg.batch_size)         # micro-batches in one epoch
    batcher, amp = _Batcher(sequences, cfg, seed), autocast_dtype(cfg, device)
    packed = resolve_packing(model, cfg.packing)
    make_batch = collate_packed if packed else collate
    by_segment = cfg.loss_normalization == "segment"
    tokens, recent, t0 = 0, [], time.perf_counter()
    while step < cfg.steps:
        shards = [ctx.shard([sequences[i] for i in batcher(cursor + k)]) for k in range(cfg.grad_accum)]
        micro = [make_batch(rows, pad_id, cfg.loss_normalization) for rows, _ in shards]
        for b, (_, real) in zip(micro, shards):
            if not real:
                b["weights"].zero_()            # a rank without a row this micro-batch: weight 0
        cursor += cfg.grad_accum
        # the loss's denominator over the global batch: the supervised weight (token normalisation) or
        # the number of examples (segment: each example's weights already make its own mean)
        total_w = ctx.sum(sum(len(rows) for rows, real in shards if real) if by_segment else
                          sum(float(b["weights"][:, 1:].sum()) for b in micro)) or 1.0
        step_loss = step_tokens = 0.0
        parts = {role: [0.0, 0] for role in ROLE_CODES}
        for j, (b, (_, real)) in enumerate(zip(micro, shards)):
            b = {k: v.to(device, non_blocking=True) for k, v in b.items()}
            with ctx.no_sync(loss_fn, last=j == len(micro) - 1):
                with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
                    loss_sum, by_role = loss_fn(b)
                    loss = loss_sum / total_w * ctx.world   # x world: DDP averages gradients over ranks
                loss.backward()
            step_loss += loss.item() / ctx.world
            if real:
                for role, (ce_sum, n) in by_role.items():
                    parts[role][0] += ce_sum
                    parts[role][1] += n
        # real tokens (padded or packed: from the sequences' lengths), over all ranks
        step_tokens = sum(len(s) for rows, real in shards if real for s in rows)
        step_loss, step_tokens = ctx.sum(step_loss), int(ctx.sum(step_tokens))
        if ctx.world > 1:
            parts = {role: [ctx.sum(v[0]), int(ctx.sum(v[1]))] for role, v in parts.items()}
        tokens += step_tokens
        check_finite_loss(step_loss, step + 1, cfg)
        if cfg.clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        step += 1
        seen += step_tokens
        recent = (recent + [step_loss])[-max(1, cfg.log_every):]
        validation = {}
        if validate is not None and validate_every > 0 and (step % validate_every == 0 or step == cfg.steps):
            with ctx.evaluating():
                validation = validate()                 # before the checkpoint: a resume keeps its row
            validation = validation if ctx.is_main else {}
            model.train()
        # the step's curve row first, then its checkpoint: a run stopped between the two (killed, or
        # fenced off by a later attempt) resumes from the previous checkpoint, never from one whose
        # row is missing
        if callback is not None and ctx.is_main:
            elapsed = time.perf_counter() - t0
            rate = (step - start_step) / elapsed if elapsed > 0 else 0.0
            callback({"step": step, "total": cfg.steps, "loss": step_loss,
                      "label_loss": _mean(*parts["label"]), "rationale_loss": _mean(*parts["rationale"]),
                      "tokens": seen, "epoch": cursor / per_epoch, "lr": sched.get_last_lr()[0],
                      "tokens_per_s": tokens / elapsed if elapsed > 0 else 0.0, "elapsed_s": elapsed,
                      "eta_s": (cfg.steps - step) / rate if rate > 0 else float("nan"), **validation})
        if checkpoint_dir is not None and (step == cfg.steps or
                                           (cfg.checkpoint_every and step % cfg.checkpoint_every == 0)):
            ctx.save_rng(Path(checkpoint_dir), step)
            states = ctx.full_state(model, opt)         # FSDP: gathered from every rank
            if ctx.is_main:
                if before_write is not None:
                    before_write(Path(checkpoint_dir))
                save_checkpoint(Path(checkpoint_dir), states, sched, step, cursor, seen)
            ctx.barrier()
    return TrainResult(step, float(np.mean(recent)) if recent else float("nan"), tokens,
                       time.perf_counter() - t0, start_step, packed)
