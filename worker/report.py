"""An experiment as a report a researcher can send to a co-author or paste into a paper.

    report = build("cqa-placements", reference="none")   # plain data: the numbers Compare shows
    write(report, Path("report-cqa"))                     # report.html, table.tex, table.md, results.csv,
                                                          # figures/*.pdf and *.svg
    data = zip_bytes(report)                              # the same files in one zip (Compare's button)

The numbers come from the jobs API's own functions (`compare`: accuracy per arm over its seeds;
`verdicts.versus`: every arm against the reference arm, the procedure-level test with seeds as the unit
first, Holm-corrected over the comparisons printed, then the test-set statistics with the fixed
bootstrap seed `BOOTSTRAP_SEED`), so a report shows exactly what the Compare page shows. The
formatting is in cotdistill/report.py (tables, figures) and worker/report_html.py (the HTML page).
"""

from __future__ import annotations

import io
import subprocess
import zipfile
from datetime import datetime, timezone
from pathlib import Path

from cotdistill import RESULTS_VERSION, __version__, report as fmt
from cotdistill.stats.inference import MIN_SEEDS_TO_RESAMPLE
from worker.api import runs as api, verdicts

N_BOOT = verdicts.N_BOOT
BOOTSTRAP_SEED = 0            # the default seed of stats.seed_paired_diff, which api.paired uses
EXAMPLES_SHOWN = 5
ENVIRONMENT_KEYS = ("threads", "torch", "transformers", "python", "device")
"""What a run's summary["environment"] records (older runs: nothing)."""


class ReportError(ValueError):
    """The experiment cannot be reported as asked; the message says why."""


# ------------------------------------------------------------------------------------------ gathering

def build(experiment: str | int, *, reference: str | None = None, scoring: str | None = None,
          n_boot: int = N_BOOT, examples_shown: int = EXAMPLES_SHOWN) -> dict:
    """Everything a report shows, as plain data. `reference` is an arm's label (`none`) or arm key
    (default: the label-only arm when there is exactly one, else the first arm); `scoring` a scoring
    mode every run evaluated by scoring computed (default: each run's own; arms evaluated by
    generation keep their generated accuracy)."""
    from worker.db import database_url, masked
    info = _experiment_info(experiment)
    runs = api.list_runs(experiment=info["id"])
    done = [r for r in runs if r["status"] == "succeeded"]
    if not done:
        counts = ", ".join(f"{sum(r['status'] == s for r in runs)} {s}" for s in sorted({r["status"] for r in runs}))
        raise ReportError(f"experiment {info['name']!r} has no succeeded run yet ({counts or 'no runs'}): "
                          f"nothing to report")
    _check_scoring(done, scoring, info["name"])
    arms = api.compare([r["id"] for r in runs], scoring=scoring)
    try:
        key = verdicts.resolve_reference(arms, reference)
    except ValueError:
        raise ReportError(f"--reference {reference!r} is not an arm of experiment {info['name']!r}; its arms are "
                          f"{', '.join(verdicts.reference_choices(arms).values())} (a label or an arm key)") from None
    flags = verdicts.run_flags(done, scoring)
    rows, paired = verdicts.versus(arms, key, scoring=scoring, n_boot=n_boot)
    for row in rows:
        row["flagged_runs"] = [r for r in row["runs"] if r in flags]
        row["flags"] = fmt.flag_names([m for r in row["flagged_runs"] for m in flags[r]])
    data_reports, examples = _datasets(done)
    return {
        "experiment": info, "reference": verdicts.reference_choices(arms)[key], "reference_key": key,
        "scoring": scoring, "made_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "database": masked(database_url()),
        "versions": _versions(done),
        "method": method_text(n_boot, sum(r.get("p_value") is not None for r in rows),
                              sum(r.get("test_p") is not None for r in rows)),
        "rows": rows, "runs": [_run_line(r, flags) for r in runs],
        "flags": {str(k): v for k, v in flags.items()},
        "data_reports": data_reports,
        "curves": api.curves([r["id"] for r in done], "label_loss"),
        "arms": arms,
        "flips": [_flips(row, paired[i], examples, examples_shown, scoring) for i, row in enumerate(rows)
                  if i in paired],
    }


def _check_scoring(done: list[dict], scoring: str | None, name: str) -> None:
    """Every run evaluated by scoring computed `scoring` (generated answers have no scoring modes)."""
    if scoring is None:
        return
    missing = [r["id"] for r in done if r["eval_mode"] != "generate" and api.run_accuracy(r, scoring) is None]
    if missing:
        raise ReportError(f"--scoring {scoring!r}: run(s) {', '.join(map(str, missing))} of experiment {name!r} "
                          f"did not compute that scoring mode; leave --scoring out to use each run's own")


