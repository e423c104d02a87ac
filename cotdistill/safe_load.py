"""Bounded YAML and JSON readers: whatever a user or a server supplies (configs, overrides,
loader options, mapping and matrix files, data files, teacher answers, YAML typed into the app) is
parsed here, never by a bare `yaml.safe_load` or `json.loads`. Files this program wrote itself
(summaries, caches, checkpoint manifests) are read directly.

    data = load_yaml(text)                     # ParseError (a ValueError) if it breaks a limit
    value = load_yaml_value("[1, 2]")          # one KEY=VALUE value: the same rules
    record = load_json(line, max_depth=64)     # JSON: size, depth and duplicate keys checked

What is refused, each with one sentence (callers add the file, row, key or override):
- text larger than `max_bytes` (YAML default 1 MiB: configs, matrices, options, mappings);
- YAML aliases that expand to more than `max_nodes` values (a 1 KB "billion laughs" holds a
  billion), an alias that refers to its own anchor (a structure containing itself), and
  nesting deeper than `max_depth`, aliases followed;
- JSON nested deeper than `max_depth` (checked on the text before parsing, so 200,000 `[` never
  reach the recursive parser);
- a key written twice in one mapping or object (the last one would silently win);
- YAML tags that build anything but null, booleans, numbers, text, lists and mappings (`!!set`,
  `!!binary`, `!!python/...`); a YAML timestamp stays the text it was written as;
- numbers with more digits than Python converts (4,300).

This module imports nothing else of the project (it sits at the bottom, beside the error types).
"""

from __future__ import annotations

import json
from itertools import accumulate
from typing import Any

import yaml

YAML_MAX_BYTES = 1 << 20
"""Configs, matrix files, loader options and mapping files are a few KB."""
YAML_MAX_NODES = 100_000
"""Values after expanding aliases: a large matrix file holds a few thousand."""
MAX_DEPTH = 64
"""Nesting levels of lists and mappings (a scalar adds none); configs use 3, data records rarely
more than 6."""


class ParseError(ValueError):
    """Text that is not valid, or breaks a limit; `line` (from 1) where it is known."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(message)
        self.line = line


# --- YAML ----------------------------------------------------------------------------------

_MERGE = "tag:yaml.org,2002:merge"


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader with a nesting limit while composing, an expansion check between
    composing and constructing, duplicate keys refused and the exotic types removed."""

    max_depth = MAX_DEPTH
    max_nodes = YAML_MAX_NODES

    def __init__(self, stream):
        super().__init__(stream)
        self._depth = 0

    def fetch_flow_collection_start(self, TokenClass):
        # Refused while scanning: PyYAML's scanner keeps one possible key per open bracket and
        # walks them all at every token, so 200,000 `[` would cost seconds before composing.
        if self.flow_level >= self.max_depth:
            raise ParseError(f"nested deeper than {self.max_depth} levels", self.line + 1)
        super().fetch_flow_collection_start(TokenClass)

    def compose_node(self, parent, index):
        nests = self.check_event(yaml.SequenceStartEvent, yaml.MappingStartEvent)
        self._depth += nests
        try:
            if self._depth > self.max_depth:
                mark = self.peek_event().start_mark
                raise ParseError(f"nested deeper than {self.max_depth} levels", mark.line + 1)
            return super().compose_node(parent, index)
        finally:
            self._depth -= nests

    def get_single_data(self):
        node = self.get_single_node()
        if node is None:
            return None
        _check_expansion(node, self.max_nodes, self.max_depth)
        return self.construct_document(node)

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):          # before merge keys (<<) are flattened
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == _MERGE:
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    hash(key)
                except TypeError:
                    continue                      # PyYAML's own "unhashable key" error follows
                line = key_node.start_mark.line + 1
                if key in seen:
                    raise ParseError(f"the key {key!r} is written twice in one mapping (lines "
                                     f"{seen[key]} and {line}); keep one", line)
                seen[key] = line
        return super().construct_mapping(node, deep=deep)


def _refuse_tag(loader, node):
    raise ParseError(f"the YAML tag {node.tag} is not allowed here; write plain values, lists and "
                     f"mappings", node.start_mark.line + 1)


def _timestamp_as_text(loader, node):
    return loader.construct_scalar(node)


for _tag in ("set", "binary", "omap", "pairs"):
    _Loader.add_constructor(f"tag:yaml.org,2002:{_tag}", _refuse_tag)
_Loader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp_as_text)
_Loader.add_constructor(None, _refuse_tag)


def _children(node) -> list:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _check_expansion(root, max_nodes: int, max_depth: int) -> None:
    """Refuse a node graph that contains itself or expands (aliases followed) past the limits;
    iterative, with sizes memoized per node, so a billion laughs costs a few hundred steps."""
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    entered: set[int] = set()
    stack = [(root, False)]
    while stack:
        node, leaving = stack.pop()
        key = id(node)
        if leaving:
            kids = _children(node)
            size[key] = 1 + sum(size[id(k)] for k in kids)
            depth[key] = 0 if isinstance(node, yaml.ScalarNode) else \
                1 + max((depth[id(k)] for k in kids), default=0)
            entered.discard(key)
            line = node.start_mark.line + 1
            if size[key] > max_nodes:
                raise ParseError(f"aliases expand to more than {max_nodes:,} values (an alias "
                                 f"bomb?); write the values out or use fewer aliases", line)
            if depth[key] > max_depth:
                raise ParseError(f"aliases nest deeper than {max_depth} levels", line)
            continue
        if key in size:
            continue
        entered.add(key)
        stack.append((node, True))
        for kid in _children(node):
            if id(kid) in entered:
                raise ParseError("an alias refers to its own anchor (a structure that contains "
                                 "itself)", kid.start_mark.line + 1)
            stack.append((kid, False))


