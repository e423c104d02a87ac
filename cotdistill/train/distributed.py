"""One run on several devices: torchrun + DistributedDataParallel, with rank 0 owning the results.

    summary = launch(cfg, out, callback=print)          # starts `torchrun --nproc-per-node N` and waits
    python -m torch.distributed.run --nproc-per-node 2 -m cotdistill.run CONFIG OUT EVENTS

Why this engine: DDP is PyTorch's own, torchrun its own launcher (it starts one process per device,
watches them, and ends all of them when one dies), and our training loop stays the one loop that
single-process runs use, so checkpoints and exact resume are the same code. Accelerate would wrap
the same DDP and add a config layer we do not need.

What changes with `train.devices: N` (train.distributed: ddp):
- the global batch is unchanged: every micro-batch the single-process loop would take is cut into N
  slices, one per rank (a rank without a row that step runs a zero-weight row, so the gradient
  all-reduce always has every rank); the loss is normalised by the global supervised weight, so the
  gradient, the loss curve and the checkpoints equal a single-process run's (to float reduction order);
- rank 0 alone writes the run folder (config, metrics, checkpoint, model, summary), reports progress
  (JSON lines in EVENTS, which the caller tails) and evaluates the test set on its own, on the full
  model: the records are those of a single-process run;
- every rank keeps its own RNG state in the checkpoint folder (`rng-<rank>-<step>.pt`), so dropout resumes
  exactly too; ranks other than 0 draw dropout from their own seed (seed + 7919 x rank).

What changes with train.distributed: fsdp (PyTorch's FSDP2, `torch.distributed.fsdp.fully_shard`; gloo
on CPU, NCCL on GPUs): the same loop and the same batch slicing, but every rank holds only its shard
of the weights, gradients and AdamW state (each transformer block is one FSDP group, the embeddings,
final norm and head form the root group), so a model that does not fit one device trains across N;
- checkpoints are gathered to full (unsharded, CPU) state dicts and written by rank 0 in the same
  verified format; on resume every rank reads the file and keeps its shard: exact resume as for ddp;
- validation runs on every rank in lockstep on the same items (the blocks gather their weights as
  they run), rank 0 records it; the test set is evaluated by rank 0 alone on an ordinary, unsharded
  copy of the student that the gathered weights are loaded into, so the records and the saved model
  are those of a single-process run.

A rank that raises writes `error-<rank>.txt` beside EVENTS and exits 1 (the caller fails the run with
that message); a rank that dies without one (kill -9, the OOM killer), whose peers then fail in a
collective (`peer-<rank>.txt`, not an error of theirs), ends in RanksLost, which a job system treats
as a lost worker: it requeues the run, which resumes from its checkpoint.

One writer per run folder: every launch writes a fresh token to `dist/owner` and gives it to its
ranks (COTDISTILL_RUN_OWNER); before each write into the run folder (rank 0's results and checkpoints,
every rank's RNG state) a rank compares the two, and a rank whose launch has been superseded (a
paused or cut-off worker whose run another attempt has taken over and relaunched) exits at once
without writing anything, not even its error file. The launcher then raises Superseded.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import torch

from cotdistill.errors import RanksLost, Superseded

EVENTS = "events.jsonl"
OWNER = "owner"
OWNER_ENV = "COTDISTILL_RUN_OWNER"
SUPERSEDED_EXIT = 3


def owner_fence(folder: Path, token: str | None) -> Callable[[Path | None], None]:
    """before_write for a rank: raise Superseded unless `folder/owner` still holds this launch's token."""
    def fence(path: Path | None = None) -> None:
        if token is None:
            return
        try:
            current = (folder / OWNER).read_text(encoding="utf-8").strip()
        except OSError:
            current = None
        if current != token:
            raise Superseded(f"another attempt owns the run folder (token {current!r}, ours {token!r}); "
                             f"not writing {path}")
    return fence


def check_supported(train_cfg, device: str) -> None:
    """Refuse, before any work, a distributed setting this machine or version cannot run."""
    from cotdistill.errors import RunError
    kind = str(device).split(":")[0]
    if train_cfg.distributed == "fsdp" and not hasattr(_fsdp_module(), "fully_shard"):
        raise RunError(f"train.distributed=fsdp needs PyTorch's FSDP2 (torch.distributed.fsdp.fully_shard), "
                       f"which this torch {torch.__version__} lacks: use train.distributed=ddp")
    if train_cfg.devices > 1 and kind == "cuda" and torch.cuda.device_count() < train_cfg.devices:
        raise RunError(f"train.devices={train_cfg.devices} but only {torch.cuda.device_count()} GPU(s) "
                       f"are visible (CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')})")


