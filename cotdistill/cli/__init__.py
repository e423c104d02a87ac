"""The science commands of `cotdistill`, one module per command group: run and rescore (run),
preview (preview), datasets and data fetch|import|register|check (data), teacher generate (teacher),
attribute (attribution), demo and selftest (studies); the group and the helpers they share live in
common. The top of the library: it may import every layer of cotdistill, and nothing imports it but
the job system's CLI (worker/cli.py), which mounts `science`, so the core never imports upward.

    cotdistill run configs/cqa-after.yaml perturbation.kind=shuffle seed=2
    python -m cotdistill.cli datasets          # the science group alone, without the job system
"""

from __future__ import annotations

from cotdistill.cli import attribution, data, preview, run, studies, teacher  # noqa: F401  (each registers its commands)
from cotdistill.cli.common import science
from cotdistill.cli.run import format_summary, progress_printer, rescore_run

__all__ = ["format_summary", "main", "progress_printer", "rescore_run", "science"]


def main() -> None:
    science()