def load_yaml(text: str, *, max_bytes: int = YAML_MAX_BYTES, max_nodes: int = YAML_MAX_NODES,
              max_depth: int = MAX_DEPTH) -> Any:
    """The value of one YAML document; ParseError (with `line`) if it is not valid or breaks a
    limit."""
    if not isinstance(text, str):
        raise ParseError(f"expected text, got {type(text).__name__}")
    if len(text.encode("utf-8", "surrogatepass")) > max_bytes:
        raise ParseError(f"larger than {_size(max_bytes)}")
    loader = None
    try:
        loader = _Loader(text)                  # the reader refuses control characters here
        loader.max_nodes, loader.max_depth = max_nodes, max_depth
        return loader.get_single_data()
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        problem = e.problem or e.context or "not valid YAML"
        raise ParseError(f"not valid YAML: {problem}" + (f" (line {mark.line + 1}, column "
                         f"{mark.column + 1})" if mark else ""),
                         mark.line + 1 if mark else None) from None
    except yaml.YAMLError as e:
        raise ParseError(f"not valid YAML: {_one_line(e)}") from None
    except RecursionError:
        raise ParseError(f"nested deeper than {max_depth} levels") from None
    except ParseError:
        raise
    except ValueError as e:                     # e.g. an integer of more than 4,300 digits
        raise ParseError(f"not valid YAML: {_one_line(e)}") from None
    finally:
        if loader is not None:
            loader.dispose()


def load_yaml_value(text: str, *, max_bytes: int = 64 << 10) -> Any:
    """One KEY=VALUE value, parsed as YAML under the same limits (None for blank text)."""
    return load_yaml(text, max_bytes=max_bytes) if text.strip() else None


# --- JSON ----------------------------------------------------------------------------------

_KEEP_ONLY_BRACKETS_AND_QUOTES = bytes(c for c in range(256) if c not in b'[]{}"')
_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


def json_depth(text: str | bytes) -> int:
    """The deepest nesting of arrays and objects in JSON text, brackets inside strings skipped;
    no recursion and no per-character Python loop (escaped backslashes and quotes are dropped,
    then everything but brackets and quotes, then every second quote-delimited piece)."""
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else bytes(text)
    kept = data.replace(b"\\\\", b"").replace(b'\\"', b"").translate(None, _KEEP_ONLY_BRACKETS_AND_QUOTES)
    brackets = b"".join(kept.split(b'"')[0::2])
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


def _pairs(pairs: list[tuple[str, Any]]) -> dict:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ParseError(f"the key {key!r} is written twice in one object; keep one")
            seen.add(key)
    return out


def load_json(text: str | bytes, *, max_bytes: int | None = None, max_depth: int = MAX_DEPTH) -> Any:
    """The JSON value of `text`; ParseError (with `line`) if it is not valid JSON, larger than
    `max_bytes`, nested deeper than `max_depth` or holds a key twice in one object."""
    if isinstance(text, (bytes, bytearray)):
        if max_bytes is not None and len(text) > max_bytes:
            raise ParseError(f"larger than {_size(max_bytes)}")
        try:
            text = bytes(text).decode("utf-8-sig")
        except UnicodeDecodeError as e:
            raise ParseError(f"not UTF-8 (byte 0x{text[e.start]:02x} at offset {e.start})") from None
    elif max_bytes is not None and len(text) > max_bytes // 4 and \
            len(text.encode("utf-8", "surrogatepass")) > max_bytes:
        raise ParseError(f"larger than {_size(max_bytes)}")
    if ("[" in text or "{" in text) and (deepest := json_depth(text)) > max_depth:
        raise ParseError(f"nested {deepest:,} levels deep, more than {max_depth}")
    try:
        return json.loads(text, object_pairs_hook=_pairs)
    except json.JSONDecodeError as e:
        raise ParseError(f"not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})",
                         e.lineno) from None
    except RecursionError:
        raise ParseError(f"nested deeper than {max_depth} levels") from None
    except ParseError:
        raise
    except ValueError as e:                     # more than 4,300 digits in one number
        raise ParseError(f"not valid JSON: {_one_line(e)}") from None


# --- files ---------------------------------------------------------------------------------

def decode_text(data: bytes) -> str:
    """UTF-8 text (a BOM allowed); ParseError naming the line of the first bad byte, or saying
    the file looks like UTF-16 (what some Windows editors save)."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise ParseError("the file is UTF-16, not UTF-8; re-save it as UTF-8")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise ParseError(f"not UTF-8: byte 0x{data[e.start]:02x} on line {line}; re-save the file "
                         f"as UTF-8", line) from None


def read_text(path, *, max_bytes: int = YAML_MAX_BYTES) -> str:
    """A small text file (config, matrix, mapping) as UTF-8 text; ParseError if it is larger
    than `max_bytes` (checked before reading) or not UTF-8. OSError if it cannot be read."""
    with open(path, "rb") as f:
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ParseError(f"larger than {_size(max_bytes)}")
    return decode_text(data)


# --- helpers -------------------------------------------------------------------------------

def _size(n: int) -> str:
    for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= factor:
            return f"{n / factor:g} {unit}"
    return f"{n} bytes"


def _one_line(e: Exception) -> str:
    return " ".join(str(e).split())