def method_text(n_boot: int, family: int = 0, test_family: int = 0) -> str:
    return (f"Accuracy: mean over seeds with a 95% Student-t interval over the seeds' accuracies (none with "
            f"one seed); each arm evaluated as its column 'evaluated' says (`before` by generation, the label "
            f"right after the prompt by scoring). Against the reference arm, first the training procedure, "
            f"seeds as the unit: the mean over seed pairs (runs paired by seed, on the test items every pair "
            f"evaluated) of the accuracy difference, a 95% Student-t interval and the paired t-test over the "
            f"per-pair differences ('{fmt.NEEDS_SEEDS}' with one seed pair); * marks p < {fmt.ALPHA} after "
            f"Holm's correction over the {family} comparison(s) printed with a p-value. Second, the test set "
            f"(these trained models, on these items, which says nothing about new seeds): 95% percentile "
            f"interval of a cluster bootstrap over test items ({n_boot} resamples, bootstrap seed "
            f"{BOOTSTRAP_SEED}; seeds also resampled from {MIN_SEEDS_TO_RESAMPLE} seed pairs) and the exact "
            f"sign-flip test on the per-item mean difference (McNemar's with one seed pair); results.csv "
            f"also holds its Holm-adjusted p over the {test_family} comparison(s).")


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


def _versions(done: list[dict]) -> dict:
    """The code and results versions, per dataset the content hashes the runs recorded, and the
    environment each run recorded (thread count, torch and transformers versions, device): per key,
    the distinct values and the runs that recorded none."""
    def distinct(key: str, dataset: str) -> list:
        return sorted({str(r["summary"].get(key)) for r in done if r["dataset"] == dataset
                       and r["summary"].get(key) is not None})
    datasets = sorted({r["dataset"] for r in done})
    environment = {}
    for key in ENVIRONMENT_KEYS:
        values = [(r["summary"].get("environment") or {}).get(key) for r in done]
        environment[key] = {"values": sorted({str(v) for v in values if v is not None}),
                            "not_recorded": sorted(r["id"] for r, v in zip(done, values) if v is None)}
    return {"cotdistill": __version__, "code": _git_version(), "results_version": RESULTS_VERSION,
            "runs_results_versions": sorted({r["summary"].get("results_version") or 1 for r in done}),
            "datasets": {d: {k: distinct(k, d) for k in ("data_hash", "scores_hash", "precision", "device")}
                         for d in datasets},
            "environment": environment,
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


def _flips(row: dict, paired: dict, examples: dict, shown: int, scoring: str | None = None) -> dict:
    """Items the arm fixes (right where the reference is wrong) or breaks on every seed pair: how many,
    and the first `shown` of each with the answers of the first seed pair (under `scoring` where the
    run was scored)."""
    n_pairs = len(paired["pairs"])
    fixed = [e for e in paired["examples"] if e["fixes"] == n_pairs]
    broken = [e for e in paired["examples"] if e["breaks"] == n_pairs]
    a_run, b_run = paired["pairs"][0]
    answers = {(p["run_id"], p["example_id"]): {**p, **((p["extra"].get("by_mode") or {}).get(scoring) or {})}
               for p in api.predictions([a_run, b_run])}
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
            "status": r["status"], "accuracy": r["accuracy"], "eval_mode": r["eval_mode"],
            "config_hash": r["config_hash"], "flags": flags.get(r["id"], [])}


# ------------------------------------------------------------------------------------------ files

def files(report: dict) -> dict[str, bytes]:
    """Every file of the report by its relative path: the figures as PDF and SVG."""
    from worker.report_html import figures, html_page
    out = {"report.html": html_page(report).encode("utf-8"),
           "table.tex": fmt.latex_table(report["rows"], caption_note=table_note(report)).encode("utf-8"),
           "table.md": (fmt.markdown_table(report["rows"]) + f"\n{table_note(report)}.\n").encode("utf-8"),
           "results.csv": fmt.csv_text(report["rows"]).encode("utf-8")}
    for name, found in figures(report).items():
        for kind, data in found.items():
            out[f"figures/{name}.{kind}"] = data
    return out


def table_note(report: dict) -> str:
    family = sum(r.get("p_value") is not None for r in report["rows"])
    return (f"Δ vs ref.: procedure-level difference, seeds as the unit (paired t over seed pairs, 95% t-interval); "
            f"* : p < {fmt.ALPHA} after Holm's correction over the {family} comparison(s) with a p-value; "
            f"'{fmt.NEEDS_SEEDS}': one seed pair. Test set: these trained models on these items (item-cluster "
            f"bootstrap, bootstrap seed {BOOTSTRAP_SEED}; exact sign-flip p), not a claim about new seeds. "
            f"Reference arm {report['reference']}")


def write(report: dict, out: Path) -> list[Path]:
    """Write the report's files under `out` (created); returns their paths."""
    written = []
    for name, data in files(report).items():
        path = Path(out) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        written.append(path)
    return written


def report_folder(report: dict) -> str:
    """The report's folder name: `report-experiment-<id>`, from the database id alone."""
    return f"report-experiment-{int(report['experiment']['id'])}"


def zip_bytes(report: dict) -> bytes:
    """The report's files in one zip, under a folder named from the experiment's id (never from a name
    a user chose: no entry can hold '../')."""
    buffer = io.BytesIO()
    folder = report_folder(report)
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files(report).items():
            z.writestr(f"{folder}/{name}", data)
    return buffer.getvalue()
