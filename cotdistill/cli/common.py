"""The science command group and the helpers its commands share: exiting with a message, reading a
config, KEY=VALUE options, a rationale set's one-line description.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from cotdistill.config import load_config
from cotdistill.errors import ConfigError


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
    from cotdistill.data.store import open_rationale_set

    p = open_rationale_set(path).provenance
    by_split = p.get("teacher_accuracy_by_split") or {}
    accuracy = "n/a" if p["teacher_accuracy"] is None else f"{p['teacher_accuracy']:.3f}" + (
        " (" + ", ".join(f"{s} {a:.3f}" for s, a in by_split.items()) + ")" if by_split else "")
    splits = ", ".join(f"{s} {n:,}" for s, n in p["splits"].items())
    return (f"rationale set: {path}\n  {p['n_examples']:,} examples ({splits}) · teacher accuracy "
            f"{accuracy} · {p['n_unparsed']} unparsed · {p['n_errors']} errors · content hash "
            f"{p['content_hash'][:12]}")
