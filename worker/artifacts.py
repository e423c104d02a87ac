"""Where runs and jobs keep their files ($COTDISTILL_ARTIFACTS, default $COTDISTILL_HOME/artifacts), and
what goes when a run ends: a cancelled run's checkpoint (a cancel is final, a retry starts afresh; the
checkpoint of a 135M-parameter student is 1.6 GB), unless $COTDISTILL_KEEP_CHECKPOINTS. A succeeded
run's checkpoint is deleted by the run itself (cotdistill/run.py), under the same setting."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from cotdistill.paths import home


def artifacts_root() -> Path:
    return Path(os.environ.get("COTDISTILL_ARTIFACTS") or home() / "artifacts")


def run_dir(run_id: int) -> Path:
    return artifacts_root() / f"run-{run_id}"


def drop_checkpoint(out: Path) -> None:
    """Delete the run folder `out`'s checkpoint, unless $COTDISTILL_KEEP_CHECKPOINTS asks to keep it."""
    from cotdistill.run import keep_checkpoints
    if not keep_checkpoints():
        shutil.rmtree(Path(out) / "checkpoint", ignore_errors=True)
