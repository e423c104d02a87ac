"""Experiment reports for the app and the CLI (worker/report.py builds them)."""

from __future__ import annotations


def report_zip(experiment: str | int, *, reference: str | None = None, scoring: str | None = None) -> bytes:
    """The experiment's report (report.html, table.tex, table.md, results.csv, figures/*.pdf and *.svg)
    as one zip; raises worker.report.ReportError (a ValueError) when there is nothing to report or
    `reference` (a label, arm key or row key) names no arm."""
    from worker.report import build, zip_bytes
    return zip_bytes(build(experiment, reference=reference, scoring=scoring))
