"""Choices written inside the question text, split off so the question keeps only its stem.

    split_choices("Where do you keep a phone? (a) pocket (b) fridge")
    # -> ("Where do you keep a phone?", ("pocket", "fridge"))
    split_choices("Q? Answer Choices: (A) x (B) y")        # -> ("Q?", ("x", "y"))
    split_choices("Q? A. x B. y")                          # -> ("Q?", ("x", "y")); also 'a) x b) y'
    split_choices("Q?\\nOptions:\\n- x\\n- y")              # -> ("Q?", ("x", "y"))

The options block is found after the last `Options:` / `Answer Choices:` / `Choices:` header when
there is one, else anywhere: it is the longest run of markers a, b, c, … (or A, B, …) in one style,
`(a)`, `a)` or `a.`, the last one when two are as long (and none of its choices is empty). A marker glued to a word (`P(A)`, `f(a)`) is
not a marker, so `If P(A) = 1/3 … (A) 1/5 (B) 2/5` keeps `P(A)` in the stem, and a question that
mentions `(a)` before its options keeps it too. Inside the block a letter may be named again
('both (a) and (b)'), but a marker that skips a letter ('(a) x (b) y (d) z') is refused: ChoiceError,
which the importer turns into an error naming the row. Dashed lines (`- x`) whose texts carry
their own consecutive markers (`- (A) DNA`) lose those markers too. None when no form matches: the
importer then names the row, it never guesses.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from cotdistill.errors import ChoiceError
from cotdistill.examples import LETTERS

_HEADER = re.compile(r"(?:^|(?<=\s))(?:Options|Answer\s+Choices|Choices)\s*:", re.IGNORECASE)
_STYLES = {  # name -> marker pattern with {L} for the letter class; a marker never follows a word
    "(a)": r"(?<![\w(])\(({L})\)",
    "a)": r"(?<![\w(])({L})\)",
    "a.": r"(?<![\w.])({L})\.(?=\s)",
}
_CASES = (LETTERS, LETTERS.upper())


class _Run(NamedTuple):
    style: str
    letters: str
    starts: list[tuple[int, int]]  # (start, end) of each marker of the run, in order


def split_choices(text: str) -> tuple[str, tuple[str, ...]] | None:
    """(stem, choices) of a question with embedded choices, or None if none are found;
    ChoiceError if its markers skip a letter."""
    headers = list(_HEADER.finditer(text))
    if headers:
        head = headers[-1]
        stem, block = text[:head.start()].strip(), text[head.end():]
        found = _dashed(block, header=True) or _lettered(block, offset=0)
        if found is None or not stem:
            return None
        return stem, found[1]
    found = _dashed(text, header=False) or _lettered(text, offset=None)
    if found is None:
        return None
    start, choices = found
    stem = text[:start].strip()
    return (stem, choices) if stem else None


def marker_letters(text: str) -> str | None:
    """The letter of a lone choice marker ('(B)', 'b)', 'B.'), lowercase; None if `text` is not one."""
    for pattern in _STYLES.values():
        for letters in _CASES:
            match = re.fullmatch(pattern.format(L=f"[{letters}]"), text.strip())
            if match:
                return match.group(1).lower()
    return None


def _dashed(text: str, *, header: bool) -> tuple[int, tuple[str, ...]] | None:
    """(where the block starts, choices) of '- x' lines: every line after a header, or the
    trailing lines of the text without one."""
    lines = text.split("\n")
    if header:
        kept = [line.strip() for line in lines if line.strip()]
        if len(kept) < 2 or not all(line.startswith("-") for line in kept):
            return None
        start = 0
    else:
        while lines and not lines[-1].strip():
            lines.pop()
        n = 0
        while n < len(lines) and lines[len(lines) - 1 - n].strip().startswith("- "):
            n += 1
        if n < 2:
            return None
        kept = [line.strip() for line in lines[len(lines) - n:]]
        start = len("\n".join(lines[:len(lines) - n]))
    choices = tuple(line[1:].strip() for line in kept)
    if not all(choices):
        return None
    return start, _unmarked(choices)


def _unmarked(choices: tuple[str, ...]) -> tuple[str, ...]:
    """Dashed choices without their own markers, when every one starts with the next letter's."""
    for pattern in _STYLES.values():
        for letters in _CASES:
            found = [re.match(pattern.format(L=letters[i]) + r"\s*", c)
                     for i, c in enumerate(choices)]
            if all(found) and all(c[m.end():].strip() for c, m in zip(choices, found)):
                return tuple(c[m.end():].strip() for c, m in zip(choices, found))
    return choices


def _lettered(text: str, offset: int | None) -> tuple[int, tuple[str, ...]] | None:
    """(start of the first marker, choices) of the options block; `offset` 0: the block must start
    the text (after a header)."""
    runs, broken = [], None
    for style, pattern in _STYLES.items():
        for letters in _CASES:
            found, problem = _runs(text, style, pattern, letters)
            runs += found
            broken = broken or problem
    if offset == 0:
        runs = [r for r in runs if not text[:r.starts[0][0]].strip()]
    if not runs:
        problem = broken or _late_start(text)
        if problem:
            raise ChoiceError(problem)
        return None
    for run in sorted(runs, key=lambda r: (len(r.starts), r.starts[0][0]), reverse=True):
        ends = [s for s, _ in run.starts[1:]] + [len(text)]
        choices = tuple(text[end_of:nxt].strip() for (_, end_of), nxt in zip(run.starts, ends))
        if all(choices):   # a run that starts at a letter named inside a choice leaves one empty
            return run.starts[0][0], choices
    return None


def _runs(text: str, style: str, pattern: str, letters: str) -> tuple[list[_Run], str | None]:
    """Every valid run (at least 2 markers) starting at a marker of the first letter, and the
    description of the first run that skipped a letter."""
    marks = [(m.start(), m.end(), letters.index(m.group(1)))
             for m in re.finditer(pattern.format(L=f"[{letters}]"), text)]
    runs, broken = [], None
    for i, (start, end, index) in enumerate(marks):
        if index != 0:
            continue
        chain, top, skipped = [(start, end)], 0, None
        for s, e, k in marks[i + 1:]:
            if k == top + 1:
                chain.append((s, e))
                top = k
            elif k > top + 1:
                skipped = k
                break
        if skipped is not None:
            shown = ", ".join(_mark(style, letters[j]) for j in range(top + 1))
            broken = broken or (f"the choice markers {shown} are followed by "
                                f"{_mark(style, letters[skipped])}: they must run "
                                f"{_mark(style, letters[0])}, {_mark(style, letters[1])}, … "
                                f"without a gap")
        elif len(chain) >= 2:
            runs.append(_Run(style, letters, chain))
    return runs, broken


def _late_start(text: str) -> str | None:
    """Why markers that run b, c, … (no first letter) are not choices; None if there are none."""
    for style, pattern in _STYLES.items():
        for letters in _CASES:
            marks = [letters.index(m.group(1))
                     for m in re.finditer(pattern.format(L=f"[{letters}]"), text)]
            if len(marks) >= 2 and marks[0] <= 2 and \
                    marks == list(range(marks[0], marks[0] + len(marks))):   # b, c, … or c, d, …
                return (f"the choice markers start at {_mark(style, letters[marks[0]])}, not at "
                        f"{_mark(style, letters[0])}: they must run {_mark(style, letters[0])}, "
                        f"{_mark(style, letters[1])}, … from the first letter")
    return None


def _mark(style: str, letter: str) -> str:
    return style.replace("a", letter, 1)