# --- inside a rank ------------------------------------------------------------------------------
def _fsdp_module():
    try:
        import torch.distributed.fsdp as fsdp
    except ImportError:
        return None
    return fsdp


class Single:
    """The one-process case: every collective is the identity."""
    rank, world, is_main = 0, 1, True
    shards_model = False            # FSDP: the model's weights are split across ranks
    lockstep_eval = False           # FSDP: every rank runs validation (rank 0 records it)

    def full_state(self, model, opt) -> tuple[dict | None, dict | None]:
        """(model state, optimizer state) to checkpoint, on rank 0 (None elsewhere); every rank calls."""
        return model.state_dict(), opt.state_dict()

    def load_state(self, model, opt, model_state: dict, opt_state: dict) -> None:
        model.load_state_dict(model_state)
        opt.load_state_dict(opt_state)

    def evaluating(self):
        """Around a validation pass (FSDP: the root group's weights gathered for it)."""
        return contextlib.nullcontext()

    def plain_model(self, model, rebuild: Callable):
        """The trained model as an ordinary module on rank 0 (FSDP: `rebuild()` loaded with the
        gathered weights; None on the other ranks). Every rank calls."""
        return model

    def shard(self, rows: list) -> tuple[list, bool]:
        return rows, True

    def sum(self, value: float) -> float:
        return value

    def loss_fn(self, model) -> Callable:
        """batch -> (weighted loss sum, {role: (cross-entropy sum, tokens)}), as training.loss_parts."""
        from cotdistill.train.loss import loss_parts
        return lambda batch: loss_parts(model, batch)

    def no_sync(self, fn, last: bool):
        return contextlib.nullcontext()

    def barrier(self) -> None:
        pass

    @contextlib.contextmanager
    def main_first(self):
        yield

    def save_rng(self, path: Path, step: int) -> None:
        pass

    def load_rng(self, path: Path, step: int) -> None:
        pass


SINGLE = Single()


