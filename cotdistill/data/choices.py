"""Choices written inside the question text, split off so the question keeps only its stem.

    split_choices("Where do you keep a phone? (a) pocket (b) fridge")
    # -> ("Where do you keep a phone?", ("pocket", "fridge"))
    split_choices("Q? Answer Choices: (A) x (B) y")        # -> ("Q?", ("x", "y"))
    split_choices("Q?\\nOptions:\\n- x\\n- y")              # -> ("Q?", ("x", "y"))

Lettered markers must run a, b, c, … (or A, B, …) in order from the first; a '(b)' inside a
choice that breaks the run ends nothing. None when no form matches: the importer then names the
row, it never guesses.
"""

from __future__ import annotations

import re

from cotdistill.examples import LETTERS

_OPTIONS = re.compile(r"\n?\s*Options\s*:\s*\n", re.IGNORECASE)
_ANSWER_CHOICES = re.compile(r"\s*Answer\s+Choices\s*:\s*", re.IGNORECASE)


def split_choices(text: str) -> tuple[str, tuple[str, ...]] | None:
    """(stem, choices) of a question with embedded choices, or None if none are found."""
    return _dashed(text) or _lettered(text)


def _dashed(text: str) -> tuple[str, tuple[str, ...]] | None:
    match = _OPTIONS.search(text)
    if match is None:
        return None
    lines = [line.strip() for line in text[match.end():].split("\n") if line.strip()]
    if len(lines) < 2 or not all(line.startswith("-") for line in lines):
        return None
    choices = tuple(line[1:].strip() for line in lines)
    stem = text[:match.start()].strip()
    return (stem, choices) if stem and all(choices) else None


def _lettered(text: str) -> tuple[str, tuple[str, ...]] | None:
    for letters in (LETTERS, LETTERS.upper()):
        starts = _markers(text, letters)
        if len(starts) >= 2:
            break
    else:
        return None
    stem = _ANSWER_CHOICES.sub(" ", text[:starts[0][0]]).strip()
    ends = [s for s, _ in starts[1:]] + [len(text)]
    choices = tuple(text[end_of:nxt].strip() for (_, end_of), nxt in zip(starts, ends))
    if not stem or not all(choices):
        return None
    return stem, choices


def _markers(text: str, letters: str) -> list[tuple[int, int]]:
    """(start, end) of the markers '(a)', '(b)', … in order, each after the previous one."""
    found, pos = [], 0
    for letter in letters:
        match = re.compile(rf"\({letter}\)").search(text, pos)
        if match is None:
            break
        found.append((match.start(), match.end()))
        pos = match.end()
    return found
