"""Label formats: how a file writes the gold (or teacher) answer, read into our label space.

    to_letter("(B)", "letter", choices)      # 'b'; also 'B', 'b)', 'b.'
    to_letter("Sentence B", "sentence", choices)   # 'b' (ComVE / Sen-Making style)
    to_letter(2, "index1", choices)          # 'b' (1-based); 'index' is 0-based
    to_letter("blue", "text", choices)       # the choice's text: exact, else the one equal
                                             # up to case and spaces; text_matches() says which
    to_yes_no("True")                        # 'yes'; yes/no/true/false/1/0 in any case

Every function returns None when the value does not fit its format; the importer turns that
into an error naming the row.
"""

from __future__ import annotations

import re
from typing import Any, Sequence

from cotdistill.examples import LETTERS

LABEL_FORMATS = {
    "letter": "a letter in any case or bracket: A, a, (a), a), [A], A.",
    "text": "the answer's text, one of the choices (exact, else the one choice equal up to case "
            "and spaces)",
    "index": "a 0-based index into the choices: 0, 1, …",
    "index1": "a 1-based index into the choices: 1, 2, …",
    "sentence": "a name like 'Sentence A' / 'Option 2' / 'Choice b'",
}
YES_NO_WORDS = {"yes": "yes", "no": "no", "true": "yes", "false": "no", "1": "yes", "0": "no"}
_LETTER = re.compile(r"[\(\[]?\s*([A-Za-z])\s*[\)\]\.:]?")
_NAMED = re.compile(r"(?:sentence|option|choice|answer)\s*[\(\[]?([A-Za-z]|\d+)[\)\]]?",
                    re.IGNORECASE)


def to_letter(value: Any, label_format: str, choices: Sequence[str]) -> str | None:
    """The label as our letter 'a', 'b', …, or None if `value` names no choice."""
    n = len(choices)
    if isinstance(value, bool):
        return None
    text = str(value).strip()
    if label_format in ("index", "index1"):
        if not re.fullmatch(r"\d+", text):
            return None
        index = int(text) - (1 if label_format == "index1" else 0)
        return LETTERS[index] if 0 <= index < n else None
    if label_format == "text":
        matches = text_matches(text, choices)
        if len(matches) == 1:
            return LETTERS[matches[0]]
        return None if matches else _marked_text(text, choices)
    if label_format == "sentence":
        match = _NAMED.fullmatch(text)
        if match is None:
            return None
        text = match.group(1)
        if text.isdigit():
            index = int(text) - 1
            return LETTERS[index] if 0 <= index < n else None
    match = _LETTER.fullmatch(text)
    letter = match.group(1).lower() if match else _marked_text(text, choices)
    return letter if letter is not None and letter in LETTERS[:n] else None


def text_matches(text: str, choices: Sequence[str]) -> list[int]:
    """The indexes of the choices a text label names: the exact match if there is one, else every
    choice equal to it up to case and spaces (one: a match; several: ambiguous; none: missing)."""
    text = str(text).strip()
    exact = [i for i, c in enumerate(choices) if c == text]
    if exact:
        return exact[:1]
    key = _loose(text)
    return [i for i, c in enumerate(choices) if _loose(c) == key]


def _loose(text: str) -> str:
    return "".join(text.casefold().split())


def _marked_text(text: str, choices: Sequence[str]) -> str | None:
    """The letter of a label written as marker and text, '(B) fridge', when the text is that
    choice's (through the same markers the question's options use)."""
    match = re.fullmatch(r"[\(\[]?\s*([A-Za-z])\s*[\)\]\.:]\s*(.+)", text, re.DOTALL)
    if match is None:
        return None
    letter = match.group(1).lower()
    index = LETTERS.find(letter)
    if not 0 <= index < len(choices) or _loose(choices[index]) != _loose(match.group(2)):
        return None
    return letter


def to_yes_no(value: Any) -> str | None:
    """'yes' or 'no' from yes/no/true/false/1/0 (any case, or JSON booleans), else None."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return YES_NO_WORDS.get(str(value).strip().lower())


def to_bool(value: Any) -> bool | None:
    """A teacher-correctness flag: JSON booleans, true/false, yes/no, 1/0; None if empty."""
    if isinstance(value, bool):
        return value
    word = YES_NO_WORDS.get(str(value).strip().lower())
    return None if word is None else word == "yes"


def looks_boolean(value: Any) -> bool:
    """Whether a value reads as a true/false flag rather than an answer."""
    return isinstance(value, bool) or str(value).strip().lower() in ("true", "false")
