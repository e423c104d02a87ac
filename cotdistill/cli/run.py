"""`cotdistill run` and `cotdistill rescore`: one run, trained and evaluated, or re-evaluated.

    cotdistill run configs/cqa-after.yaml perturbation.kind=shuffle seed=2
    cotdistill rescore runs/cqa-after-… --scoring calibrated   # re-evaluate the trained model, no training
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import click

from cotdistill.config import SCORINGS
from cotdistill.errors import ConfigError
from cotdistill.cli.common import _config, _fail, science


def format_summary(s: dict) -> str:
    """The run's result in a few lines, with the unparsed rate; a WARNING line per flag (constant answer,
    below the majority baseline, high unparsed rate). Summaries written before the diagnostics existed
    print as they did."""
    mode = s["eval_mode"] + (f", {s['scoring']} scoring" if s.get("scoring") else "")
    lines = [f"accuracy {s['accuracy']:.3f} [{s['accuracy_low']:.3f}, {s['accuracy_high']:.3f}] "
             f"on {_test_items(s)} ({mode}; {s['unparsed']} unparsed{_forced(s)}) · "
             + (f"final loss {s['final_loss']:.4f} · {s['tokens_per_s']:.0f} tok/s" if s.get("fine_tuned", True)
                else "not fine-tuned (train.steps 0: the untouched student)") + f" · {s['student']}"]
    if "majority_baseline" in s:
        top = (f" · most frequent prediction {s['top_prediction']!r} on {s['top_prediction_share']:.0%}"
               if s.get("top_prediction") is not None else "")
        lines.append(f"majority baseline {s['majority_baseline']:.3f} (always {s['majority_label']!r}){top}")
    if s.get("accuracy_by_mode") and len(s["accuracy_by_mode"]) > 1:
        lines.append("accuracy by scoring: " + ", ".join(f"{m} {a:.3f}" for m, a in s["accuracy_by_mode"].items()))
    if s.get("collapsed"):
        lines.append(f"WARNING: {s['collapse_reason']}")
    for flag, reason in (("below_baseline", "below_baseline_reason"), ("high_unparsed", "unparsed_reason")):
        if s.get(flag):
            lines.append(f"WARNING: {s[reason]}")
    lines += [f"WARNING: {w}" for w in s.get("data_warnings") or ()]
    return "\n".join(lines)


def _test_items(s: dict) -> str:
    """'450 test rows of 150 questions (interval over questions)', or '150 test examples'."""
    if s.get("n_questions") is not None and s["n_questions"] < s["n"]:
        return f"{s['n']} test rows of {s['n_questions']} questions (interval over questions)"
    return f"{s['n']} test examples"


def _forced(s: dict) -> str:
    """', rate 25%, 3 answers forced by scoring' when generation left labels unparsed."""
    if not s.get("unparsed"):
        return ""
    forced = f", {s['forced']} answers forced by scoring" if s.get("forced") else ""
    return f", rate {s.get('unparsed_rate', s['unparsed'] / s['n']):.0%}{forced}"


def progress_printer():
    """A callback drawing tqdm bars for training and evaluation."""
    from tqdm import tqdm
    bars = {}

    def on_event(e: dict) -> None:
        phase = e["phase"]
        if phase == "done":
            for bar in bars.values():
                bar.close()
            return
        if phase == "checkpoint":                       # a corrupt checkpoint moved aside, or the resume
            tqdm.write(f"checkpoint: {e['message']}", file=sys.stderr)
            return
        if phase == "start":                            # the bar exists before the first step ends
            for warning in e.get("data_warnings") or ():
                tqdm.write(f"WARNING: {warning}", file=sys.stderr)
            bars["train"] = tqdm(total=e["total"], desc="train", unit="step", dynamic_ncols=True,
                                 initial=e["resumed_step"])
            return
        if phase in ("load", "validate", "save"):      # short, or inside training: no bar of their own
            return
        if phase not in bars:
            if "train" in bars:
                bars["train"].close()
            bars[phase] = tqdm(total=e["total"], desc=phase, unit="ex", dynamic_ncols=True)
        bar = bars[phase]
        if phase == "train":
            bar.update(e["step"] - bar.n)
            bar.set_postfix(loss=f"{e['loss']:.3f}", tok_s=f"{e['tokens_per_s']:.0f}")
        else:
            bar.update(e["done"] - bar.n)
    return on_event


@science.command()
@click.argument("config", type=click.Path(dir_okay=False))
@click.argument("overrides", nargs=-1)
@click.option("--out", type=click.Path(file_okay=False), help="Run folder (default: runs/<name>-<hash>).")
@click.option("--device", default=None, help="cpu, cuda, cuda:1 … (default: cuda if available).")
@click.option("--force", is_flag=True, help="Discard a finished or partial run in the folder first.")
@click.option("--reuse-old", is_flag=True,
              help="Reuse a finished run of the same settings made by an older results version (or on "
                   "other data content) instead of rerunning it.")
@click.option("--defaults", is_flag=True, help="Accept an empty config file as the default config.")
@click.option("--track", default=None, help="Mirror the run to trackers, comma-separated: tensorboard, mlflow, "
              "wandb (default: $COTDISTILL_TRACKERS, none when unset).")
@click.option("--keep-checkpoint", is_flag=True, default=None,
              help="Keep checkpoint/ once the run succeeds, and the untouched student's (train.steps 0) "
                   "model copy (default: $COTDISTILL_KEEP_CHECKPOINTS, else both deleted / not written).")
def run(config, overrides, out, device, force, reuse_old, defaults, track, keep_checkpoint) -> None:
    """Train and evaluate one run; KEY=VALUE overrides change the config (e.g. seed=2).

    A folder that already holds this finished run (same config hash: settings, data content, results
    version, device kind and precision) is reused, and says so; one made by an older results version
    is rerun unless --reuse-old is given."""
    from cotdistill import RESULTS_VERSION
    from cotdistill.errors import DataError
    from cotdistill.errors import RunError
    from cotdistill.run import default_run_dir, folder_state, older_runs, run as run_one
    from cotdistill.errors import StudentError

    cfg = _config(config, overrides, defaults)
    out = Path(out) if out else default_run_dir(cfg, device)
    try:
        if force and out.exists():
            shutil.rmtree(out)
        state = folder_state(cfg, out, device)
    except OSError as e:                        # a name too long for the file system, no permission
        _fail(f"run folder {out}: {e.strerror or e}")
    old = [out] if state == "outdated" else ([] if state != "empty" else older_runs(cfg, device))
    if state == "finished":
        click.echo(f"reusing the finished run in {out} (same config hash {cfg.hash(device)}, results "
                   f"version {RESULTS_VERSION}; --force redoes it):")
        click.echo(format_summary(json.loads((out / "summary.json").read_text())))
        return
    if old:
        from cotdistill.run import saved_config
        version = saved_config(old[0])[1].get("results_version")
        finished = (old[0] / "summary.json").exists()
        if reuse_old and finished:
            click.echo(f"reusing {old[0]}: same settings from results version {version} (now "
                       f"{RESULTS_VERSION}) or other data content, as --reuse-old asks:")
            click.echo(format_summary(json.loads((old[0] / "summary.json").read_text())))
            return
        click.echo(f"not reusing {old[0]}: same settings, but results version {version} (now "
                   f"{RESULTS_VERSION}) or other data content; rerunning (--reuse-old reuses it)")
        if state == "outdated":
            aside = out.with_name(f"{out.name}.old-v{version}")
            shutil.rmtree(aside, ignore_errors=True)
            out.rename(aside)
            click.echo(f"moved the old run aside to {aside}")
    click.echo(f"run folder: {out}")
    printer = progress_printer()
    try:
        summary = run_one(cfg, out, callback=printer, device=device,
                          trackers=None if track is None else track.split(","), keep_checkpoint=keep_checkpoint)
    except (ConfigError, DataError, RunError, StudentError, ValueError) as e:
        printer({"phase": "done"})               # the bars end their line before the error's
        _fail(str(e))
    click.echo(format_summary(summary))


def load_run_config(run_dir: Path):
    """The resolved RunConfig saved in a finished run folder (its config.yaml, written by `run`)."""
    from cotdistill.config import RunConfig, from_dict, read_config_file
    from cotdistill.errors import RunError

    saved = run_dir / "config.yaml"
    summary = run_dir / "summary.json"
    if saved.is_file() and summary.is_file() and \
            json.loads(summary.read_text(encoding="utf-8")).get("model_saved") is False:
        raise RunError(f"{run_dir} is an untouched-student run (train.steps 0), which saves no model copy: "
                       f"run it again with --keep-checkpoint (or $COTDISTILL_KEEP_CHECKPOINTS=1) to rescore it")
    if not all(p.is_file() for p in (saved, summary, run_dir / "model" / "config.json")):
        raise RunError(f"{run_dir} holds no finished run (needs config.yaml, summary.json and model/): "
                       f"rescore a folder written by `cotdistill run`")
    data = read_config_file(saved) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{saved}: the top level must be a mapping")
    from cotdistill.run import SAVED_META
    for key in SAVED_META:                              # written beside the settings, not one of them
        data.pop(key, None)
    try:
        return from_dict(RunConfig, data)
    except ConfigError as e:
        raise ConfigError(f"{saved}: {e}") from None


def rescore_run(run_dir: Path, scoring: str | None = None, *, device: str | None = None,
                progress=None) -> dict:
    """Score evaluation of a finished run's trained model (RUN_DIR/model) on its configured test examples,
    every scoring computed, `scoring` (default: the run's eval.scoring) the primary one. Writes
    predictions-<scoring>.jsonl and summary-<scoring>.json into the run folder and returns that summary;
    the run's own predictions.jsonl and summary.json stay as they were."""
    import dataclasses
    import time

    import torch

    from cotdistill.evaluate.evaluation import evaluate, scoring_options, summarize_with_diagnostics
    from cotdistill.errors import RunError
    from cotdistill.run import load_examples, make_builder, write_json, write_jsonl
    from cotdistill.students.loading import load_pretrained

    cfg, model_dir = load_run_config(run_dir), run_dir / "model"
    eval_cfg = dataclasses.replace(cfg.eval, mode="score", scoring=scoring or cfg.eval.scoring, all_modes=True)
    if cfg.placement == "before":
        raise RunError(f"{run_dir} is a `before` run: score mode would rank 'So the answer is (c)' right "
                       f"after 'Answer:', where the student always wrote its rationale in training; "
                       f"rescore refuses it (its own generate-mode predictions.jsonl stands)")
    train, test = load_examples(cfg)
    if test[0].label_options is None:
        raise RunError(f"rescore ranks candidate labels, but {cfg.data.name!r} is {test[0].kind}: "
                       f"only multiple-choice and yes/no runs can be rescored")
    student = load_pretrained(str(model_dir), str(model_dir))
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    t0 = time.perf_counter()
    records = evaluate(student.model, make_builder(cfg, student.tokenizer, train), test, mode="score",
                       batch_size=eval_cfg.batch_size, device=device, progress=progress,
                       **scoring_options(eval_cfg))
    previous = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    summary = {**previous, **summarize_with_diagnostics(records, n_boot=eval_cfg.n_boot, seed=cfg.seed),
               "eval_mode": "score", "scoring": eval_cfg.scoring, "device": device,
               "eval_seconds": round(time.perf_counter() - t0, 3), "rescored": True}
    write_jsonl(run_dir / f"predictions-{eval_cfg.scoring}.jsonl", records)
    write_json(run_dir / f"summary-{eval_cfg.scoring}.json", summary)
    return summary


@science.command()
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True))
@click.option("--scoring", type=click.Choice(SCORINGS), default=None,
              help="Primary scoring (default: the run's eval.scoring); every scoring is computed.")
@click.option("--device", default=None, help="cpu, cuda, cuda:1 … (default: cuda if available).")
def rescore(run_dir, scoring, device) -> None:
    """Re-evaluate a finished run's model without retraining; writes predictions-SCORING.jsonl and
    summary-SCORING.json into RUN_DIR (the run's own files are kept). Runs with placement `before`
    are refused: score mode skips the rationale they were trained to write first."""
    from cotdistill.errors import DataError
    from cotdistill.errors import RunError
    from cotdistill.errors import StudentError

    on_event = progress_printer()
    try:
        summary = rescore_run(Path(run_dir), scoring, device=device,
                              progress=lambda done, total: on_event({"phase": "evaluate", "done": done, "total": total}))
        on_event({"phase": "done"})
    except (ConfigError, DataError, RunError, StudentError, ValueError) as e:
        _fail(str(e))
    click.echo(format_summary(summary))
    click.echo(f"wrote {Path(run_dir) / ('predictions-' + summary['scoring'] + '.jsonl')} and "
               f"summary-{summary['scoring']}.json")
