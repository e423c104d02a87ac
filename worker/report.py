"""An experiment as a report a researcher can send to a co-author or paste into a paper.

    report = build("cqa-placements", reference="none/none")   # plain data: the numbers Compare shows
    write(report, Path("report-cqa"))                          # report.html, table.tex, table.md,
                                                               # results.csv, figures/*.svg
    data = zip_bytes(report)                                   # the same files in one zip (Compare's button)

The numbers come from the jobs API's own comparison functions (`compare`: accuracy per arm over its
seeds; `paired`: arm minus reference over seed pairs, item-cluster bootstrap with the fixed seed
`BOOTSTRAP_SEED` and sign-flip p), so a report shows exactly what the Compare page shows. The
family of arm-vs-reference comparisons is corrected by Holm's method (cotdistill/report.py). The
formatting is in cotdistill/report.py (tables, SVG) and worker/report_html.py (the HTML page).
"""

from __future__ import annotations

import io
import subprocess
import zipfile
from datetime import datetime, timezone
from pathlib import Path

from cotdistill import RESULTS_VERSION, __version__, report as fmt
from cotdistill.stats import MIN_SEEDS_TO_RESAMPLE
from worker.api import runs as api

N_BOOT = 10_000
BOOTSTRAP_SEED = 0            # the default seed of stats.seed_paired_diff, which api.paired uses
EXAMPLES_SHOWN = 5
FLAGS = (("collapsed", "collapse_reason", "not distinguishable from a constant answer"),
         ("below_baseline", "below_baseline_reason", "significantly below the majority baseline"),
         ("high_unparsed", "unparsed_reason", "mostly unparsed generations"))


class ReportError(ValueError):
    """The experiment cannot be reported as asked; the message says why."""


# ------------------------------------------------------------------------------------------ gathering

def build(experiment: str | int, *, reference: str | None = None, scoring: str | None = None,
          n_boot: int = N_BOOT, examples_shown: int = EXAMPLES_SHOWN) -> dict:
    """Everything a report shows, as plain data. `reference` is an arm label (`none/none`; default:
    that arm when the experiment has it, else the first arm); `scoring` a scoring mode every run
    computed (default: each run's own)."""
    from worker.db import database_url, masked
    info = _experiment_info(experiment)
    runs = api.list_runs(experiment=info["id"])
    done = [r for r in runs if r["status"] == "succeeded"]
    if not done:
        counts = ", ".join(f"{sum(r['status'] == s for r in runs)} {s}" for s in sorted({r["status"] for r in runs}))
        raise ReportError(f"experiment {info['name']!r} has no succeeded run yet ({counts or 'no runs'}): "
                          f"nothing to report")
    arms = api.compare([r["id"] for r in done], scoring=scoring)
    labels = list(dict.fromkeys(a["arm"] for a in arms))
    if reference is None:
        reference = "none/none" if "none/none" in labels else labels[0]
    elif reference not in labels:
        raise ReportError(f"--reference {reference!r} is not an arm of experiment {info['name']!r}; "
                          f"its arms are {', '.join(labels)}")
    flags = run_flags(done, scoring)
    rows, paired = _rows(arms, reference, flags, n_boot, scoring)
    data_reports, examples = _datasets(done)
    return {
        "experiment": info, "reference": reference, "scoring": scoring,
        "made_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "database": masked(database_url()),
        "versions": _versions(done),
        "method": method_text(n_boot),
        "rows": rows, "runs": [_run_line(r, flags) for r in runs],
        "flags": {str(k): v for k, v in flags.items()},
        "data_reports": data_reports,
        "curves": api.curves([r["id"] for r in done], "loss"),
        "arms": arms,
        "flips": [_flips(row, paired[i], examples, examples_shown) for i, row in enumerate(rows) if i in paired],
    }


def method_text(n_boot: int) -> str:
    return (f"Accuracy: mean over seeds with a 95% Student-t interval over the seeds' accuracies (none with "
            f"one seed). Difference to the reference arm: mean over seed pairs (runs paired by seed, on "
            f"the test items every pair evaluated), 95% percentile interval of a cluster bootstrap over "
            f"test items ({n_boot} resamples, bootstrap seed {BOOTSTRAP_SEED}; seeds also resampled "
            f"from {MIN_SEEDS_TO_RESAMPLE} seed pairs), p from the exact sign-flip test on the per-item "
            f"mean difference (McNemar's exact test with one seed pair). * marks p < {fmt.ALPHA} after "
            f"Holm's correction over all arm-vs-reference comparisons of the report.")


