"""Content fingerprints for the config hash: what a run reads, not only where it reads it from.

    identity(cfg, "cpu")       # what besides the settings decides a result: RunConfig.identity and .hash
    data_hash(cfg.data)        # dataset / rationale set files' content, or a synthetic task's parameters
    scores_hash(path)          # a key-token scores file's content
    resolve_precision("auto", "cuda")   # -> "bf16"

File digests are cached in $COTDISTILL_HOME/digests.json by (resolved path, size, mtime), so hashing a
large release again costs a stat per file. Files that do not exist hash as "missing": the run itself
then fails with the loader's message, and the hash changes once the file appears.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any, Iterable

_CACHE_FILE = "digests.json"


def _cache_path() -> Path:
    from cotdistill.paths import home
    return home() / _CACHE_FILE


def _read_cache() -> dict[str, Any]:
    try:
        cache = json.loads(_cache_path().read_text(encoding="utf-8"))
        return cache if isinstance(cache, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_cache(cache: dict[str, Any]) -> None:
    path = _cache_path()
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(cache), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:                    # a read-only state folder only costs speed
        pass


def file_digests(paths: Iterable[Path]) -> list[tuple[str, str]]:
    """(path, sha256 of the content or 'missing') per file, in the given order, through the cache."""
    cache, changed, out = _read_cache(), False, []
    for path in paths:
        path = Path(path).expanduser()
        try:
            st = path.stat()
        except OSError:
            out.append((str(path), "missing"))
            continue
        key = str(path.resolve())
        stamp = [st.st_size, st.st_mtime_ns]
        entry = cache.get(key)
        if not (isinstance(entry, dict) and entry.get("stamp") == stamp):
            h = hashlib.sha256()
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
            entry, changed = {"stamp": stamp, "sha256": h.hexdigest()}, True
            cache[key] = entry
        out.append((str(path), entry["sha256"]))
    if changed:
        _write_cache(cache)
    return out


def _folder_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))


def data_files(name: str, options: dict) -> list[Path]:
    """The files the loader of dataset `name` reads with `options` (none for synthetic or hub data)."""
    from cotdistill import data
    if "/" in name or name not in data.DATASETS:
        return []
    spec = data.DATASETS[name]
    if spec.folder is not None:
        folder = data.data_dir() / spec.folder
        return _folder_files(folder) if folder.is_dir() else [folder]
    if name == "file":
        paths = [options.get("path")] + list((options.get("paths") or {}).values())
        return [Path(str(p)) for p in paths if p]
    if name == "rationale-set" and options.get("path"):
        from cotdistill.data.rationale_set import resolve
        from cotdistill.errors import DataError
        try:
            return _folder_files(resolve(options["path"]))
        except DataError:
            return [Path(str(options["path"]))]
    return []


def data_hash(data_cfg) -> str:
    """sha256 (16 hex) of a DataConfig's source: the name, the loader options (a synthetic task's
    parameters) and the content of every file the loader reads. A hub dataset hashes its id and
    options only (its content is not read before the run)."""
    files = data_files(data_cfg.name, dict(data_cfg.options or {}))
    digests = [digest for _, digest in file_digests(files)]
    # Relative names, so the same release under another data folder hashes the same.
    names = [p.name for p in files]
    payload = {"name": data_cfg.name, "options": data_cfg.options, "files": list(zip(names, digests))}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def scores_hash(path: str | None) -> str | None:
    """sha256 (16 hex) of a key-token scores file, None when there is none."""
    if not path:
        return None
    return file_digests([Path(path)])[0][1][:16]


def default_device() -> str:
    """The device a run uses when none is given: cuda if available, else cpu. Asks torch when it is
    already loaded (a run, a worker); elsewhere (the app's process plans and submits matrices and
    must not load torch) it looks for an NVIDIA device node that CUDA_VISIBLE_DEVICES does not hide."""
    if "torch" in sys.modules:
        return "cuda" if sys.modules["torch"].cuda.is_available() else "cpu"
    hidden = os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1")
    return "cuda" if not hidden and any(Path("/dev").glob("nvidia[0-9]*")) else "cpu"


def resolve_precision(precision: str, device: str) -> str:
    """The precision actually used: auto -> bf16 on CUDA, fp32 elsewhere (as training does)."""
    if precision != "auto":
        return precision
    return "bf16" if str(device).startswith("cuda") else "fp32"


def identity(cfg, device: str | None = None) -> dict:
    """What besides the settings decides a result: the results version, the data and scores
    files' content, the device kind and precision actually used (device None: this machine's
    default, cuda if available). RunConfig.identity(device) calls this."""
    from cotdistill import RESULTS_VERSION
    kind = (device or default_device()).split(":")[0]
    return {"results_version": RESULTS_VERSION, "data_hash": data_hash(cfg.data),
            "scores_hash": scores_hash(cfg.perturbation.scores_file), "device": kind,
            "precision": resolve_precision(cfg.train.precision, kind)}
