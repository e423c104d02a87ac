"""User and data text on the screen: always as text, never as Markdown or HTML. The one place that
makes a value safe to put inside st.markdown, st.caption, st.info/warning/error/success and friends.

    st.markdown(f"**Gold label:** {code(ex['label'])}")       # an inline code span it cannot close
    st.error(f"Could not read {md(name)}: {md(e)}")            # escaped text

`md(value)` backslash-escapes every character that can open a link, an image, emphasis, code, a
heading, a table cell, strikethrough, an HTML tag, LaTeX `$…$` or a Streamlit directive (`:red[…]`
needs its brackets), and folds line breaks into spaces, so the value cannot open a new block.
`code(value)` is an inline code span fenced with more backticks than the value holds, so a backtick
in a question cannot end the span and `![x](http://…)` after it stays text. Everything a page
renders as Markdown either is a literal of the code or passes through one of these
(tests/app/test_app_safe_text.py checks the sources); multi-line data text goes through
app.components.text_block (escaped HTML) or a table.
"""

from __future__ import annotations

__all__ = ["code", "md"]

# '(' , ')' and '!' open nothing without a '[' (escaped), so they stay as they are.
MARKDOWN_SPECIAL = frozenset("\\`*_[]<>#|~$")


def md(value: object) -> str:
    """`value` as text that Markdown shows literally: its special characters escaped, line breaks as
    spaces."""
    text = " ".join(str(value).splitlines()) if value is not None else ""
    return "".join("\\" + c if c in MARKDOWN_SPECIAL else c for c in text)


def code(value: object) -> str:
    """`value` as an inline code span: fenced with one backtick more than its longest run of
    backticks (padded with a space when it starts or ends with one); '—' for an empty value."""
    text = " ".join(str(value).splitlines()) if value is not None else ""
    if not text.strip():
        return "—"
    run = best = 0
    for c in text:
        run = run + 1 if c == "`" else 0
        best = max(best, run)
    fence = "`" * (best + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"