def _experiment_info(experiment: str | int) -> dict:
    from worker.api.core import session
    with session() as s:
        try:
            e = api._experiment(s, experiment)
        except api.NotFound as error:
            raise ReportError(str(error)) from None
        return {"id": e.id, "name": e.name, "factors": e.factors, "base": e.base,
                "created_at": e.created_at.isoformat() if e.created_at else None,
                "cells": len(e.cells or [])}


def run_flags(done: list[dict], scoring: str | None) -> dict[int, list[str]]:
    """Run id → why its accuracy says little (constant answer, below baseline, mostly unparsed),
    under `scoring`: a run's own flags for its own scoring, else checked on that mode's answers."""
    flags: dict[int, list[str]] = {}
    others = [r["id"] for r in done if scoring is not None and r["summary"].get("scoring") != scoring]
    found = {r["id"]: r["summary"] for r in done if r["id"] not in others}
    if others:
        found.update(api.mode_diagnostics(others, scoring))
    for run_id, summary in found.items():
        reasons = [f"{what}: {summary.get(why) or ''}".rstrip(": ") for flag, why, what in FLAGS if summary.get(flag)]
        if reasons:
            flags[run_id] = reasons
    return flags


def _rows(arms: list[dict], reference: str, flags: dict, n_boot: int, scoring: str | None
          ) -> tuple[list[dict], dict[int, dict]]:
    rows, paired = [], {}
    arms = sorted(arms, key=lambda a: a["arm"] != reference)      # the reference first; stable otherwise
    for arm in arms:
        ref = next((a for a in arms if a["arm"] == reference and (a["dataset"], a["student"]) ==
                    (arm["dataset"], arm["student"])), None)
        row = {"dataset": arm["dataset"], "student": arm["student"], "arm": arm["arm"], "arm_key": arm["arm_key"],
               "placement": arm["placement"], "perturbation": arm["perturbation"], "n_seeds": arm["n_seeds"],
               "seeds": arm["seeds"], "runs": arm["runs"], "accuracies": arm["accuracies"], "mean": arm["mean"],
               "low": arm["low"], "high": arm["high"], "reference": ref["arm"] if ref else None,
               "is_reference": ref is arm, "flagged_runs": [r for r in arm["runs"] if r in flags]}
        if ref is not None and ref is not arm:
            try:
                p = api.paired(arm["runs"], ref["runs"], n_boot=n_boot, scoring=scoring)
            except ValueError as e:
                row["comparison_error"] = str(e)
            else:
                paired[len(rows)] = p
                row.update(diff=p["diff"], diff_low=p["low"], diff_high=p["high"], p_value=p["p_value"],
                           n_items=p["n_items"], seed_pairs=len(p["pairs"]),
                           basis_warning=(p.get("basis") or {}).get("warning"))
        rows.append(row)
    compared = sorted(paired)
    for i, q in zip(compared, fmt.holm([rows[i]["p_value"] for i in compared])):
        rows[i]["p_holm"] = q
        rows[i]["significant"] = q < fmt.ALPHA
    return rows, paired


def _versions(done: list[dict]) -> dict:
    """The code and results versions, and per dataset the content hashes the runs recorded."""
    def distinct(key: str, dataset: str) -> list:
        return sorted({str(r["summary"].get(key)) for r in done if r["dataset"] == dataset
                       and r["summary"].get(key) is not None})
    datasets = sorted({r["dataset"] for r in done})
    return {"cotdistill": __version__, "code": _git_version(), "results_version": RESULTS_VERSION,
            "runs_results_versions": sorted({r["summary"].get("results_version") or 1 for r in done}),
            "datasets": {d: {k: distinct(k, d) for k in ("data_hash", "scores_hash", "precision", "device")}
                         for d in datasets},
            "config_hashes": sorted({r["config_hash"] for r in done})}


def _git_version() -> str:
    root = Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty", "--abbrev=12"], cwd=root,
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown (git not available)"
    return out.stdout.strip() if out.returncode == 0 else "unknown (not a git checkout)"


def _data_configs(done: list[dict]) -> dict[str, dict]:
    """Distinct data sections of the runs' configs, by a readable key."""
    import json
    from sqlalchemy import select
    from worker.api.core import session
    from worker.models import Run
    with session() as s:
        sections = s.scalars(select(Run.config).where(Run.id.in_([r["id"] for r in done])).order_by(Run.id)).all()
    configs: dict[str, dict] = {}
    for config in sections:
        data = config["data"]
        key = json.dumps({k: data.get(k) for k in ("name", "train_split", "test_split", "options")}, sort_keys=True)
        configs.setdefault(key, data)
    return configs


def _load_splits(data: dict) -> dict:
    from cotdistill import data as datasets
    from worker.guard import check_paths, dataset_paths
    check_paths(dataset_paths(data["name"], data.get("options")))
    return {split: datasets.load_examples(data["name"], split, **(data.get("options") or {}))
            for split in dict.fromkeys((data.get("train_split", "train"), data.get("test_split", "test")))}


