"""The science commands of `cotdistill`: run, rescore, preview, datasets, demo.

    cotdistill run configs/cqa-after.yaml perturbation.kind=shuffle seed=2
    cotdistill rescore runs/cqa-after-… --scoring calibrated   # re-evaluate the trained model, no training
    cotdistill preview configs/cqa-after.yaml --n 3 --placements before,after --perturbations none,shuffle
    cotdistill datasets
    cotdistill demo                       # the placement sweep on the synthetic task (make run)

`science` is a click group; the job system's CLI mounts it, so the core never imports upward.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import click

from cotdistill.config import SCORINGS, ConfigError, load_config


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


def _config(path, overrides, defaults=False):
    try:
        return load_config(path, list(overrides), defaults)
    except ConfigError as e:
        _fail(str(e))


@click.group(name="cotdistill")
def science() -> None:
    """CoT distillation workbench: placements, perturbations, students, statistics."""


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
    from cotdistill.examples import DataError
    from cotdistill.runner import RunError, default_run_dir, folder_state, older_runs, run as run_one
    from cotdistill.students import StudentError

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
        from cotdistill.runner import saved_config
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
    from cotdistill.runner import RunError

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
    from cotdistill.runner import SAVED_META
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

    from cotdistill.evaluation import evaluate, scoring_options, summarize_with_diagnostics
    from cotdistill.runner import RunError, load_examples, make_builder, write_json, write_jsonl
    from cotdistill.students import load_pretrained

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
    from cotdistill.examples import DataError
    from cotdistill.runner import RunError
    from cotdistill.students import StudentError

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


@science.command()
@click.argument("config", type=click.Path(dir_okay=False))
@click.argument("overrides", nargs=-1)
@click.option("--n", "n", default=3, show_default=True, help="Examples to show.")
@click.option("--placements", default=None, help="Comma-separated (default: the config's).")
@click.option("--perturbations", default=None, help="Comma-separated (default: the config's).")
@click.option("--split", default="train", show_default=True)
@click.option("--color/--no-color", default=None, help="Default: colour on a terminal.")
def preview(config, overrides, n, placements, perturbations, split, color) -> None:
    """Print the exact training sequences, supervised tokens marked."""
    from cotdistill.examples import DataError
    from cotdistill.preview import preview_rows, render
    from cotdistill.students import StudentError

    cfg = _config(config, overrides)
    split_list = lambda s: [x.strip() for x in s.split(",") if x.strip()] if s else None  # noqa: E731
    try:
        rows = preview_rows(cfg, n=n, placements=split_list(placements),
                            perturbations=split_list(perturbations), split=split)
    except (DataError, StudentError, ValueError) as e:
        _fail(str(e))
    color = sys.stdout.isatty() if color is None else color
    if not color:
        click.echo("supervised tokens between « »")
    for row in rows:
        click.echo(render(row, color=color) + "\n")


@science.command()
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Default: $COTDISTILL_DATA_DIR or ../shared/data.")
def datasets(data_dir) -> None:
    """List the datasets that load here, with their counts."""
    from cotdistill.data import available, data_dir as default_dir

    root = Path(data_dir) if data_dir else default_dir()
    click.echo(f"data folder: {root}")
    for info in available(root):
        if info.error:
            click.echo(f"  {info.name:<22} {info.kind or 'any':<16} unavailable: {info.error}")
            continue
        counts = ", ".join(f"{split} {n:,} ({info.rationale_counts.get(split, 0):,} with rationale)"
                           for split, n in info.counts.items()) or info.description
        click.echo(f"  {info.name:<22} {info.kind or 'any':<16} {counts}")
    click.echo("  any Hugging Face dataset id (e.g. tau/commonsense_qa) loads with internet access;\n"
               "  any JSONL/CSV/TSV file loads with `data: {name: file, options: {path: …, columns: …}}`.")
    _print_catalogue()


def _print_catalogue() -> None:
    """The rationale sets of the catalogue (the app lists the same ones)."""
    from cotdistill.data.catalogue import catalogue
    from cotdistill.data.rationale_set import sets_root
    from cotdistill.examples import DataError

    try:
        entries = catalogue()
    except DataError as e:
        _fail(str(e))
    click.echo(f"rationale sets ({sets_root()} and registered folders; train on one with "
               f"`data: {{name: rationale-set, options: {{path: NAME_OR_FOLDER}}}}`):")
    if not entries:
        click.echo("  none yet: `cotdistill data import`, `cotdistill teacher generate`, or "
                   "`cotdistill data register FOLDER`")
    for e in entries:
        if e.error:
            click.echo(f"  set {e.name:<18} {'?':<16} unavailable: {e.error} ({e.path})")
            continue
        counts = ", ".join(f"{split} {n:,} ({e.with_rationale[split]:,} with rationale)"
                           if split in e.with_rationale else f"{split} {n:,}"
                           for split, n in e.splits.items())
        where = f" · {e.path}" if e.registered else ""
        click.echo(f"  set {e.name:<18} {e.kind or '?':<16} {counts}{where}")


def _seed_list(seeds: str) -> list[int]:
    """--seeds as a list of ints; exits naming what is wrong."""
    try:
        seed_list = [int(x) for x in seeds.split(",") if x.strip()]
    except ValueError:
        _fail(f"--seeds must be integers separated by commas, found {seeds!r}")
    if not seed_list:
        _fail("--seeds needs at least one seed")
    return seed_list


@science.command()
@click.option("--placements", default="none,before,after", show_default=True)
@click.option("--perturbations", default="none,shuffle", show_default=True,
              help="Applied to the `after` placement only.")
@click.option("--steps", default=1000, show_default=True)
@click.option("--seeds", default="0,1", show_default=True,
              help="Run seeds, comma-separated: a verdict about the procedures needs at least 2.")
def demo(placements, perturbations, steps, seeds) -> None:
    """A sweep of placements on the built-in counting task, printed as an accuracy table with each arm's
    difference to label-only (the procedures, seeds as the unit; then the test set)."""
    from cotdistill.demo import demo_sweep
    seed_list = _seed_list(seeds)
    demo_sweep(placements.split(","), perturbations.split(","), steps=steps, seeds=seed_list, echo=click.echo)


# --- teacher rationales and rationale-set data (cotdistill.teachers, cotdistill.rationale_sets) --

@science.command()
@click.option("--seeds", default="0,1,2", show_default=True, help="Run seeds, comma-separated.")
@click.option("--steps", type=int, default=None, help="Training steps per run (default: the testbed's).")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Folder of the suite's runs (default: $COTDISTILL_HOME/selftest); finished runs are reused.")
@click.option("--device", default=None, help="cpu or cuda (default: what is there).")
def selftest(seeds, steps, out, device) -> None:
    """The control suite on the built-in testbed: does the pipeline detect what it should?

    Trains label-only, the true rationale after the label (positive control), a rationale whose every
    colour is random and filler after the label (negative controls), and checks that the data report
    flags a rationale that states the answer (leak control). Each control is judged by the procedure
    (paired t over the seed pairs: at least 2 seeds); the table shows that difference, interval and p,
    then the test set's item-level interval and p for reading. Exits 1 if a control fails. It
    validates the tool; it says nothing about the study's claims on real data."""
    from cotdistill.students import home
    from cotdistill.testbed import run_selftest
    seed_list = _seed_list(seeds)
    if steps is not None and steps < 1:
        _fail(f"--steps must be at least 1, found {steps}")
    results = run_selftest(seed_list, Path(out) if out else home() / "selftest", steps=steps,
                           echo=click.echo, device=device)
    if not all(r["passed"] for r in results):
        sys.exit(1)


