"""Every exception type of the science library, in one module at the bottom: a layer raises and
catches these without importing the layer that defines the work (the training loop raises RunError
without importing the run orchestrator). Imports nothing. The leaf utilities keep their own
(names.BadName, paths.Refused, safe_load.ParseError) so that they stay leaves.

    from cotdistill.errors import DataError, RunError
"""

from __future__ import annotations


# --- configuration and data -----------------------------------------------------------------------
class ConfigError(ValueError):
    """A configuration value is wrong; the message names the key and the file."""


class DataError(ValueError):
    """Bad input data. The message names the file, the row and the field when they are known."""

    def __init__(self, message: str, *, file: str | None = None, row: int | None = None,
                 field: str | None = None):
        where = ", ".join(p for p in (
            f"file {file}" if file else "",
            f"row {row}" if row is not None else "",
            f"field '{field}'" if field else "") if p)
        super().__init__(f"{where}: {message}" if where else message)
        self.file, self.row, self.field = file, row, field


class ChoiceError(ValueError):
    """The question has an options block whose markers are not a, b, c, … in order."""


# --- students -------------------------------------------------------------------------------------
class StudentError(RuntimeError):
    """A student could not be loaded; the message says what was needed and what to do."""


class LoraError(StudentError):
    """The LoRA settings do not fit the student; the message names the key and what to change."""


# --- runs and training ----------------------------------------------------------------------------
class RunError(RuntimeError):
    """The run cannot proceed as configured; the message says why and what to change."""


class ArtifactsMissing(RunError):
    """A file or folder the run wrote (or needs) vanished while it ran; the message names it."""


class WriteFailed(RunError):
    """The operating system refused a write into the run folder (disk full, quota, read-only): the
    message names what and where, and the checkpoint a retry resumes from."""


class NonFiniteLoss(RunError):
    """The loss of a step was NaN or infinite: training diverged, and no later step can recover."""


class PackingError(RunError):
    """train.packing is true but the student cannot keep packed sequences apart."""


class CorruptCheckpoint(Exception):
    """A checkpoint whose files do not match its manifest (or that has none); the message names the file."""


class RanksLost(RuntimeError):
    """A rank died without an error of its own (killed): the run can resume from its checkpoint."""


class Superseded(RuntimeError):
    """Another launch (a later attempt) owns this run folder: this one stopped without writing."""


# --- teachers and releases ------------------------------------------------------------------------
class TeacherError(RuntimeError):
    """A teacher cannot be set up or used; the message says what is missing and what to do."""


class FetchError(RuntimeError):
    """A release could not be downloaded; the message says where to put the files by hand."""
