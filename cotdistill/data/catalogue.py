"""The catalogue of rationale sets: the one registry the CLI, the app and teacher jobs share.

    for entry in catalogue(): print(entry.name, entry.path, entry.splits)
    entry = register_folder("~/elsewhere/cqa-llama")     # an existing set folder, anywhere
    remember(folder)                                     # the same, for a folder already verified

A set is in the catalogue when its folder lies directly under sets_root()
($COTDISTILL_HOME/rationale_sets, where `cotdistill data import` and the browser import write), or
when it was registered: `cotdistill data register FOLDER`, or the worker registering a set a
teacher job wrote under its artifacts folder. Registered folders are listed in
sets_root()/CATALOGUE_FILE. `cotdistill datasets` prints the catalogue; the worker's database
mirrors it (worker.rationale_sets.sync, run whenever the app lists sets), so the Datasets, Launch
and Key tokens screens show the same sets as the CLI.

Listing reads each set's provenance.json and first record only; registering verifies the whole
set (its content hash) first.
"""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cotdistill.data.rationale_set import EXAMPLES_FILE, PROVENANCE_FILE, read_set, sets_root
from cotdistill.errors import DataError

CATALOGUE_FILE = "catalogue.json"


@dataclass
class SetEntry:
    """One set of the catalogue, from its provenance (or why it cannot be read)."""

    name: str
    path: str
    kind: str | None = None
    splits: dict[str, int] = field(default_factory=dict)
    with_rationale: dict[str, int] = field(default_factory=dict)
    teacher_accuracy: float | None = None
    source: str | None = None
    content_hash: str | None = None
    registered: bool = False          # listed in CATALOGUE_FILE (not found under sets_root())
    error: str | None = None


def catalogue() -> list[SetEntry]:
    """Every set under sets_root() (by name), then every registered folder that still exists (in
    order; a folder deleted since is left out, and pruned at the next registration)."""
    root = sets_root()
    found = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")
                   and (p / PROVENANCE_FILE).is_file()) if root.is_dir() else []
    entries = [_entry(p, registered=False) for p in found]
    seen = {p.resolve() for p in found}
    for folder in _registered():
        if Path(folder).is_dir() and Path(folder).resolve() not in seen:
            seen.add(Path(folder).resolve())
            entries.append(_entry(Path(folder), registered=True))
    return entries


def register_folder(path: str | Path) -> SetEntry:
    """Add an existing set folder to the catalogue after verifying it (DataError if it is not a
    set, or was edited since written); a folder already in it is found, not added twice."""
    folder, _, _ = read_set(Path(path).expanduser())
    remember(folder)
    return _entry(folder.resolve(), registered=not _under_root(folder))


def remember(folder: str | Path) -> None:
    """List a verified set folder in the catalogue (nothing to do under sets_root())."""
    folder = Path(folder).expanduser().resolve()
    if _under_root(folder):
        return
    root = sets_root()
    root.mkdir(parents=True, exist_ok=True)
    with (root / f".{CATALOGUE_FILE}.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)           # one writer at a time: the CLI and workers
        folders = [f for f in _registered() if Path(f).is_dir()]   # deleted folders pruned
        if str(folder) in folders:
            return
        tmp = root / f".{CATALOGUE_FILE}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps({"folders": folders + [str(folder)]}, indent=1) + "\n",
                       encoding="utf-8")
        os.replace(tmp, root / CATALOGUE_FILE)


def _under_root(folder: Path) -> bool:
    return folder.resolve().parent == sets_root().resolve()


def _registered() -> list[str]:
    path = sets_root() / CATALOGUE_FILE
    if not path.is_file():
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise DataError(f"the catalogue of rationale sets is not readable JSON ({e}); fix or "
                        f"delete it and register the folders again", file=str(path)) from None
    folders = data.get("folders") if isinstance(data, dict) else None
    if not isinstance(folders, list) or not all(isinstance(f, str) for f in folders):
        raise DataError("expected {\"folders\": [paths]}", file=str(path))
    return folders


def _entry(folder: Path, *, registered: bool) -> SetEntry:
    entry = SetEntry(folder.name, str(folder), registered=registered)
    try:
        p = json.loads((folder / PROVENANCE_FILE).read_text(encoding="utf-8"))
        with (folder / EXAMPLES_FILE).open(encoding="utf-8") as f:
            first: dict[str, Any] = json.loads(f.readline() or "{}")
    except (OSError, ValueError) as e:
        entry.error = f"cannot read the set: {e}"
        return entry
    if not isinstance(p, dict):
        entry.error = f"{PROVENANCE_FILE} is not a JSON object"
        return entry
    entry.name = str(p.get("name") or folder.name)
    entry.kind = first.get("kind")
    entry.splits = dict(p.get("splits") or {})
    entry.with_rationale = dict(p.get("splits_with_rationale") or {})
    entry.teacher_accuracy = p.get("teacher_accuracy")
    entry.source = p.get("source")
    entry.content_hash = p.get("content_hash")
    return entry
