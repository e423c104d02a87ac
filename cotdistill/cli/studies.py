"""`cotdistill demo` and `cotdistill selftest`: the placement sweep and the control suite.

    cotdistill demo                       # the placement sweep on the synthetic task (make demo)
    cotdistill selftest --seeds 0,1,2
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from cotdistill.cli.common import _fail, science


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
    from cotdistill.studies.demo import demo_sweep
    seed_list = _seed_list(seeds)
    demo_sweep(placements.split(","), perturbations.split(","), steps=steps, seeds=seed_list, echo=click.echo)


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
    from cotdistill.paths import home
    from cotdistill.studies.testbed import run_selftest
    seed_list = _seed_list(seeds)
    if steps is not None and steps < 1:
        _fail(f"--steps must be at least 1, found {steps}")
    results = run_selftest(seed_list, Path(out) if out else home() / "selftest", steps=steps,
                           echo=click.echo, device=device)
    if not all(r["passed"] for r in results):
        sys.exit(1)