def _pairs(items, what: str) -> dict:
    """KEY=VALUE options (values parsed as YAML, bounded) as a dict; exits naming a malformed one."""
    from cotdistill.safe_load import ParseError, load_yaml_value

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            _fail(f"{what} {item!r} is not KEY=VALUE")
        if key.strip() in out:
            _fail(f"{what} {item!r}: {key.strip()} is given twice")
        try:
            out[key.strip()] = load_yaml_value(value)
        except ParseError as e:
            _fail(f"{what} {item!r}: {e}")
    return out


def _set_line(path: Path) -> str:
    from cotdistill.rationale_sets import open_rationale_set

    p = open_rationale_set(path).provenance
    by_split = p.get("teacher_accuracy_by_split") or {}
    accuracy = "n/a" if p["teacher_accuracy"] is None else f"{p['teacher_accuracy']:.3f}" + (
        " (" + ", ".join(f"{s} {a:.3f}" for s, a in by_split.items()) + ")" if by_split else "")
    splits = ", ".join(f"{s} {n:,}" for s, n in p["splits"].items())
    return (f"rationale set: {path}\n  {p['n_examples']:,} examples ({splits}) · teacher accuracy "
            f"{accuracy} · {p['n_unparsed']} unparsed · {p['n_errors']} errors · content hash "
            f"{p['content_hash'][:12]}")


