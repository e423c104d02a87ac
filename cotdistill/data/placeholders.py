"""Placeholder rationales: text in the rationale column that is not a rationale.

    placeholder_reason("nan")            # -> "the word 'nan'"
    placeholder_reason("  ")             # -> "empty"
    placeholder_reason("Photosynthesis.")  # -> "a single word"
    placeholder_reason("Plants make sugar from light.")   # -> None

By content, at any rate (one row is enough): empty after trimming, one of PLACEHOLDER_WORDS
(`nan`, `none`, `null`, `n/a`, `dummy`, `-`, any case), or a single word. The importer's option
`placeholders` decides what happens to them (PLACEHOLDER_MODES): `drop` (default: the row stays,
without a rationale), `keep` (the text stays, counted and warned of) or `error` (the import stops
at the first one, naming its row). Repetition is judged in cotdistill.data.report.
"""

from __future__ import annotations

PLACEHOLDER_WORDS = ("nan", "none", "null", "n/a", "dummy", "-")
PLACEHOLDER_MODES = {
    "drop": "import the row without a rationale (counted and reported)",
    "keep": "keep the text as the rationale (counted and warned of)",
    "error": "refuse the import at the first one, naming its row",
}


def placeholder_reason(text: str | None) -> str | None:
    """Why `text` is a placeholder rather than a rationale, or None if it may be one."""
    words = (text or "").split(None, 1)            # the first word, and whether more follow
    if not words:
        return "empty"
    if len(words) == 1:
        word = words[0].casefold()
        if word in PLACEHOLDER_WORDS or word.rstrip(".") in PLACEHOLDER_WORDS:
            return f"the word {words[0]!r}"
        return "a single word"
    return None
