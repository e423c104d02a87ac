"""User and data text is rendered as text on every page (app/safe.py): the helpers' exact output, and
a scan of app/'s sources for Markdown-rendering calls whose argument is not a literal or passed through
the helpers."""

import ast
from pathlib import Path

import pytest

from app.safe import code, md

APP = Path(__file__).resolve().parents[2] / "app"
# Streamlit calls that render their first argument (or `body`) as Markdown.
RENDERERS = {"markdown", "write", "caption", "info", "warning", "error", "success", "title", "header",
             "subheader", "toast"}
SAFE_CALLS = {"md", "code", "len", "int", "round", "ceil", "format_bytes", "format_duration"}
MODULES = {p.stem for p in APP.rglob("*.py")}
REVIEWED = "# text:"      # a line carrying this comment was reviewed: its values come from the code, not users


@pytest.mark.parametrize("value,expected", [
    ("plain words", "plain words"),
    ("`x` ![x](http://h/b)", "\\`x\\` !\\[x\\](http://h/b)"),
    ("a\n# b\n- c", "a \\# b - c"),
    ("<img src=x>", "\\<img src=x\\>"),
    (":red[x] $y$ it's", ":red\\[x\\] \\$y\\$ it's"),
    ("a_b*c|d~e\\f", "a\\_b\\*c\\|d\\~e\\\\f"),
    (3, "3"),
    (None, ""),
])
def test_md_escapes_every_markdown_character(value, expected):
    assert md(value) == expected


@pytest.mark.parametrize("value,expected", [
    ("gravity", "`gravity`"),
    ("a`b", "``a`b``"),
    ("x ``` y", "````x ``` y````"),
    ("`![x](http://h/b)", "`` `![x](http://h/b) ``"),
    ("two\nlines", "`two lines`"),
    ("", "—"),
    (None, "—"),
])
def test_code_makes_a_span_its_value_cannot_close(value, expected):
    assert code(value) == expected


def _safe(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, ast.JoinedStr):
        return all(isinstance(v, ast.Constant) or v.format_spec is not None or _safe(v.value) for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _safe(node.left) and _safe(node.right)
    if isinstance(node, ast.IfExp):
        return _safe(node.body) and _safe(node.orelse)
    if isinstance(node, ast.Call):
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        if name == "join" and isinstance(func, ast.Attribute) and isinstance(func.value, ast.Constant):
            arg = node.args[0] if node.args else None
            if isinstance(arg, (ast.GeneratorExp, ast.ListComp)):
                return _safe(arg.elt)
            return isinstance(arg, (ast.List, ast.Tuple)) and all(_safe(e) for e in arg.elts)
        return name in SAFE_CALLS
    return False


def unsafe_calls() -> list[str]:
    found = []
    for path in sorted(APP.rglob("*.py")):
        if path.name == "safe.py":
            continue
        source = path.read_text(encoding="utf-8")
        lines = source.splitlines()
        for node in ast.walk(ast.parse(source)):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in RENDERERS):
                continue
            owner = node.func.value
            if not (isinstance(owner, ast.Name) and owner.id not in MODULES or isinstance(owner, ast.Subscript)):
                continue                               # st.x, cols[0].x, left.x; not the app's own modules
            args = list(node.args[:1]) + [k.value for k in node.keywords if k.arg in ("body", "help")]
            if all(_safe(a) for a in args):
                continue
            if any(REVIEWED in line for line in lines[node.lineno - 1:node.end_lineno]):
                continue
            found.append(f"{path.relative_to(APP.parent)}:{node.lineno}: {ast.unparse(node)[:120]}")
    return found


def test_every_markdown_call_renders_only_literals_or_escaped_values():
    """A value that may come from a user or a data file goes through app.safe (md or code); a value
    the code itself makes (a number, a status, a sentence of its own) is marked `# text: why`."""
    found = unsafe_calls()
    assert not found, f"{len(found)} Markdown call(s) with unescaped values:\n" + "\n".join(found)