@science.group()
def teacher() -> None:
    """Generate rationale sets with a teacher model (local or an OpenAI-compatible endpoint)."""


@teacher.command()
@click.argument("dataset")
@click.option("--split", "splits", multiple=True, default=("train",), show_default=True,
              help="Split to generate for (repeatable).")
@click.option("--option", "options", multiple=True, help="Dataset option KEY=VALUE (repeatable).")
@click.option("--n", "n", type=click.IntRange(min=1), default=None, help="Only the first N examples of each split.")
@click.option("--model", default="smollm2-135m", show_default=True,
              help="Local: tiny, smollm2-135m, a hub id or a folder. HTTP: the served model name.")
@click.option("--base-url", default=None, help="An OpenAI-compatible server: the teacher is HTTP.")
@click.option("--api", type=click.Choice(["completions", "chat"]), default="completions",
              show_default=True)
@click.option("--api-key-env", default=None, help="NAME of the environment variable with the key.")
@click.option("--concurrency", type=click.IntRange(1, 256), default=4, show_default=True,
              help="HTTP requests in flight.")
@click.option("--timeout", type=click.FloatRange(0, 86_400, min_open=True), default=60.0, show_default=True,
              help="Seconds per HTTP request, in total (connecting, waiting and reading the answer).")
@click.option("--device", default=None, help="Local teacher: cpu, cuda … (default: cuda if any).")
@click.option("--template-file", type=click.Path(dir_okay=False, exists=True), default=None,
              help="Your few-shot template ({question}, {choices}, {gold_hint}, {gold}).")
@click.option("--rationalize", is_flag=True, help="Tell the teacher the gold answer.")
@click.option("--max-new-tokens", type=click.IntRange(1, 32_768), default=256, show_default=True)
@click.option("--temperature", type=click.FloatRange(0, 100), default=0.0, show_default=True, help="0 = greedy.")
@click.option("--top-p", type=click.FloatRange(0, 1, min_open=True), default=1.0, show_default=True)
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True)
@click.option("--batch-size", type=click.IntRange(1, 65_536), default=8, show_default=True)
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Set folder (default: $COTDISTILL_HOME/rationale_sets/<dataset>-<model>).")
@click.option("--no-cache", is_flag=True, help="Do not reuse or store cached completions.")
def generate(dataset, splits, options, n, model, base_url, api, api_key_env, concurrency, timeout,
             device, template_file, rationalize, max_new_tokens, temperature, top_p, seed,
             batch_size, out, no_cache) -> None:
    """Write a rationale set for DATASET; rerun the same command to resume after a stop."""
    from cotdistill.data import load_examples
    from cotdistill.data.rationale_set import sets_root
    from cotdistill.examples import DataError
    from cotdistill.teachers import (Decoding, TeacherError, generate_rationales, load_teacher,
                                     make_prompt)

    from cotdistill.teachers.access import key_problem, normalise_url
    opts = _pairs(options, "--option")
    if api_key_env and (problem := key_problem(api_key_env, named_by_user=True)):
        _fail(f"--api-key-env: {problem}")                   # before anything is read or written
    if base_url:
        try:
            normalise_url(base_url)
        except TeacherError as e:
            _fail(f"--base-url: {e}")
    spec = ({"kind": "http", "base_url": base_url, "model": model, "api": api,
             "api_key_env": api_key_env, "concurrency": concurrency, "timeout": timeout}
            if base_url else {"kind": "local", "model": model, "device": device})
    result = None
    try:
        examples = {s: load_examples(dataset, s, **opts)[:n] for s in splits}
        kind = next(iter(examples.values()))[0].kind
        prompt = make_prompt(kind, template_file=template_file, rationalize=rationalize)
        decoding = Decoding(max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p,
                            seed=seed)
        slug = model.replace("/", "_") + ("-rationalized" if rationalize else "")
        target = Path(out) if out else sets_root() / f"{dataset.replace('/', '_')}-{slug}"
        click.echo(f"teacher {model} on {dataset} ({', '.join(splits)}) -> {target}")
        result = generate_rationales(examples, load_teacher(spec), prompt, decoding, target,
                                     batch_size=batch_size, use_cache=not no_cache,
                                     dataset={"name": dataset, "options": opts, "n": n},
                                     progress=_generation_printer())
    except KeyboardInterrupt:
        _fail("interrupted; finished examples are kept: rerun the same command to resume")
    except (DataError, TeacherError, ValueError) as e:
        _fail(str(e))
    if result.set_path is None:
        failed = "; ".join(f"{k}: {v}" for k, v in list(result.failed.items())[:3])
        _fail(f"{len(result.failed)} examples failed ({failed}); rerun the same command to retry "
              f"them, finished examples are kept")
    click.echo(_set_line(result.set_path))


