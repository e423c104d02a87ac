"""`cotdistill preview`: what the student is trained on, token by token.

    cotdistill preview configs/cqa-after.yaml --n 3 --placements before,after --perturbations none,shuffle
"""

from __future__ import annotations

import sys

import click

from cotdistill.cli.common import _config, _fail, science


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
    from cotdistill.errors import DataError
    from cotdistill.preview import preview_rows, render
    from cotdistill.errors import StudentError

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
