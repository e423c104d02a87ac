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


def _config(path, overrides):
    try:
        return load_config(path, list(overrides))
    except ConfigError as e:
        _fail(str(e))


@click.group(name="cotdistill")
def science() -> None:
    """CoT distillation workbench: placements, perturbations, students, statistics."""


def format_summary(s: dict) -> str:
    """The run's result in a few lines; a WARNING line when it is not distinguishable from a constant
    answer (summaries written before the diagnostics existed print as they did)."""
    mode = s["eval_mode"] + (f", {s['scoring']} scoring" if s.get("scoring") else "")
    lines = [f"accuracy {s['accuracy']:.3f} [{s['accuracy_low']:.3f}, {s['accuracy_high']:.3f}] "
             f"on {s['n']} test examples ({mode}; {s['unparsed']} unparsed) · "
             f"final loss {s['final_loss']:.4f} · {s['tokens_per_s']:.0f} tok/s · {s['student']}"]
    if "majority_baseline" in s:
        top = (f" · most frequent prediction {s['top_prediction']!r} on {s['top_prediction_share']:.0%}"
               if s.get("top_prediction") is not None else "")
        lines.append(f"majority baseline {s['majority_baseline']:.3f} (always {s['majority_label']!r}){top}")
    if s.get("accuracy_by_mode") and len(s["accuracy_by_mode"]) > 1:
        lines.append("accuracy by scoring: " + ", ".join(f"{m} {a:.3f}" for m, a in s["accuracy_by_mode"].items()))
    if s.get("collapsed"):
        lines.append(f"WARNING: {s['collapse_reason']}")
    return "\n".join(lines)


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
        if phase == "start":                            # the bar exists before the first step ends
            bars["train"] = tqdm(total=e["total"], desc="train", unit="step", dynamic_ncols=True,
                                 initial=e["resumed_step"])
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
def run(config, overrides, out, device, force) -> None:
    """Train and evaluate one run; KEY=VALUE overrides change the config (e.g. seed=2)."""
    from cotdistill.examples import DataError
    from cotdistill.runner import RunError, default_run_dir, run as run_one
    from cotdistill.students import StudentError

    cfg = _config(config, overrides)
    out = Path(out) if out else default_run_dir(cfg)
    if force and out.exists():
        shutil.rmtree(out)
    if (out / "summary.json").exists():
        click.echo(f"{out} already holds this finished run (use --force to redo it):")
        click.echo(format_summary(json.loads((out / "summary.json").read_text())))
        return
    click.echo(f"run folder: {out}")
    try:
        summary = run_one(cfg, out, callback=progress_printer(), device=device)
    except (ConfigError, DataError, RunError, StudentError, ValueError) as e:
        _fail(str(e))
    click.echo(format_summary(summary))


def load_run_config(run_dir: Path):
    """The resolved RunConfig saved in a finished run folder (its config.yaml, written by `run`)."""
    import yaml

    from cotdistill.config import RunConfig, from_dict
    from cotdistill.runner import RunError

    saved = run_dir / "config.yaml"
    if not all(p.is_file() for p in (saved, run_dir / "summary.json", run_dir / "model" / "config.json")):
        raise RunError(f"{run_dir} holds no finished run (needs config.yaml, summary.json and model/): "
                       f"rescore a folder written by `cotdistill run`")
    data = yaml.safe_load(saved.read_text(encoding="utf-8")) or {}
    data.pop("config_hash", None)                       # written beside the settings, not one of them
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
                              progress=lambda done, total: on_event({"phase": "eval", "done": done, "total": total}))
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


@science.command()
@click.option("--placements", default="none,before,after", show_default=True)
@click.option("--perturbations", default="none,shuffle", show_default=True,
              help="Applied to the `after` placement only.")
@click.option("--steps", default=1000, show_default=True)
@click.option("--seed", default=0, show_default=True)
def demo(placements, perturbations, steps, seed) -> None:
    """A sweep of placements on the built-in counting task, printed as an accuracy table."""
    from cotdistill.demo import demo_sweep
    demo_sweep(placements.split(","), perturbations.split(","), steps=steps, seed=seed, echo=click.echo)


# --- teacher rationales and rationale-set data (cotdistill.teachers, cotdistill.rationale_sets) --

def _pairs(items, what: str) -> dict:
    """KEY=VALUE options (values parsed as YAML) as a dict; exits naming a malformed one."""
    import yaml

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            _fail(f"{what} {item!r} is not KEY=VALUE")
        out[key.strip()] = yaml.safe_load(value) if value.strip() else None
    return out