def _generation_printer():
    def on_event(e: dict) -> None:
        accuracy = "n/a" if e["teacher_accuracy"] is None else f"{e['teacher_accuracy']:.3f}"
        click.echo(f"  {e['done']}/{e['total']} · teacher accuracy {accuracy} · {e['unparsed']} "
                   f"unparsed · {e['failed']} failed · {e['cache_hits']} from cache", err=True)
    return on_event


@science.group(name="data")
def data_group() -> None:
    """Published rationale releases and rationale sets: fetch, import, check."""


@data_group.command()
@click.argument("name")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Default: $COTDISTILL_DATA_DIR or ../shared/data.")
def fetch(name, data_dir) -> None:
    """Download the published release NAME (offline: says where to put its files)."""
    from cotdistill.teachers.releases import FetchError, fetch_release

    try:
        path = fetch_release(name, Path(data_dir) if data_dir else None)
    except FetchError as e:
        _fail(str(e))
    click.echo(f"{name}: {path}")


IMPORT_HELP = """Make a rationale set from a release folder, or from files: PATH or SPLIT=PATH ...

\b
Layouts (--format, default from the extension):
  jsonl   one object per line                      train.jsonl
  json    an array [{...}, ...], or an object keyed by row number or id {"0": {...}}
  csv/tsv with a header row, or --no-header: columns are positions  --column question=0
          --no-quoting for cells that begin with a literal "; --unescape turns \\n into newlines
\b
Fields (--column FIELD=COLUMN, repeatable; a nested path works: question.stem,
question.choices[].text, answers[0]):
  id question choices label rationale teacher_label
  teacher_correct   a true/false "was the teacher right" column (never teacher_label)
\b
Kinds (--kind): multiple_choice (default), yes_no (yes/no/true/false), numeric.
Label formats (--label-format, multiple choice): letter (A, a, (a), a), [A], '(B) text';
  default), text (the choice's text: exact, else the one choice equal up to case and spaces;
  an ambiguous or missing match is refused with the candidates), index (0-based), index1
  (1-based), sentence ('Sentence A').
Choices: a JSON list, a cell split by --choices-sep '|', or --embedded-choices inside the
  question: '(a) x (b) y', '(A) … (H) …', 'A. x B. y', 'a) x b) y', 'Answer Choices: (A) …',
  'Options:\\n- x\\n- y'. The options block is the last run of markers (after the header
  when there is one): 'P(A)' or a '(a)' earlier in the question stays in it; the markers are
  stripped from the choices; markers that skip a letter are refused with the row.
Rationales: --rationales FILE (repeatable, numbered files in order) aligned by position (JSON
  array of strings, or lines) or by id (objects {"id", "rationale"}); a list gives one row each.
  --rationale-cut "Thus, the answer is" (repeatable) keeps only the reasoning of a completion
  (rows without the marker are kept whole and counted in the report);
  --strip-leaks drops sentences that state the gold answer and an opening "Yes," / "No.".
Placeholders (--placeholders): rationales that are empty, nan, none, null, n/a, dummy, - or a
  single word are counted at any rate and dropped (drop, default: the row stays without a
  rationale), kept (keep) or refused with the row (error).
Length: a rationale longer than --max-rationale-chars (default 20,000, or
  $COTDISTILL_MAX_RATIONALE_CHARS) is refused with its file and row, before anything is written.
Questions: a question is its stem with its choices (a generic stem with other choices is
  another question). Splits: SPLIT=PATH per file; --holdout 0.1 --seed 0 holds out a seeded
  share of a train-only set's questions (all rows of one question together). A split other
  than train keeps one row per question (the others are dropped and counted);
  --keep-duplicate-test-rows keeps them, and a run's interval then resamples questions.
  One file given as train and test is refused.
\b
A mapping file (--mapping m.yaml) holds the same options, with per-split overrides:
  format: tsv
  header: false
  columns: {question: "0", label: "1"}
  embedded_choices: true
  splits: {test: {columns: {question: "1", label: "2"}}}
--save-mapping m.yaml writes the options used, for the next import.

\b
Example:
  cotdistill data import train=cqa_train.json test=cqa_test.json --column label=answerKey \\
      --embedded-choices --rationale-cut "So the answer is" --name cqa-mine
The data report (leaks, placeholders, overlap, cut misses) is printed after the import; see
`data check`. The set is listed by `cotdistill datasets` and in the app (Datasets, Launch, Key
tokens); `cotdistill data register FOLDER` adds a set folder written elsewhere.
"""

