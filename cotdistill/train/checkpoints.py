"""Verified checkpoints: each one a folder with a manifest of its files' sizes and hashes.

    save(root, 120, {"model": ..., "step": 120, ...})      # root/checkpoint-120/{state.pt, manifest.json}
    found = latest(root, report=print)                      # newest good one; corrupt ones moved aside
    state = load(found)

A checkpoint is written file by file, each fsynced, and its `manifest.json` (every file's size and
sha256) last, atomically (tmp, fsync, rename, fsync the folder): a checkpoint without a valid manifest
is incomplete by definition. Saving keeps the newest KEEP good checkpoints; older ones are deleted only
after the new one's manifest is on disk, so there is always a good one to fall back to. A save that
fails (a full disk) removes what it wrote of the new checkpoint and raises the error as it came.

On resume `latest` checks the newest checkpoint's sizes and hashes; a corrupt or incomplete one is
renamed to `checkpoint-<step>.corrupt-<n>` (kept for inspection, never loaded again) and the next older
one is tried, down to none (a fresh start). Each of these is reported as one sentence naming the file,
through `report(event)`, the run's callback (cotdistill.run passes it on to the CLI and the worker).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from cotdistill.errors import CorruptCheckpoint
from cotdistill.files import fsync_dir

STATE = "state.pt"
MANIFEST = "manifest.json"
KEEP = 2
LEGACY = "checkpoint.pt"        # the single-file layout before manifests: never loaded, moved aside
_NAME = re.compile(r"^checkpoint-(\d+)$")


@dataclass(frozen=True)
class Checkpoint:
    path: Path              # the checkpoint's folder
    step: int


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _write_synced(path: Path, write: Callable) -> None:
    with open(path, "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())


def candidates(root: Path) -> list[Checkpoint]:
    """Every `checkpoint-<step>` folder under `root`, newest first (good or not: nothing is read)."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = [Checkpoint(p, int(m.group(1))) for p in root.iterdir() if p.is_dir() and (m := _NAME.match(p.name))]
    return sorted(found, key=lambda c: c.step, reverse=True)


def save(root: Path, step: int, state: dict) -> Checkpoint:
    """Write `state` as checkpoint `step` under `root` (its parent must exist), then prune to KEEP."""
    root = Path(root)
    root.mkdir(exist_ok=True)
    folder = root / f"checkpoint-{step}"
    if folder.exists():                            # an incomplete one left by a crash at this very step
        shutil.rmtree(folder)
    folder.mkdir()
    try:
        _write_synced(folder / STATE, lambda f: torch.save(state, f))
        manifest = {"step": step, "files": {STATE: {"size": (folder / STATE).stat().st_size,
                                                    "sha256": sha256(folder / STATE)}}}
        tmp = folder / (MANIFEST + ".tmp")
        _write_synced(tmp, lambda f: f.write(json.dumps(manifest, indent=1).encode()))
        os.replace(tmp, folder / MANIFEST)
        fsync_dir(folder)
        fsync_dir(root)
    except BaseException:
        # A failed write (a full disk) leaves no half checkpoint for a resume to trip over; the older
        # good ones are untouched (pruning comes only after a success).
        shutil.rmtree(folder, ignore_errors=True)
        raise
    prune(root)
    return Checkpoint(folder, step)


def prune(root: Path, keep: int = KEEP) -> None:
    """Delete checkpoints older than the newest `keep` that have a manifest (hashes are not read)."""
    good = [c for c in candidates(root) if (c.path / MANIFEST).is_file()]
    if len(good) < keep:
        return
    oldest_kept = good[keep - 1].step
    for c in candidates(root):
        if c.step < oldest_kept:
            shutil.rmtree(c.path, ignore_errors=True)


def verify(checkpoint: Checkpoint) -> None:
    """Raise CorruptCheckpoint unless every file of the manifest is there with its size and sha256."""
    manifest_path = checkpoint.path / MANIFEST
    if not manifest_path.is_file():
        raise CorruptCheckpoint(f"{manifest_path} is missing (the checkpoint was never completed)")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        files = {name: (int(meta["size"]), str(meta["sha256"])) for name, meta in manifest["files"].items()}
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise CorruptCheckpoint(f"{manifest_path} is not a valid manifest ({type(e).__name__}: {e})") from None
    if STATE not in files:
        raise CorruptCheckpoint(f"{manifest_path} does not list {STATE}")
    for name, (size, digest) in files.items():
        path = checkpoint.path / name
        if not path.is_file():
            raise CorruptCheckpoint(f"{path} is missing")
        if (actual := path.stat().st_size) != size:
            raise CorruptCheckpoint(f"{path} has {actual} bytes, its manifest says {size}")
        if sha256(path) != digest:
            raise CorruptCheckpoint(f"{path} does not match its manifest's sha256")


def _free_name(path: Path) -> Path:
    n = 1
    while (target := path.with_name(f"{path.name}.corrupt-{n}")).exists():
        n += 1
    return target


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8").strip() if path.is_file() else ""


def move_aside(checkpoint: Checkpoint) -> Path:
    """Rename a bad checkpoint to `checkpoint-<step>.corrupt-<n>` (first free n) and return the new path."""
    target = _free_name(checkpoint.path)
    os.replace(checkpoint.path, target)
    return target


def latest(root: Path, report: Callable[[dict], None] | None = None) -> Checkpoint | None:
    """The newest checkpoint under `root` that verifies; every newer bad one is moved aside and reported
    as {"phase": "checkpoint", "kind": "corrupt", "path", "moved_to", "resume_step", "message"}."""
    bad: list[tuple[Checkpoint, str, Path]] = []
    legacy = Path(root) / LEGACY
    if legacy.is_file():                          # one file, no manifest: incomplete by definition
        step = int(s) if (s := _read(Path(root) / "step")).isdigit() else 0
        aside = _free_name(legacy)
        os.replace(legacy, aside)
        bad.append((Checkpoint(legacy, step), f"{legacy} has no manifest (an older cotdistill wrote it)", aside))
    found = None
    for c in candidates(root):
        try:
            verify(c)
        except CorruptCheckpoint as e:
            bad.append((c, str(e), move_aside(c)))
            continue
        found = c
        break
    then = (f"resuming from the previous good checkpoint, step {found.step} ({found.path})" if found
            else "no good checkpoint is left, so training starts from scratch")
    for c, why, aside in bad:
        if report is not None:
            report({"phase": "checkpoint", "kind": "corrupt", "path": str(c.path), "moved_to": str(aside),
                    "resume_step": found.step if found else 0,
                    "message": f"checkpoint at step {c.step} is corrupt or incomplete: {why}; moved it aside "
                               f"to {aside}; {then}"})
    return found


def kept(root: Path) -> str:
    """What a failed write leaves to resume from, as the end of its sentence: the step of the newest
    checkpoint under `root` with a manifest (hashes are not read)."""
    step = next((c.step for c in candidates(root) if (c.path / MANIFEST).is_file()), 0)
    return (f"the last good checkpoint (step {step}) is intact" if step
            else "no checkpoint was written yet, so a retry starts from step 0")


def load(checkpoint: Checkpoint) -> dict:
    """The state dict of a verified checkpoint."""
    return torch.load(checkpoint.path / STATE, map_location="cpu", weights_only=False)
