"""Before launch: memory per cell, whether it fits a GPU, and the matrix's GPU-hours.

    estimate_matrix("configs/matrix-cqa.yaml", gpu_gib=80)              # tokens/s measured in the DB
    estimate_matrix(matrix_dict, gpu_gib=24, tokens_per_s=15_000)       # or given

The arithmetic is cotdistill.estimate's (formulas in its docstring); here cells are expanded,
shapes read once per student, and the tokens/s figure found: the one given, else the median of the
`tokens_per_s` of the latest succeeded runs of the same student on the same kind of device, else none
(GPU-hours then unknown). Memory is planned for `device` (default cuda: precision auto is bf16 there).
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

MEASURED_RUNS = 20
"""How many of a student's latest succeeded runs the measured tokens/s is the median of."""


def _same_student(a: dict, b: dict) -> bool:
    """Same model for speed: the name, and for the built-in tiny student its size too."""
    return a.get("name") == b.get("name") and (a.get("name") != "tiny" or a.get("size") == b.get("size"))


def measured_tokens_per_s(student: dict, device: str = "cuda") -> dict | None:
    """{"tokens_per_s", "runs", "source"} from the database's succeeded runs of `student` (a config's
    student section) on `device`'s kind, or None (no such run, or no database here: a dry run never
    creates one)."""
    from sqlalchemy import select

    from worker.api.core import session
    from worker.db import require_database
    from worker.models import Run
    kind = device.split(":")[0]
    try:
        require_database()
        with session() as s:
            rows = s.execute(select(Run.config, Run.summary).where(Run.status == "succeeded")
                             .order_by(Run.finished_at.desc())).all()
    except Exception:                          # no database, or one that cannot be read: nothing measured
        return None
    rates = [r.summary["tokens_per_s"] for r in rows
             if _same_student((r.config or {}).get("student") or {}, student) and r.summary
             and str(r.summary.get("device", "")).split(":")[0] == kind
             and (r.summary.get("tokens_per_s") or 0) > 0][:MEASURED_RUNS]
    if not rates:
        return None
    return {"tokens_per_s": float(statistics.median(rates)), "runs": len(rates),
            "source": f"measured: median of {len(rates)} succeeded {kind} run(s) of {student['name']}"}


def shapes_of(students: list[dict]) -> list[dict]:
    """The ModelShape (as a dict) of each student section, or {"error": why} (reads model configs:
    loads torch and transformers, so the app asks a worker: model_shapes)."""
    from cotdistill.config import StudentConfig, from_dict
    from cotdistill.estimate import model_shape
    from cotdistill.errors import StudentError
    out = []
    for student in students:
        try:
            out.append(model_shape(from_dict(StudentConfig, student, "student.")).as_dict())
        except StudentError as e:
            out.append({"error": str(e)})
    return out


def model_shapes(students: list[dict], *, timeout: float = 60) -> list[dict]:
    """shapes_of, computed by a worker on the `cpu` queue; TimeoutError when none answers."""
    from worker.api.core import ask_cpu_worker
    return ask_cpu_worker("cotdistill.model_shapes", [students], timeout=timeout, what="memory estimate")


def estimate_matrix(matrix: str | Path | dict, *, gpu_gib: float = 80.0, tokens_per_s: float | None = None,
                    device: str = "cuda", worker_timeout: float | None = None) -> dict:
    """Per cell: factors, student, parameters, trainable, memory (bytes by part), total_gib, fits,
    tokens, gpu_hours (None without a tokens/s figure) and the figure's source; plus totals. A student
    whose config cannot be read gets `error` instead of numbers. The students' shapes are read in this
    process (the CLI), or by a worker when `worker_timeout` is given (the app, which loads no model
    library; TimeoutError when none answers). Raises ConfigError for a bad matrix."""
    from cotdistill.estimate import GIB, ModelShape, estimate_cell, gpu_hours
    from worker.experiments import expand, load_matrix, matrix_of
    m = matrix_of(matrix) if isinstance(matrix, dict) else load_matrix(matrix)
    expanded = expand(m)
    students = {json.dumps(cfg.to_dict()["student"], sort_keys=True): cfg.to_dict()["student"] for _, cfg in expanded}
    found = shapes_of(list(students.values())) if worker_timeout is None else \
        model_shapes(list(students.values()), timeout=worker_timeout)
    shapes = {key: shape.get("error") or ModelShape(**shape) for key, shape in zip(students, found)}
    rates, cells = {}, []
    for factors, cfg in expanded:
        key = json.dumps(cfg.to_dict()["student"], sort_keys=True)
        cell = {"factors": factors, "student": cfg.student.name, "lora": cfg.student.lora is not None}
        if isinstance(shapes[key], str):
            cells.append({**cell, "error": shapes[key], "fits": None, "gpu_hours": None})
            continue
        est = estimate_cell(cfg, shapes[key], device=device, gpu_gib=gpu_gib)
        if tokens_per_s is not None:
            rate = {"tokens_per_s": float(tokens_per_s), "source": "given"}
        else:
            if key not in rates:
                rates[key] = measured_tokens_per_s(cfg.to_dict()["student"], device)
            rate = rates[key]
        hours = gpu_hours([est["tokens"]], rate["tokens_per_s"]) if rate else None
        cells.append({**cell, **est, "total_gib": est["memory"]["total_bytes"] / GIB, "gpu_hours": hours,
                      "tokens_per_s": rate["tokens_per_s"] if rate else None,
                      "tokens_per_s_source": rate["source"] if rate else None})
    known = [c["gpu_hours"] for c in cells if c["gpu_hours"] is not None]
    return {"name": m.name, "gpu_gib": gpu_gib, "device": device, "cells": cells,
            "fit": sum(c["fits"] is True for c in cells), "too_big": sum(c["fits"] is False for c in cells),
            "unknown": sum(c["fits"] is None for c in cells),
            "gpu_hours": sum(known) if known and len(known) == len(cells) else None,
            "gpu_hours_known_cells": len(known)}