IMPORT_KEYS = ("columns", "kind", "format", "header", "quoting", "unescape", "choices_sep",
               "embedded_choices", "label_format", "rationale_cut", "rationales", "strip_leaks",
               "holdout", "seed", "teacher", "splits", "placeholders", "keep_duplicate_test_rows")


def _mapping(path: str | None) -> dict:
    """The options of a mapping YAML; one sentence naming the file and key if it is not one."""
    from cotdistill.config import read_config_file

    if path is None:
        return {}
    try:
        data = read_config_file(path, "--mapping") or {}
    except ConfigError as e:
        _fail(str(e))
    if not isinstance(data, dict):
        _fail(f"--mapping {path}: expected a mapping of options, found {type(data).__name__}")
    unknown = sorted(set(map(str, data)) - set(IMPORT_KEYS))
    if unknown:
        _fail(f"--mapping {path}: unknown key {unknown[0]!r}; keys: {', '.join(IMPORT_KEYS)}")
    if data.get("holdout") is not None:
        data["holdout"] = _number(data["holdout"], f"--mapping {path}: holdout",
                                  "a share between 0 and 1, such as 0.1")  # PyYAML reads 1e-1 as text
    if data.get("seed") is not None and (isinstance(data["seed"], bool) or not isinstance(data["seed"], int)):
        _fail(f"--mapping {path}: seed: expected an integer, found {data['seed']!r}")
    return data


def _number(value, where: str, expected: str) -> float:
    """A finite number from a YAML value (numbers written 1e-1 arrive as text); exits otherwise."""
    import math

    try:
        number = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError, OverflowError):
        number = math.nan
    if not math.isfinite(number):
        _fail(f"{where}: expected {expected}, found {value!r}")
    return number


@data_group.command(name="import", help=IMPORT_HELP)
@click.argument("sources", nargs=-1, required=True)
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Set folder (default: $COTDISTILL_HOME/rationale_sets/<name>).")
@click.option("--name", default=None, help="Set name (default: the release or the file name).")
@click.option("--release", default=None,
              help="SOURCE is a folder laid out like this release (default: the folder's name).")
@click.option("--split", "splits", multiple=True,
              help="Release: splits to import (default all). File: the split of a bare PATH.")
@click.option("--mapping", "mapping_file", type=click.Path(dir_okay=False, exists=True),
              default=None, help="A YAML of these options (flags given here win).")
@click.option("--save-mapping", type=click.Path(dir_okay=False), default=None,
              help="Write the options used to this YAML.")
@click.option("--column", "columns", multiple=True, help="FIELD=COLUMN or FIELD=a.b[].c (repeatable).")
@click.option("--kind", default=None, help="multiple_choice (default), yes_no, numeric.")
@click.option("--format", "fmt", default=None, help="jsonl, json, csv or tsv (default: extension).")
@click.option("--header/--no-header", default=None, help="Tables: first row names the columns.")
@click.option("--quoting/--no-quoting", default=None, help="Tables: --no-quoting keeps literal quotes.")
@click.option("--unescape", is_flag=True, default=None, help="Literal \\n and \\t become real ones.")
@click.option("--choices-sep", default=None, help="Split a choices cell at this text, e.g. '|'.")
@click.option("--embedded-choices", is_flag=True, default=None,
              help="Choices are written inside the question: '(a) … (b) …'.")
@click.option("--label-format", default=None, help="letter, text, index, index1, sentence.")
@click.option("--rationales", "rationale_files", multiple=True,
              help="File(s) holding the rationales, aligned by position or id.")
@click.option("--rationale-cut", "cuts", multiple=True,
              help="Cut the rationale at this marker, e.g. 'Thus, the answer is' (repeatable).")