class _Loss(torch.nn.Module):
    """The loss as a module, so that DDP's forward (which prepares the gradient all-reduce) runs it."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, batch):
        from cotdistill.train.loss import loss_parts
        return loss_parts(self.model, batch)


class DDP(Single):
    """One rank of a torchrun job (RANK, WORLD_SIZE, LOCAL_RANK from the environment)."""

    def __init__(self):
        import torch.distributed as dist
        self.dist = dist
        self.rank, self.world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        self.local_rank = int(os.environ.get("LOCAL_RANK", self.rank))
        self.is_main = self.rank == 0
        self.fence: Callable[[Path | None], None] | None = None    # set by rank_main (owner token)
        if torch.cuda.is_available():
            torch.cuda.set_device(self.local_rank)
            self.device = f"cuda:{self.local_rank}"
        else:
            self.device = "cpu"
        dist.init_process_group("nccl" if self.device.startswith("cuda") else "gloo")

    def full_state(self, model, opt) -> tuple[dict | None, dict | None]:
        return (model.state_dict(), opt.state_dict()) if self.is_main else (None, None)

    def plain_model(self, model, rebuild: Callable):
        return model if self.is_main else None

    def shard(self, rows: list) -> tuple[list, bool]:
        mine = rows[self.rank::self.world]
        return (mine, True) if mine else (rows[:1], False)   # (rows, real): a stand-in row weighs 0

    def sum(self, value: float) -> float:
        t = torch.tensor([value], dtype=torch.float64,
                         device=self.device if self.device.startswith("cuda") else "cpu")
        self.dist.all_reduce(t)
        return float(t.item())

    def loss_fn(self, model):
        from torch.nn.parallel import DistributedDataParallel
        from cotdistill.students.logits import resolve
        resolve(model)                              # the logits route, decided before wrapping
        ids = [self.local_rank] if self.device.startswith("cuda") else None
        return DistributedDataParallel(_Loss(model), device_ids=ids)

    def no_sync(self, fn, last: bool):
        return contextlib.nullcontext() if last else fn.no_sync()   # all-reduce once per step

    def barrier(self) -> None:
        self.dist.barrier()

    @contextlib.contextmanager
    def main_first(self):
        """Rank 0 does the body first (caches: the tiny tokenizer), then the others."""
        if not self.is_main:
            self.barrier()
        yield
        if self.is_main:
            self.barrier()

    def save_rng(self, path: Path, step: int) -> None:
        if self.fence is not None:
            self.fence(path)
        path.mkdir(parents=True, exist_ok=True)
        state = {"step": step, "torch": torch.get_rng_state(),
                 "cuda": torch.cuda.get_rng_state() if self.device.startswith("cuda") else None}
        # one file per step: a job killed between this and rank 0's checkpoint must not leave a newer
        # state under the name the previous checkpoint's resume reads
        tmp = path / f"rng-{self.rank}-{step}.pt.tmp"
        torch.save(state, tmp)
        os.replace(tmp, path / f"rng-{self.rank}-{step}.pt")
        for old in sorted(path.glob(f"rng-{self.rank}-*.pt"), key=lambda f: int(f.stem.rsplit("-", 1)[1]))[:-3]:
            old.unlink(missing_ok=True)             # the checkpoints keep two: three states cover them
        self.barrier()                              # every rank's state is down before the checkpoint

    def load_rng(self, path: Path, step: int) -> None:
        file = path / f"rng-{self.rank}-{step}.pt"
        if file.exists():
            state = torch.load(file, weights_only=False)
            if state["step"] == step:
                torch.set_rng_state(state["torch"])
                if state["cuda"] is not None and self.device.startswith("cuda"):
                    torch.cuda.set_rng_state(state["cuda"])

    def close(self) -> None:
        if self.dist.is_initialized():
            self.dist.destroy_process_group()


def transformer_blocks(model) -> list[torch.nn.Module]:
    """The model's repeated blocks (transformers' `_no_split_modules` classes), outermost first."""
    names = set(getattr(model, "_no_split_modules", None) or ())
    blocks, inside = [], set()
    for _, module in model.named_modules():
        if type(module).__name__ in names and id(module) not in inside:
            blocks.append(module)
            inside.update(id(m) for m in module.modules())
    return blocks


class FSDP(DDP):
    """One rank of a torchrun job whose model is sharded with FSDP2 (see the module docstring)."""
    shards_model = True
    lockstep_eval = True

    def loss_fn(self, model):
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import fully_shard
        from cotdistill.students.logits import resolve
        from cotdistill.errors import RunError
        resolve(model)                              # the logits route, decided before sharding
        blocks = transformer_blocks(model)
        if not blocks:
            raise RunError(f"train.distributed=fsdp: {type(model).__name__} names no transformer block "
                           f"class (_no_split_modules) to shard by; use train.distributed=ddp")
        mesh = init_device_mesh(self.device.split(":")[0], (self.world,))
        for block in blocks:
            fully_shard(block, mesh=mesh)
        # the root: the loss module, so the embeddings, final norm and (tied) head are gathered for
        # the whole of loss_parts, which calls the base model and the head separately
        self.root = fully_shard(_Loss(model), mesh=mesh)
        return self.root

    def no_sync(self, fn, last: bool):
        @contextlib.contextmanager
        def accumulate():
            fn.set_requires_gradient_sync(last)    # reduce-scatter once per step, on the last micro-batch
            try:
                yield
            finally:
                fn.set_requires_gradient_sync(True)
        return accumulate()

    def _options(self, **kw):
        from torch.distributed.checkpoint.state_dict import StateDictOptions
        return StateDictOptions(full_state_dict=True, **kw)

    def full_state(self, model, opt) -> tuple[dict | None, dict | None]:
        from torch.distributed.checkpoint.state_dict import get_model_state_dict, get_optimizer_state_dict
        options = self._options(cpu_offload=True)   # gathered block by block to rank 0's memory
        model_state = get_model_state_dict(model, options=options)
        opt_state = get_optimizer_state_dict(model, opt, options=options)
        return (model_state, opt_state) if self.is_main else (None, None)

    def load_state(self, model, opt, model_state: dict, opt_state: dict) -> None:
        from torch.distributed.checkpoint.state_dict import set_model_state_dict, set_optimizer_state_dict
        set_model_state_dict(model, model_state, options=self._options())          # each rank keeps its shard
        set_optimizer_state_dict(model, opt, opt_state, options=self._options())

    @contextlib.contextmanager
    def evaluating(self):
        self.root.unshard()
        try:
            yield
        finally:
            self.root.reshard()

    def plain_model(self, model, rebuild: Callable):
        from torch.distributed.checkpoint.state_dict import get_model_state_dict
        state = get_model_state_dict(model, options=self._options(cpu_offload=True))
        if not self.is_main:
            return None
        plain = rebuild()
        plain.load_state_dict(state)
        return plain.to(self.device)


def die_with_parent(sig: int = signal.SIGKILL) -> None:
    """Linux: get `sig` when the parent process dies, so no rank or launcher outlives its worker."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(sig))     # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