# ------------------------------------------------------------------------------------------ calibrations

CALIBRATIONS = "calibrations"
"""Folder under $COTDISTILL_HOME of the calibrations this process has received, one JSON file each."""
RESEND_AFTER_S = 900.0
"""A calibration asked for and not answered within this long is asked for again."""
_ASKED: dict[tuple[str, str], tuple[str, float]] = {}
"""(home, settings key) → (the task id of the request, when it was sent): requests in flight from
this process (the home names the broker and result store they went through)."""


def settings_key(config: dict) -> str:
    """What a calibration of `config` is filed under here: its settings that cost time (the worker
    adds its device and threads: cotdistill.throughput.calibration_key)."""
    from cotdistill.throughput import calibration_key
    return calibration_key(config, "worker", 0)


def _calibration_file(key: str) -> Path:
    from cotdistill.paths import home
    return home() / CALIBRATIONS / f"{key}.json"


def cached_calibration(config: dict) -> dict | None:
    """The calibration of `config`'s settings this process has, or None."""
    path = _calibration_file(settings_key(config))
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    from cotdistill.throughput import CALIBRATION_VERSION
    return found if found.get("version") == CALIBRATION_VERSION else None


def store_calibration(config: dict, found: dict) -> None:
    """File a calibration of `config`'s settings (written whole or not at all)."""
    import os
    path = _calibration_file(settings_key(config))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(found), encoding="utf-8")
    os.replace(tmp, path)


def calibrations(configs: list[dict], *, ask: bool = True) -> tuple[dict[str, dict], list[str]]:
    """({settings key: calibration} of the configs whose calibration is here, [settings keys being
    measured]). With `ask`, each missing one is asked of a worker on the `cpu` queue (once; again after
    RESEND_AFTER_S), and an answer that has come in since is filed. Never waits for a worker."""
    import time
    found, measuring = {}, []
    for config in configs:
        key = settings_key(config)
        if key in found or key in measuring:
            continue
        cached = cached_calibration(config)
        if cached is None and ask:
            cached = _collect(config, key)
        if cached is not None:
            found[key] = cached
            continue
        if not ask:
            continue
        sent = _ASKED.get(_asked(key))
        if sent is None or time.monotonic() - sent[1] > RESEND_AFTER_S:
            try:
                sent = _ASKED[_asked(key)] = (_send_calibration(config), time.monotonic())
            except Exception:                    # no broker here: nothing to measure with
                continue
        if sent[0]:                              # "": it failed lately (the run will say why)
            measuring.append(key)
    return found, measuring


def _asked(key: str) -> tuple[str, str]:
    from cotdistill.paths import home
    return str(home()), key


def _send_calibration(config: dict) -> str:
    from worker.celery_app import CPU_QUEUE, get_app
    from worker.guard import check_config_paths
    check_config_paths(config)
    return get_app().send_task("cotdistill.calibrate", args=[config], queue=CPU_QUEUE).id


def _collect(config: dict, key: str) -> dict | None:
    """The answer to this process's request for `key`, filed, if it has come; a failed request is
    forgotten (asked again later)."""
    sent = _ASKED.get(_asked(key))
    if sent is None or not sent[0]:
        return None
    from worker.celery_app import get_app
    result = get_app().AsyncResult(sent[0])
    try:
        if not result.ready():
            return None
        found = result.get(timeout=1, propagate=False)
        result.forget()
    except Exception:                            # the result store cannot be read now: ask later
        return None
    if not isinstance(found, dict) or "step_s" not in found:   # it failed: not asked again for a while
        import time
        _ASKED[_asked(key)] = ("", time.monotonic())
        return None
    _ASKED.pop(_asked(key), None)
    store_calibration(config, found)
    return found


def calibrate_here(config: dict) -> dict:
    """cotdistill.throughput.calibrate of `config` in this process (a worker), with the CPU threads a
    training worker of this machine uses ($COTDISTILL_RUN_THREADS, set by `cotdistill up`), cached
    under $COTDISTILL_HOME by its full key (settings, device, threads)."""
    import os

    import torch

    from cotdistill.config import RunConfig, from_dict
    from cotdistill.throughput import calibrate, calibration_key
    from worker.guard import check_config_paths
    check_config_paths(config)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    threads = int(os.environ.get("COTDISTILL_RUN_THREADS") or 0) or torch.get_num_threads()
    path = _calibration_file("device-" + calibration_key(config, device, threads))
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
        store_calibration(config, found)
        return found
    except (OSError, ValueError):
        pass
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        found = calibrate(from_dict(RunConfig, config), device=device)
    finally:
        torch.set_num_threads(before)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(found), encoding="utf-8")
    store_calibration(config, found)
    return found