@click.option("--strip-leaks", is_flag=True, default=None,
              help="Drop rationale sentences that state the gold answer.")
@click.option("--placeholders", type=click.Choice(["drop", "keep", "error"]), default=None,
              help="Placeholder rationales (nan, -, one word …): drop (default), keep or error.")
@click.option("--keep-duplicate-test-rows", "keep_duplicates", is_flag=True, default=None,
              help="Keep every row of a test question (default: one row per question).")
@click.option("--holdout", type=float, default=None, help="Hold out this share as a test split.")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=None, help="Seed of --holdout (default 0).")
@click.option("--option", "options", multiple=True, help="Release option KEY=VALUE.")
@click.option("--teacher", "teacher_name", default=None, help="Who wrote the rationales (a file).")
@click.option("--max-rationale-chars", "max_rationale", type=click.IntRange(min=1), default=None,
              help="Refuse rationales longer than this (default 20,000; $COTDISTILL_MAX_RATIONALE_CHARS).")
@click.option("--dry-run", is_flag=True,
              help="Files: read and check them, print the first parsed rows and the data report, write nothing.")
def import_(sources, out, name, release, splits, mapping_file, save_mapping, columns, kind, fmt,
            header, quoting, unescape, choices_sep, embedded_choices, label_format,
            rationale_files, cuts, strip_leaks, placeholders, keep_duplicates, holdout, seed,
            options, teacher_name, max_rationale, dry_run) -> None:
    from cotdistill.data.catalogue import remember
    from cotdistill.data.rationale_set import sets_root
    from cotdistill.examples import DataError
    from cotdistill.names import BadName, check_name
    from cotdistill.rationale_sets import import_file, import_release, read_import

    folder = Path(sources[0])
    try:
        if name is not None:
            check_name(name, "--name")
        if len(sources) == 1 and folder.is_dir():
            if dry_run:
                _fail("--dry-run reads files; a release folder is checked with `cotdistill data "
                      "check` once imported")
            release = release or folder.name
            target = Path(out) if out else sets_root() / (name or release)
            path = import_release(release, folder, target, splits=splits or None, name=name,
                                  max_rationale=max_rationale, **_pairs(options, "--option"))
        else:
            files = dict(s.split("=", 1) if "=" in s else ((splits or ("train",))[0], s)
                         for s in sources)
            given = {"columns": _pairs(columns, "--column") or None, "kind": kind,
                     "format": fmt, "header": header, "quoting": quoting, "unescape": unescape,
                     "choices_sep": choices_sep, "embedded_choices": embedded_choices,
                     "label_format": label_format, "rationale_cut": list(cuts) or None,
                     "rationales": list(rationale_files) or None, "strip_leaks": strip_leaks,
                     "placeholders": placeholders, "keep_duplicate_test_rows": keep_duplicates,
                     "holdout": holdout, "seed": seed, "teacher": teacher_name}
            opts = {**_mapping(mapping_file), **{k: v for k, v in given.items() if v is not None}}
            if save_mapping:
                import yaml

                Path(save_mapping).write_text(yaml.safe_dump(opts, sort_keys=False),
                                              encoding="utf-8")
            teacher = opts.pop("teacher", None)
            if dry_run:
                examples = read_import(files, split_options=opts.pop("splits", None),
                                       holdout=opts.pop("holdout", None), seed=opts.pop("seed", 0),
                                       strip_leaks=opts.pop("strip_leaks", False),
                                       keep_duplicate_test_rows=opts.pop(
                                           "keep_duplicate_test_rows", False),
                                       max_rationale=max_rationale, **opts)
                click.echo(_report_of(examples))
                click.echo("dry run: nothing written")
                return
            target = Path(out) if out else sets_root() / (name or Path(files[next(iter(files))]).stem)
            path = import_file(files, target, name=name, teacher=teacher,
                               split_options=opts.pop("splits", None),
                               holdout=opts.pop("holdout", None), seed=opts.pop("seed", 0),
                               strip_leaks=opts.pop("strip_leaks", False),
                               keep_duplicate_test_rows=opts.pop("keep_duplicate_test_rows", False),
                               max_rationale=max_rationale, **opts)
        remember(path)
    except (DataError, BadName) as e:
        _fail(str(e))
    click.echo(_set_line(path))
    click.echo(_report_text({"rationale-set": str(path)}))