def _set_line(path: Path) -> str:
    from cotdistill.rationale_sets import open_rationale_set

    p = open_rationale_set(path).provenance
    accuracy = "n/a" if p["teacher_accuracy"] is None else f"{p['teacher_accuracy']:.3f}"
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
@click.option("--n", "n", type=int, default=None, help="Only the first N examples of each split.")
@click.option("--model", default="smollm2-135m", show_default=True,
              help="Local: tiny, smollm2-135m, a hub id or a folder. HTTP: the served model name.")
@click.option("--base-url", default=None, help="An OpenAI-compatible server: the teacher is HTTP.")
@click.option("--api", type=click.Choice(["completions", "chat"]), default="completions",
              show_default=True)
@click.option("--api-key-env", default=None, help="NAME of the environment variable with the key.")
@click.option("--concurrency", default=4, show_default=True, help="HTTP requests in flight.")
@click.option("--timeout", default=60.0, show_default=True, help="Seconds per HTTP request.")
@click.option("--device", default=None, help="Local teacher: cpu, cuda … (default: cuda if any).")
@click.option("--template-file", type=click.Path(dir_okay=False, exists=True), default=None,
              help="Your few-shot template ({question}, {choices}, {gold_hint}, {gold}).")
@click.option("--rationalize", is_flag=True, help="Tell the teacher the gold answer.")
@click.option("--max-new-tokens", default=256, show_default=True)
@click.option("--temperature", default=0.0, show_default=True, help="0 = greedy.")
@click.option("--top-p", default=1.0, show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.option("--batch-size", default=8, show_default=True)
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

    opts = _pairs(options, "--option")
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
    """Published rationale releases and rationale sets: fetch, import."""


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


@data_group.command(name="import")
@click.argument("sources", nargs=-1, required=True)
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Set folder (default: $COTDISTILL_HOME/rationale_sets/<name>).")
@click.option("--name", default=None, help="Set name (default: the release or the file name).")
@click.option("--release", default=None,
              help="SOURCE is a folder laid out like this release (default: the folder's name).")
@click.option("--split", "splits", multiple=True,
              help="Release: splits to import (default all). File: the split of a bare PATH.")
@click.option("--column", "columns", multiple=True, help="FIELD=COLUMN mapping (repeatable).")
@click.option("--kind", default="multiple_choice", show_default=True)
@click.option("--format", "fmt", default=None, help="jsonl, csv or tsv (default: extension).")
@click.option("--choices-sep", default=None)
@click.option("--label-format", default=None, help="letter, text or index.")
@click.option("--option", "options", multiple=True, help="Release option KEY=VALUE.")
@click.option("--teacher", "teacher_name", default=None, help="Who wrote the rationales (a file).")
def import_(sources, out, name, release, splits, columns, kind, fmt, choices_sep, label_format,
            options, teacher_name) -> None:
    """Make a rationale set from a release folder, or from files: PATH or SPLIT=PATH ..."""
    from cotdistill.data.rationale_set import sets_root
    from cotdistill.examples import DataError
    from cotdistill.rationale_sets import import_file, import_release

    folder = Path(sources[0])
    try:
        if len(sources) == 1 and folder.is_dir():
            release = release or folder.name
            target = Path(out) if out else sets_root() / (name or release)
            path = import_release(release, folder, target, splits=splits or None, name=name,
                                  **_pairs(options, "--option"))
        else:
            files = dict(s.split("=", 1) if "=" in s else ((splits or ("train",))[0], s)
                         for s in sources)
            target = Path(out) if out else sets_root() / (name or Path(sources[0]).stem)
            path = import_file(files, target, name=name, teacher=teacher_name, kind=kind,
                               columns=_pairs(columns, "--column") or None, format=fmt,
                               choices_sep=choices_sep, label_format=label_format)
    except DataError as e:
        _fail(str(e))
    click.echo(_set_line(path))


# --- token attribution (cotdistill.attribution) -------------------------------------------------

def _attribution_data(run_dir, dataset, options, split) -> tuple[str, dict, str]:
    """Dataset name, options and split: as given, else the run's own (its config.yaml)."""
    import yaml

    opts = _pairs(options, "--option")
    if run_dir and (dataset is None or split is None):
        saved = Path(run_dir) / "config.yaml"
        data = (yaml.safe_load(saved.read_text(encoding="utf-8")) or {}).get("data", {}) \
            if saved.exists() else {}
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
    click.echo(f"wrote {out} ({level} level, scorer {scorer.source})")


def main() -> None:
    science()


if __name__ == "__main__":
    main()