def _datasets(done: list[dict]) -> tuple[list[dict], dict[str, dict]]:
    """Per dataset the runs trained on, the data report's warnings and answer-leak rates; and
    (dataset, example id) -> the test item (question, choices, gold, rationale), where loadable."""
    from cotdistill.data.report import data_report
    reports, examples = [], {}
    for data in _data_configs(done).values():
        entry = {"dataset": data["name"], "options": data.get("options") or {}}
        try:
            splits = _load_splits(data)
            found = data_report(splits, train_split=data.get("train_split", "train"))
        except Exception as e:                   # a report is still made; the reason is shown instead
            entry.update(error=f"{type(e).__name__}: {e}", warnings=[], leaks={})
        else:
            entry.update(warnings=found["warnings"],
                         leaks={split: s["leak"] for split, s in found["splits"].items()})
            for ex in splits[data.get("test_split", "test")]:
                examples[f"{data['name']}\x00{ex.id}"] = {"question": ex.question, "choices": list(ex.choices or []),
                                                         "label": ex.label, "rationale": ex.rationale}
        reports.append(entry)
    return reports, examples


def _flips(row: dict, paired: dict, examples: dict, shown: int) -> dict:
    """Items the arm fixes (right where the reference is wrong) or breaks on every seed pair."""
    n_pairs = len(paired["pairs"])
    fixed = [e for e in paired["examples"] if e["fixes"] == n_pairs]
    broken = [e for e in paired["examples"] if e["breaks"] == n_pairs]
    a_run, b_run = paired["pairs"][0]
    answers = {(p["run_id"], p["example_id"]): p for p in api.predictions([a_run, b_run])}
    config = api.run_detail(a_run)["config"]

    def detail(e: dict) -> dict:
        item = examples.get(f"{row['dataset']}\x00{e['example_id']}", {})
        a, b = answers.get((a_run, e["example_id"]), {}), answers.get((b_run, e["example_id"]), {})
        trained, how = fmt.rationale_as_trained(item.get("rationale"), e["example_id"], placement=config["placement"],
                                                perturbation=config["perturbation"], seed=config["seed"])
        return {"example_id": e["example_id"], **item, "as_trained": trained, "as_trained_how": how,
                "arm_answer": a.get("predicted"),
                "reference_answer": b.get("predicted"), "arm_generated": a.get("generated"),
                "reference_generated": b.get("generated")}
    return {"dataset": row["dataset"], "student": row["student"], "arm": row["arm"], "reference": row["reference"],
            "seed_pairs": n_pairs, "n_fixed": len(fixed), "n_broken": len(broken),
            "n_changed": len(paired["examples"]), "answers_of_seed": paired["seeds"][0],
            "fixed": [detail(e) for e in fixed[:shown]], "broken": [detail(e) for e in broken[:shown]]}


def _run_line(r: dict, flags: dict) -> dict:
    return {"id": r["id"], "arm": r["arm"], "dataset": r["dataset"], "student": r["student"], "seed": r["seed"],
            "status": r["status"], "accuracy": r["accuracy"], "config_hash": r["config_hash"],
            "flags": flags.get(r["id"], [])}


# ------------------------------------------------------------------------------------------ files

def files(report: dict) -> dict[str, bytes]:
    """Every file of the report by its relative path."""
    from worker.report_html import figures, html_page
    note = ("Holm-corrected over all arm-vs-reference comparisons; * : adjusted p < "
            f"{fmt.ALPHA}; reference arm {report['reference']}; bootstrap seed {BOOTSTRAP_SEED}")
    out = {"report.html": html_page(report).encode("utf-8"),
           "table.tex": fmt.latex_table(report["rows"], caption_note=note).encode("utf-8"),
           "table.md": (fmt.markdown_table(report["rows"]) + f"\n{note}.\n").encode("utf-8"),
           "results.csv": fmt.csv_text(report["rows"]).encode("utf-8")}
    for name, svg in figures(report).items():
        out[f"figures/{name}.svg"] = svg.encode("utf-8")
    return out


def write(report: dict, out: Path) -> list[Path]:
    """Write the report's files under `out` (created); returns their paths."""
    written = []
    for name, data in files(report).items():
        path = Path(out) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        written.append(path)
    return written


def zip_bytes(report: dict) -> bytes:
    """The report's files in one zip, under a folder named after the experiment."""
    buffer = io.BytesIO()
    folder = f"report-{report['experiment']['name']}"
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files(report).items():
            z.writestr(f"{folder}/{name}", data)
    return buffer.getvalue()
