"""The science commands of `cotdistill`: run, preview, datasets, demo.

    cotdistill run configs/cqa-after.yaml perturbation.kind=shuffle seed=2
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

from cotdistill.config import ConfigError, load_config


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
    return (f"accuracy {s['accuracy']:.3f} [{s['accuracy_low']:.3f}, {s['accuracy_high']:.3f}] "
            f"on {s['n']} test examples ({s['eval_mode']}; {s['unparsed']} unparsed) · "
            f"final loss {s['final_loss']:.4f} · {s['tokens_per_s']:.0f} tok/s · {s['student']}")


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


def main() -> None:
    science()


if __name__ == "__main__":
    main()
