"""The `Example` type shared by every loader, and the error bad input raises.

An example's `label` is written in the label space of its `kind`:

- ``multiple_choice``: a lowercase letter ``"a"``, ``"b"``, … indexing `choices`;
- ``yes_no``: ``"yes"`` or ``"no"`` (`choices` is ``("yes", "no")``);
- ``numeric``: a number written as text (``"42"``, ``"3.5"``); `choices` is None.

`teacher_label` uses the same space; it is None when the teacher's answer is unknown.

A question's identity is its stem together with its choices (`question_id`): rows that carry the
same question with several rationales share it, and a generic stem ("Which sentence does not make
sense?") with different choices is a different question.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from cotdistill.errors import DataError

KINDS = ("multiple_choice", "yes_no", "numeric")
LETTERS = "abcdefghijklmnopqrstuvwxyz"
YES_NO = ("yes", "no")
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
"""Characters no text of a set may hold: NUL (PostgreSQL refuses it in text) and lone surrogates
(they cannot be written as UTF-8). Only JSON escapes (\\u0000, \\ud800) or a teacher produce them."""


def unstorable(text: str) -> str | None:
    """What in `text` cannot be stored ('a NUL character (\\x00) at character 5'), or None."""
    found = UNSTORABLE.search(text)
    if found is None:
        return None
    what = "a NUL character (\\x00)" if found.group() == "\x00" else \
        f"a lone surrogate (\\u{ord(found.group()):04x})"
    return f"{what} at character {found.start() + 1}"


@dataclass(frozen=True)
class Example:
    """One item: a question, its choices (or none), the gold label and the teacher's rationale."""

    id: str
    question: str
    label: str
    choices: tuple[str, ...] | None = None
    rationale: str | None = None
    teacher_label: str | None = None
    kind: str = "multiple_choice"
    meta: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise DataError(f"unknown kind {self.kind!r}; expected one of {KINDS}", field="kind")
        if self.choices is not None and not isinstance(self.choices, tuple):
            object.__setattr__(self, "choices", tuple(self.choices))
        problem = label_problem(self.kind, self.label, self.choices)
        if problem:
            raise DataError(f"example {self.id!r}: {problem}", field="label")

    @property
    def label_options(self) -> tuple[str, ...] | None:
        """Every label this example could take (the candidates that `score` evaluation ranks)."""
        if self.kind == "multiple_choice":
            return tuple(LETTERS[: len(self.choices)])
        if self.kind == "yes_no":
            return YES_NO
        return None

    @property
    def teacher_correct(self) -> bool | None:
        if self.teacher_label is None:  # a file's own "was the teacher right" flag, if any
            return self.meta.get("teacher_correct")
        return labels_equal(self.kind, self.teacher_label, self.label)


_PUNCTUATION = re.compile(r"[^\w\s]")


def normalize_text(text: str) -> str:
    """Text compared loosely: lowercase, punctuation dropped, whitespace collapsed."""
    return " ".join(_PUNCTUATION.sub(" ", text.casefold()).split())


def question_id(example: Example) -> str:
    """The identity of the example's question: `meta["question_id"]` when its loader set one, else
    question_identity() of its stem and choices."""
    given = example.meta.get("question_id")
    return str(given) if given is not None else question_identity(example.question, example.choices)


def question_identity(question: str, choices: tuple[str, ...] | None) -> str:
    """The normalized stem and choices, joined: the same question with another rationale, or
    written with other case and punctuation, gets the same identity (an in-process key, not
    stored anywhere)."""
    return normalize_text(question) + "\x1f" + _normalized_choices(tuple(choices or ()))


@functools.lru_cache(maxsize=4096)
def _normalized_choices(choices: tuple[str, ...]) -> str:
    """The choices normalized and joined (cached: many rows share the same choices)."""
    return "\x1f".join(normalize_text(c) for c in choices)


def label_problem(kind: str, label: str, choices) -> str | None:
    """Why `label` is not a valid label of this kind with these choices, or None if it is."""
    if not isinstance(label, str) or not label.strip():
        return "label is empty"
    if kind == "multiple_choice":
        if not choices:
            return "a multiple-choice example needs choices"
        if len(choices) > len(LETTERS):
            return f"too many choices ({len(choices)})"
        if any(not isinstance(c, str) or not c.strip() for c in choices):
            return "a choice is empty"
        if label not in LETTERS[: len(choices)]:
            return (f"label {label!r} is not among the choices "
                    f"(expected one of {', '.join(LETTERS[:len(choices)])})")
    elif kind == "yes_no":
        if label not in YES_NO:
            return f"label {label!r} is not 'yes' or 'no'"
    elif kind == "numeric":
        if parse_number(label) is None:
            return f"label {label!r} is not a number"
    return None


def parse_number(text: str) -> float | None:
    """The number written in `text` (commas allowed), or None."""
    try:
        value = float(text.replace(",", "").strip())
    except (ValueError, AttributeError):
        return None
    return value if math.isfinite(value) else None


def format_number(value: float) -> str:
    """Canonical text of a numeric label: integers without a decimal point, others rounded."""
    if abs(value - round(value)) < 1e-9:
        return str(int(round(value)))
    return f"{value:.6g}"


def labels_equal(kind: str, a: str | None, b: str | None) -> bool:
    """Whether two labels of this kind name the same answer (numbers compared by value)."""
    if a is None or b is None:
        return False
    if kind == "numeric":
        x, y = parse_number(a), parse_number(b)
        return x is not None and y is not None and abs(x - y) <= 1e-4 * max(1.0, abs(y))
    return a.strip().lower() == b.strip().lower()