PEER_LOSS = ("Connection closed by peer", "Connection reset by peer", "Broken pipe", "NCCL communicator was aborted")


def is_peer_loss(e: BaseException) -> bool:
    """Did this exception come from a collective whose peer process died?"""
    dist_error = getattr(torch.distributed, "DistNetworkError", ())
    return isinstance(e, dist_error) or any(text in str(e) for text in PEER_LOSS)


# --- the launcher -------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun_command(n: int, config_path: Path, out: Path, events: Path,
                     checkpoint_every: int | None = None) -> list[str]:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--node-rank", "0",
           "--nproc-per-node", str(n), "--master-addr", "127.0.0.1", "--master-port", str(free_port()),
           "--max-restarts", "0", "-m", "cotdistill.run", str(config_path), str(out), str(events)]
    return cmd + ([str(checkpoint_every)] if checkpoint_every is not None else [])


def stop(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """End the launcher and its ranks (their own process group): SIGTERM, then SIGKILL."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def launch(cfg, out: Path, *, callback: Callable[[dict], None] | None = None, env: dict | None = None,
           checkpoint_every: int | None = None, poll: Callable[[], None] | None = None,
           interval: float = 0.2) -> dict:
    """Run `cfg` on cfg.train.devices processes and return rank 0's summary. `callback` gets rank 0's
    events in order; `poll()` is called between reads (it may raise to stop the run: the launcher and
    its ranks are ended, the checkpoint stays). Raises RunError with a rank's own message if one
    failed, RanksLost if one was killed."""
    import yaml
    from cotdistill.errors import RunError
    out = Path(out)
    folder = out / "dist"
    folder.mkdir(parents=True, exist_ok=True)
    for old in [*folder.glob("error-*.txt"), *folder.glob("peer-*.txt"), *folder.glob("rank*.pid"),
                folder / EVENTS]:
        old.unlink(missing_ok=True)
    import uuid
    token = uuid.uuid4().hex
    owner = folder / OWNER                      # this launch owns the folder from now on (see the top)
    owner.with_suffix(".tmp").write_text(token, encoding="utf-8")
    os.replace(owner.with_suffix(".tmp"), owner)
    config_path = folder / "config.yaml"
    config_path.write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False), encoding="utf-8")
    events = folder / EVENTS
    events.touch()
    log = open(folder / "torchrun.log", "ab")
    package_root = str(Path(__file__).resolve().parents[1])       # the ranks import this very package
    path = os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p)
    proc = subprocess.Popen(torchrun_command(cfg.train.devices, config_path, out, events, checkpoint_every),
                            env={**os.environ, "PYTHONPATH": path, **(env or {}), OWNER_ENV: token}, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True, preexec_fn=die_with_parent)
    summary = None
    try:
        with open(events, encoding="utf-8") as stream:
            partial = ""
            while True:
                done = proc.poll() is not None
                *lines, partial = (partial + stream.read()).split("\n")   # keep a half-written line
                for line in filter(None, lines):
                    event = json.loads(line)
                    if event.get("phase") == "done":
                        summary = event["summary"]
                    if callback is not None:
                        callback(event)
                if done:
                    break
                if poll is not None:
                    poll()
                time.sleep(interval)
    except BaseException:
        stop(proc)
        raise
    finally:
        log.close()
    errors = sorted(folder.glob("error-*.txt"))
    try:
        owner_fence(folder, token)(out)
    except Superseded as e:
        raise Superseded(f"the {cfg.train.devices}-process run stopped: {e}") from None
    if summary is not None and (proc.returncode == 0 or not errors):
        return summary       # rank 0 finished and recorded everything: an exit code from the teardown
                             # after that (a rank lost while the group closes) must not send a finished
                             # run round again
    if errors:
        raise RunError(errors[0].read_text(encoding="utf-8"))
    tail = (folder / "torchrun.log").read_text(errors="replace")[-1500:]
    if len(list(folder.glob("rank*.pid"))) < cfg.train.devices:   # a rank never reached its code
        raise RunError(f"the {cfg.train.devices}-process run did not start (exit code "
                       f"{proc.returncode}); torchrun's log ({folder / 'torchrun.log'}) ends:\n{tail}")
    raise RanksLost(f"a rank of the {cfg.train.devices}-process run died without an error of its "
                    f"own (exit code {proc.returncode}); torchrun's log ends:\n{tail}")