@data_group.command(name="register")
@click.argument("folder", type=click.Path(file_okay=False))
def register(folder) -> None:
    """Add an existing rationale set FOLDER (written with --out, copied from elsewhere) to the
    catalogue: `cotdistill datasets` and the app then list it. The set is verified first."""
    from cotdistill.data.catalogue import register_folder
    from cotdistill.examples import DataError

    try:
        entry = register_folder(folder)
    except DataError as e:
        _fail(str(e))
    click.echo(_set_line(Path(entry.path)))
    click.echo(f"registered: `cotdistill datasets` lists it as {entry.name!r}; the app lists it on "
               f"its next refresh")


def _report_text(source: dict) -> str:
    from cotdistill.rationale_sets import open_rationale_set

    rs = open_rationale_set(source["rationale-set"])
    return _report_of({split: rs.examples(split) for split in rs.splits},
                      notes=(rs.provenance.get("extra") or {}).get("import") or {})


def _report_of(splits: dict, notes: dict | None = None) -> str:
    """The first parsed rows and the data report of {split: examples} (`notes`: what the import
    counted; default: from the examples)."""
    from cotdistill.data.report import data_report, format_report

    shown = [f"  {e.id}: {e.question!r} choices {list(e.choices or [])} label {e.label!r} "
             f"rationale {(e.rationale or '')[:60]!r}" for e in next(iter(splits.values()))[:2]]
    return "\n".join(["parsed, first rows:", *shown,
                      format_report(data_report(splits, notes=notes))])


@data_group.command(name="check")
@click.argument("source")
@click.option("--split", "splits", multiple=True, help="Splits to check (default: all).")
@click.option("--option", "options", multiple=True, help="Dataset option KEY=VALUE.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--tokenizer", default=None,
              help="Rationale lengths in tokens of this tokenizer (a folder or a hub id; default: words).")
def check(source, splits, options, as_json, tokenizer) -> None:
    """Data report of a rationale set (folder or name) or a registered dataset: label and length
    distributions, answer leaks, placeholders and duplicates, several rationales per question,
    train/test overlap, teacher disagreement. Exit status 1 if there are warnings."""
    from cotdistill.data import DATASETS, load_examples
    from cotdistill.data.rationale_set import resolve
    from cotdistill.data.report import data_report, format_report
    from cotdistill.examples import DataError
    from cotdistill.rationale_sets import open_rationale_set

    notes = None
    try:
        if source in DATASETS and DATASETS[source].splits:
            opts = _pairs(options, "--option")
            parts = splits or DATASETS[source].splits
            data = {p: load_examples(source, p, **opts) for p in parts}
        else:
            rs = open_rationale_set(resolve(source))
            data = {p: rs.examples(p) for p in (splits or rs.splits)}
            notes = {p: n for p, n in ((rs.provenance.get("extra") or {}).get("import") or {}).items()
                     if p in data}
    except DataError as e:
        _fail(str(e))
    count, unit = _token_counter(tokenizer) if tokenizer else (None, "words")
    report = data_report(data, count=count, unit=unit, notes=notes)
    click.echo(json.dumps(report, indent=1) if as_json else format_report(report))
    sys.exit(1 if report["warnings"] else 0)


def _token_counter(name: str):
    """(a rationale's length in tokens of `name`, the unit's name); one sentence if it won't load."""
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(name)
    except (OSError, ValueError) as e:
        _fail(f"--tokenizer {name}: cannot load it ({str(e).splitlines()[0]}); give a local "
              f"tokenizer folder, or a hub id where the hub is reachable")
    return (lambda text: len(tok(text, add_special_tokens=False)["input_ids"])), f"tokens ({name})"


# --- token attribution (cotdistill.attribution) -------------------------------------------------

def _attribution_data(run_dir, dataset, options, split) -> tuple[str, dict, str]:
    """Dataset name, options and split: as given, else the run's own (its config.yaml)."""
    from cotdistill.config import read_config_file

    opts = _pairs(options, "--option")
    if run_dir and (dataset is None or split is None):
        saved = Path(run_dir) / "config.yaml"
        try:
            data = read_config_file(saved) if saved.exists() else {}
        except ConfigError as e:
            _fail(str(e))
        data = data.get("data") if isinstance(data, dict) else None
        data = data if isinstance(data, dict) else {}
        if dataset is None and data.get("name"):
            dataset, opts = data["name"], opts or dict(data.get("options") or {})
        split = split or data.get("train_split")
    if dataset is None:
        _fail("--dataset is needed (only a --run folder knows its own dataset)")
    return dataset, opts, split or "train"


