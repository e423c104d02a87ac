"""Names that users give: experiments, runs and rationale sets. One rule, checked at every entry.

    check_name("cqa-placements", "experiment name")     # the name, or BadName saying what is wrong

A name is 1 to MAX_LENGTH characters: letters, digits and `. _ - + @`, beginning with a letter or a
digit, without `..`. So a name never holds a separator, never climbs out of a folder, and can be
written in a shell, a URL or a zip entry as it is. Names still never become file or zip-entry names
on their own where a user can choose them freely: reports are named from ids (worker/report.py).
This module imports nothing of the project.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["MAX_LENGTH", "BadName", "check_name", "name_problem"]

MAX_LENGTH = 100
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+@-]*")


class BadName(ValueError):
    """A user-given name outside the safe character set."""


def name_problem(name: Any, what: str = "name") -> str | None:
    """Why `name` is not a usable name, or None."""
    if not isinstance(name, str):
        return f"{what} must be text, not {type(name).__name__}"
    if not name:
        return f"{what} is empty"
    if len(name) > MAX_LENGTH:
        return f"{what} has {len(name)} characters; at most {MAX_LENGTH}"
    if not _NAME.fullmatch(name) or ".." in name:
        return (f"{what} {name[:40]!r} may hold only letters, digits and . _ - + @, must begin with a "
                f"letter or digit, and may not contain '..' or a '/'")
    return None


def check_name(name: Any, what: str = "name") -> str:
    """`name` if it is usable; else BadName with one sentence naming what is wrong."""
    if problem := name_problem(name, what):
        raise BadName(problem)
    return name
