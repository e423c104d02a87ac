"""One path policy for every value that names a file or folder a job reads or writes.

    confine("/data/mine.csv", "data.options.path", roots)     # the resolved path, or Refused
    is_bare_name("cqa-smollm2")                                # a name (under a root), not a path

Wherever a path comes from (a run config, a dataset's loader options, a rationale set's name, a
scores file, a report's output, the jobs API, an app form), a confined path is:
- absolute: a relative path would be read relative to whichever folder the worker was started in;
  only the command line (`cotdistill run`, `data import`) reads paths relative to the working folder,
  because there the user typed them;
- written without `~`: it is never expanded, so a refusal cannot tell whether a file exists in
  someone's home folder;
- inside one of its roots after `..` and symlinks are resolved.
Nothing is read or listed before the check, and a refusal names the key and the path as given,
never a byte of the file. Dataset loaders declare which of their options are paths
(`DatasetSpec.path_options` in cotdistill.data), so a new option is checked by construction.
This module imports nothing of the project: the roots come from the caller.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Iterable

__all__ = ["Refused", "confine", "is_bare_name", "within"]

# A bare name: no separator, not '.' or '..', no '~' (cotdistill.names allows a subset of these).
_BARE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]*")


class Refused(ValueError):
    """A path outside its roots, a name that could leave its folder, or a secret or URL a job may
    not use."""


def is_bare_name(value: str) -> bool:
    """Whether `value` is a plain name (one folder under a known root) rather than a path."""
    return isinstance(value, str) and bool(_BARE.fullmatch(value)) and ".." not in value


def within(path: Path, roots: Iterable[Path]) -> bool:
    """Whether the resolved `path` is one of `roots` or lies under one (roots resolved too)."""
    return any(path == r or path.is_relative_to(r) for r in (Path(r).resolve() for r in roots))


def confine(path: str | Path, where: str, roots: Iterable[Path]) -> Path:
    """`path` resolved (symlinks followed), if it is absolute, has no `~` and lies inside one of
    `roots`; else Refused naming `where` and the path as given. The checks before resolving look
    only at the text, so a refusal tells nothing about what exists outside the roots."""
    roots = [Path(r).resolve() for r in roots]
    text = str(path)
    listed = ", ".join(str(r) for r in roots)
    if not text.strip() or "\x00" in text:
        raise Refused(f"{where}: the path {text!r} is empty or holds a NUL character; give a full path "
                      f"inside one of {listed}")
    if text.startswith("~"):
        raise Refused(f"{where}: the path {text!r} starts with '~', which is not expanded here; give the "
                      f"full path inside one of {listed}")
    if "\\" in text:
        raise Refused(f"{where}: the path {text!r} holds a backslash; write it with '/', inside one of "
                      f"{listed}")
    if not Path(text).is_absolute():
        raise Refused(f"{where}: the path {text!r} is relative, and would depend on the folder the "
                      f"worker was started in; give the full path inside one of {listed}")
    resolved = Path(text).resolve()
    if not within(resolved, roots):
        raise Refused(f"{where}: the path {text!r} is outside the folders jobs may read ({listed}); put "
                      f"the file there or ask the operator to add its folder to COTDISTILL_ALLOWED_PATHS")
    return resolved


def home() -> Path:
    """The state folder for caches (tokenizers, converted models): $COTDISTILL_HOME or ~/.cotdistill."""
    path = Path(os.environ.get("COTDISTILL_HOME") or Path.home() / ".cotdistill")
    path.mkdir(parents=True, exist_ok=True)
    return path