@science.command(name="attribute")
@click.option("--run", "run_dir", type=click.Path(file_okay=False, exists=True), default=None,
              help="A `before` run folder: its trained model, and by default its dataset.")
@click.option("--student", default=None, help="An untrained student: tiny, smollm2-135m, a hub id.")
@click.option("--model", "model_path", default=None, help="Any causal LM: a hub id or a folder.")
@click.option("--dataset", default=None, help="Default: the run's dataset.")
@click.option("--option", "options", multiple=True, help="Dataset option KEY=VALUE (default: the run's).")
@click.option("--split", default=None, help="Default: the run's training split, else train.")
@click.option("--n", "n", type=int, default=None, help="Only the first N examples with a rationale.")
@click.option("--method", type=click.Choice(["ig", "grad_x_input", "occlusion"]), default="ig",
              show_default=True)
@click.option("--steps", default=32, show_default=True, help="IG quadrature nodes.")
@click.option("--tolerance", type=float, default=None,
              help="IG: redo examples whose completeness error (nats) exceeds this, with more steps.")
@click.option("--baseline", type=click.Choice(["zero", "pad"]), default="zero", show_default=True)
@click.option("--batch-size", default=64, show_default=True, help="Sequences per forward pass.")
@click.option("--level", type=click.Choice(["word", "token"]), default="word", show_default=True,
              help="Units of the scores file (token: only for students sharing the tokenizer).")
@click.option("--abs", "absolute", is_flag=True, help="Write |score| (advised for grad_x_input).")
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="Scores file (JSONL) to write.")
@click.option("--device", default=None, help="cpu, cuda, cuda:1 … (default: cuda if available).")
@click.option("--seed", default=0, show_default=True, help="Initialisation of an untrained tiny student.")
def attribute_command(run_dir, student, model_path, dataset, options, split, n, method, steps, tolerance,
                      baseline, batch_size, level, absolute, out, device, seed) -> None:
    """Score each rationale token's importance for the gold label; write the key_tokens scores file."""
    if sum(bool(s) for s in (run_dir, student, model_path)) != 1:
        _fail("give exactly one scoring model: --run RUN_DIR, --student NAME or --model ID_OR_PATH")
    name, opts, split = _attribution_data(run_dir, dataset, options, split)
    import time

    from tqdm import tqdm

    from cotdistill import attribution
    from cotdistill.config import StudentConfig
    from cotdistill.data import load_examples
    from cotdistill.examples import DataError
    from cotdistill.runner import tokenizer_texts
    from cotdistill.students import StudentError

    try:
        examples = [ex for ex in load_examples(name, split, **opts) if ex.rationale][:n]
        if not examples:
            _fail(f"split {split!r} of {name!r} has no example with a rationale")
        texts = tokenizer_texts(load_examples(name, "train", **opts)) if student == "tiny" else None
        scorer = attribution.load_scoring_model(StudentConfig(name=student) if student else run_dir or model_path,
                                                train_texts=texts, seed=seed)
        bar = tqdm(total=len(examples), desc=method, unit="ex", dynamic_ncols=True)
        t0 = time.perf_counter()
        results = attribution.attribute(scorer.model, scorer.tokenizer, examples, method=method, steps=steps,
                                        batch_size=batch_size, device=device, baseline=baseline,
                                        tolerance=tolerance, progress=lambda done, total: bar.update(done - bar.n))
        seconds = time.perf_counter() - t0
        bar.close()
        attribution.write_scores(out, results, level, absolute=absolute)
    except (ConfigError, DataError, StudentError, ValueError) as e:
        _fail(str(e))
    s = attribution.summarize(results, seconds)
    line = f"{s['n']} examples of {name}/{split} · {method} · {s['examples_per_s']:.1f} examples/s"
    if s["mean_completeness_error"] is not None:
        line += (f" · completeness error mean {s['mean_completeness_error']:.2e} "
                 f"(max {s['max_completeness_error']:.2e}) nats")
    click.echo(line)
    if (agreement := attribution.agreement(results, examples)) is not None:
        click.echo(attribution.agreement_text(agreement))
    click.echo(f"wrote {out} ({level} level, scorer {scorer.source})")


def main() -> None:
    science()


if __name__ == "__main__":
    main()
