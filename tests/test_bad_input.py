"""The bad-input suite (issue 22): malformed configs, overrides, data files, mapping files, matrix
files, prompt templates, teacher answers from a local server, CLI flags, paths, names and jobs API
calls. Every case asserts three things:

- the outcome: the exit code (CLI) or the exception class (Python entry points);
- exactly one clear sentence: one line, no traceback, no repr of an internal exception, and it
  names what was wrong and where (the file, row, field, key or override);
- nothing written: no run folder, no rationale-set folder, no stray file, no database row.

Almost everything runs in process (click's CliRunner, the jobs API on a SQLite file); three cases
go through real subprocesses. The README's "Bad input" paragraph reports the size and outcome.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import ROOT

LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{n}: &{n} [{', '.join([f'*{p}'] * 9)}]\n" for p, n in zip("abcdefgh", "bcdefghi"))
"""A 1 KB alias bomb: 9 levels of 9 aliases, 387 million strings once expanded."""
INTERNAL = ("Traceback", "Error(", "<class ", " object at 0x", "KeyError", "TypeError:", "AttributeError",
            "IndexError", "RecursionError", "UnicodeDecodeError", "UnicodeEncodeError", "OverflowError")


def one_sentence(text: str, *names: str) -> str:
    """The message, after checking it is one line, names every one of `names` and shows nothing of
    the program's insides."""
    text = text.strip()
    assert text, "no message at all"
    assert "\n" not in text, f"more than one line:\n{text}"
    for internal in INTERNAL:
        assert internal not in text, f"{internal!r} in {text!r}"
    for name in names:
        assert name in text, f"{name!r} not named in {text!r}"
    return text


def click_usage_error(text: str, *names: str) -> str:
    """click's own format for a bad flag: `Usage: …`, `Try '… --help' …`, then one `Error:` line."""
    assert "Traceback" not in text
    errors = [line for line in text.strip().splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, text
    return one_sentence(errors[0], *names)


def tree(root: Path) -> dict[str, int]:
    """Every file under `root` with its size; left out: the database's own files (rows are counted
    instead) and the cache of data files' content hashes (cotdistill/fingerprint.py)."""
    return {str(p.relative_to(root)): p.stat().st_size for p in sorted(root.rglob("*"))
            if p.is_file() and ".db" not in p.name and "sqlite" not in p.name and p.name != "digests.json"}


@pytest.fixture
def place(tmp_path, monkeypatch):
    """A private state folder, runs folder and working folder; inputs go under `in/`."""
    for name in ("home", "runs", "data", "in", "work"):
        (tmp_path / name).mkdir()
    monkeypatch.setenv("COTDISTILL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COTDISTILL_ARTIFACTS", str(tmp_path / "runs"))
    monkeypatch.setenv("COTDISTILL_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("COTDISTILL_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path / "work")
    return tmp_path


def write(place: Path, name: str, content: str | bytes) -> Path:
    path = place / "in" / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


def invoke(place: Path, *args) -> tuple[int, str]:
    """Run the `cotdistill` command in process; (exit code, output), asserting nothing was written."""
    from worker.cli import cli
    before = tree(place)
    result = CliRunner().invoke(cli, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception                       # a traceback is a failure of this suite
    assert tree(place) == before, "something was written"
    return result.exit_code, result.output


# --- 1. config files: `cotdistill run CONFIG` ---------------------------------------------------

CONFIG_FILES = [
    ("utf16", "seed: 1\n".encode("utf-16"), ["c.yaml", "UTF-16"]),
    ("utf16-be", "seed: 1\n".encode("utf-16-be").join([b"\xfe\xff", b""]), ["c.yaml", "UTF-16"]),
    ("latin1", b"name: caf\xe9\n", ["c.yaml", "not UTF-8", "line 1"]),
    ("yaml-syntax", "train: {lr: 1\n", ["c.yaml", "not valid YAML", "line 2"]),
    ("bad-indent", "train:\n  lr: 1\n bad: 2\n", ["c.yaml", "not valid YAML"]),
    ("tab-indent", "train:\n\tlr: 1\n", ["c.yaml", "not valid YAML"]),
    ("duplicate-top", "seed: 1\nseed: 2\n", ["c.yaml", "'seed' is written twice", "lines 1 and 2"]),
    ("duplicate-nested", "train:\n  lr: 1\n  lr: 2\n", ["c.yaml", "'lr' is written twice"]),
    ("duplicate-flow", "eval: {mode: score, mode: auto}\n", ["c.yaml", "'mode' is written twice"]),
    ("alias-bomb", LAUGHS, ["c.yaml", "alias bomb"]),
    ("self-anchor", "data: &d {options: *d}\n", ["c.yaml", "refers to its own anchor"]),
    ("deep", "data: {options: {x: " + "[" * 100 + "]" * 100 + "}}\n", ["c.yaml", "nested deeper than 64"]),
    ("python-tag", "seed: !!python/object/apply:os.getpid []\n", ["c.yaml", "python/object/apply:os.getpid"]),
    ("set-tag", "tracking: !!set {wandb}\n", ["c.yaml", "tag:yaml.org,2002:set"]),
    ("binary-tag", "name: !!binary aGk=\n", ["c.yaml", "tag:yaml.org,2002:binary"]),
    ("local-tag", "name: !mine x\n", ["c.yaml", "!mine"]),
    ("nul-char", "name: a\x00b\n", ["c.yaml", "#x0000"]),
    ("escaped-nul", 'name: "a\\0b"\n', ["c.yaml", "name: the text holds a NUL character"]),
    ("top-list", "- seed\n", ["c.yaml", "the top level must be a mapping"]),
    ("top-scalar", "hello\n", ["c.yaml", "the top level must be a mapping"]),
    ("empty", "", ["c.yaml is empty", "--defaults"]),
    ("comment-only", "# nothing\n", ["c.yaml is empty"]),
    ("too-big", "#" * (1 << 20) + "\nseed: 1\n", ["c.yaml", "larger than 1 MiB"]),
    ("unknown-key", "trian: {lr: 1}\n", ["c.yaml", "unknown key(s) trian"]),
    ("int-key", "1: x\n", ["c.yaml", "unknown key(s) 1"]),
    ("section-not-mapping", "train: 5\n", ["c.yaml", "train must be a mapping"]),
    ("nan-lr", "train: {lr: .nan}\n", ["c.yaml", "train.lr: expected a finite number, got nan"]),
    ("negative-min-lr", "train: {min_lr_ratio: -5}\n", ["c.yaml", "train.min_lr_ratio: expected a number >= 0"]),
    ("huge-int", "seed: " + "7" * 5000 + "\n", ["c.yaml", "not valid YAML", "4300 digits"]),
    ("options-nan", "data: {options: {p: .inf}}\n", ["c.yaml", "data.options.p: expected a finite number"]),
    ("options-int-key", "data: {options: {3: x}}\n", ["c.yaml", "data.options: the key 3 is not text"]),
]


@pytest.mark.parametrize("content,names", [c[1:] for c in CONFIG_FILES], ids=[c[0] for c in CONFIG_FILES])
def test_config_files(place, content, names):
    config = write(place, "c.yaml", content)
    code, output = invoke(place, "run", config, "--out", place / "work" / "run")
    assert code == 2
    assert one_sentence(output, *names).startswith("error: ")


def test_a_config_that_is_a_folder_or_missing(place):
    code, output = invoke(place, "run", place / "in" / "nope.yaml")
    assert code == 2 and one_sentence(output, "nope.yaml not found")
    code, output = invoke(place, "run", place / "in")
    assert code == 2 and click_usage_error(output, "'CONFIG'", "is a directory")


# --- 2. KEY=VALUE overrides --------------------------------------------------------------------

OVERRIDES = [
    ("train.clip=.nan", "train.clip: expected a finite number, got nan"),
    ("train.clip=-1", "train.clip: expected a number >= 0"),
    ("train.lr=.inf", "train.lr: expected a finite number"),
    ("train.lr=-.inf", "train.lr: expected a finite number"),
    ("train.lr=0", "train.lr: expected a number > 0"),
    ("train.lr=nan", "train.lr: expected a finite number"),
    ("train.lr=abc", "train.lr: expected a number, got 'abc'"),
    ("train.lr=[1, 2]", "train.lr: expected a number"),
    ("train.weight_decay=.nan", "train.weight_decay: expected a finite number"),
    ("train.weight_decay=-0.1", "train.weight_decay: expected a number >= 0"),
    ("train.min_lr_ratio=-5", "train.min_lr_ratio: expected a number >= 0"),
    ("train.min_lr_ratio=2", "train.min_lr_ratio: expected a number <= 1"),
    ("rationale_weight=.nan", "rationale_weight: expected a finite number"),
    ("rationale_weight=-1", "rationale_weight: expected a number >= 0"),
    ("seed=-1", "seed: expected a number >= 0"),
    ("seed=4294967296", "seed: expected a number <= 4,294,967,295 (numpy's seed range)"),
    ("seed=1.5", "seed: expected an integer"),
    ("seed=true", "seed: expected an integer"),
    ("data.sample_seed=-1", "data.sample_seed: expected a number >= 0"),
    ("eval.n_boot=1000000000000", "eval.n_boot: expected a number <= 1,000,000"),
    ("eval.n_boot=0", "eval.n_boot: expected a number >= 1"),
    ("eval.max_new_tokens=10000000", "eval.max_new_tokens: expected a number <= 32,768"),
    ("eval.batch_size=0", "eval.batch_size: expected a number >= 1"),
    ("student.max_length=1000000000", "student.max_length: expected a number <= 1,048,576"),
    ("student.max_length=4", "student.max_length: expected a number >= 8"),
    ("student.vocab_size=1000000000", "student.vocab_size: expected a number <= 1,000,000"),
    ("student.vocab_size=10", "student.vocab_size: expected an integer >= 260"),
    ("train.batch_size=100000000", "train.batch_size: expected a number <= 65,536"),
    ("train.grad_accum=0", "train.grad_accum: expected a number >= 1"),
    ("train.steps=-1", "train.steps: expected a number >= 0"),
    ("train.steps=10000000000", "train.steps: expected a number <= 1,000,000,000"),
    ("train.devices=100000", "train.devices: expected a number <= 4,096"),
    ("student.lora={alpha: .inf}", "student.lora.alpha: expected a finite number"),
    ("student.lora={r: 0}", "student.lora.r must be a positive integer"),
    ("perturbation.params={p: .nan}", "perturbation.params.p: expected a finite number"),
    ("perturbation.params={length: 1000000000}", "'length' must be 'same' or an int from 0 to 1,048,576"),
    ("data.options={x: .nan}", "data.options.x: expected a finite number"),
    ("data.options=" + "[" * 80 + "]" * 80, "data.options: nested deeper than 64 levels"),
    ("data.options=" + LAUGHS.replace("\n", ", ").join("{}"), "data.options: aliases expand"),
    ("train.lr=[1", "train.lr: not valid YAML"),
    ("train.lr={a: 1", "train.lr: not valid YAML"),
    ("train.lr=!!python/name:os.system", "train.lr: the YAML tag tag:yaml.org,2002:python/name:os.system"),
    ("name=!!binary aGk=", "name: the YAML tag tag:yaml.org,2002:binary"),
    ("seed=&a [*a]", "seed: an alias refers to its own anchor"),
    ("data.options={a: 1, a: 2}", "data.options: the key 'a' is written twice"),
    ("train..lr=1", "'train..lr' is not a dotted key"),
    ("=1", "'' is not a dotted key"),
    ("seed", "is not key=value"),
    ("train.stepz=3", "unknown key(s) train.stepz"),
    ("placement=middle", "placement must be one of"),
    ("placement.x=1", "placement: expected a string"),
    ("train=5", "train must be a mapping"),
    ('name="a\\0b"', "name: the text holds a NUL character"),
    ("eval.every=-1", "eval.every: expected a number >= 0"),
]


@pytest.mark.parametrize("override,message", OVERRIDES, ids=[o[0][:40] for o in OVERRIDES])
def test_overrides_are_blamed_by_name(place, override, message):
    config = write(place, "c.yaml", "data: {name: synthetic}\ntrain: {steps: 2}\nperturbation: {kind: filler}\n")
    code, output = invoke(place, "run", config, override, "--out", place / "work" / "run")
    assert code == 2
    text = one_sentence(output, message)
    assert text.startswith("error: override " + repr(override)[:40]), text


def test_an_override_error_in_the_file_is_blamed_on_the_file_not_the_override(place):
    config = write(place, "c.yaml", "train: {clip: .nan}\n")
    code, output = invoke(place, "run", config, "seed=3", "--out", place / "work" / "run")
    assert code == 2 and one_sentence(output, "c.yaml: train.clip: expected a finite number")
    assert "error: override" not in output


# --- 3. data files: `cotdistill data import FILE` ----------------------------------------------

ROW = '{"question": "Q?", "choices": ["x", "y"], "label": "a"}\n'
DATA_FILES = [
    ("nul-question", "d.jsonl", ROW + '{"question": "Q\\u0000?", "choices": ["x", "y"], "label": "a"}\n', [],
     ["row 2", "field 'question'", "NUL character"]),
    ("nul-choice", "d.jsonl", '{"question": "Q?", "choices": ["x\\u0000", "y"], "label": "a"}\n', [],
     ["row 1", "field 'choices'", "NUL character"]),
    ("nul-rationale", "d.jsonl", '{"question": "Q?", "choices": ["x", "y"], "label": "a", "rationale": "r\\u0000"}\n',
     [], ["row 1", "field 'rationale'", "NUL character"]),
    ("nul-csv", "d.csv", 'question,choices,label\nQ\x00?,x|y,a\n', ["--choices-sep", "|"],
     ["row 1", "field 'question'", "NUL character"]),
    ("nul-id", "d.jsonl", '{"id": "a\\u0000", "question": "Q?", "choices": ["x", "y"], "label": "a"}\n',
     ["--column", "id=id"], ["row 1", "field 'id'", "NUL character"]),
    ("surrogate", "d.jsonl", '{"question": "Q\\udc00", "choices": ["x", "y"], "label": "a"}\n', [],
     ["row 1", "field 'question'", "lone surrogate"]),
    ("27-choices", "d.jsonl", json.dumps({"question": "Q?", "choices": [str(i) for i in range(27)],
                                          "label": "a"}) + "\n", [], ["row 1", "field 'choices'", "27 choices"]),
    ("dup-key-jsonl", "d.jsonl", ROW + '{"question": "Q?", "question": "R?", "choices": ["x", "y"], "label": "a"}\n',
     [], ["row 2", "'question' is written twice"]),
    ("dup-key-json", "d.json", "[" + ROW + ",\n" + '{"label": "a", "label": "b"}]', [],
     ["row 1", "element 1 from 0, on line 3", "'label' is written twice"]),
    ("dup-key-nested", "d.jsonl", '{"question": "Q?", "choices": {"text": ["x"], "text": ["y"]}, "label": "a"}\n',
     [], ["row 1", "'text' is written twice"]),
    ("deep-jsonl", "d.jsonl", '{"question": ' + "[" * 100 + "]" * 100 + "}\n", [], ["row 1", "nested 101 levels"]),
    ("deep-json", "d.json", "[" * 200_000, [], ["d.json", "nested 200,000 levels deep"]),
    ("utf16-jsonl", "d.jsonl", ROW.encode("utf-16"), [], ["d.jsonl", "UTF-16"]),
    ("utf16-csv", "d.csv", "question,choices,label\n".encode("utf-16"), [], ["d.csv", "UTF-16"]),
    ("latin1", "d.jsonl", b'{"question": "caf\xe9", "choices": ["x", "y"], "label": "a"}\n', [],
     ["row 1", "not UTF-8: byte 0xe9"]),
    ("empty", "d.jsonl", "", [], ["d.jsonl", "file is empty"]),
    ("blank", "d.jsonl", "\n\n  \n", [], ["d.jsonl", "file is empty"]),
    ("not-json", "d.jsonl", ROW + "{question: Q}\n", [], ["row 2", "is not valid JSON"]),
    ("json-array-line", "d.jsonl", "[1, 2]\n", [], ["row 1", "a JSON list, not an object"]),
    ("json-scalar", "d.json", "5", [], ["d.json", "found a JSON int"]),
    ("json-not-valid", "d.json", "[1,", [], ["d.json", "not valid JSON"]),
    ("csv-malformed", "d.csv", 'question,choices,label\n"Q?,x|y,a\n', ["--choices-sep", "|"],
     ["d.csv", "malformed table"]),
    ("csv-cells", "d.csv", "question,choices,label\nQ?,x|y\n", ["--choices-sep", "|"],
     ["row 1", "expected 3 cells"]),
    ("csv-header-only", "d.csv", "question,choices,label\n", [], ["d.csv", "header but no data rows"]),
    ("missing-column", "d.csv", "question,label\nQ?,a\n", [], ["field 'choices'", "found 'question, label'"]),
    ("missing-field", "d.jsonl", '{"question": "Q?", "choices": ["x", "y"]}\n', [], ["row 1", "field 'label'",
                                                                                    "missing field"]),
    ("choices-not-json", "d.csv", "question,choices,label\nQ?,x;y,a\n", [], ["row 1", "field 'choices'",
                                                                            "JSON list"]),
    ("one-choice", "d.jsonl", '{"question": "Q?", "choices": ["x"], "label": "a"}\n', [],
     ["row 1", "field 'choices'", "at least 2 choices"]),
    ("label-out", "d.jsonl", '{"question": "Q?", "choices": ["x", "y"], "label": "q"}\n', [],
     ["row 1", "field 'label'", "label not among the choices"]),
    ("label-nan", "d.jsonl", '{"question": "Q?", "label": NaN}\n', ["--kind", "numeric"],
     ["row 1", "field 'label'", "expected a number"]),
    ("question-number", "d.jsonl", '{"question": 5, "choices": ["x", "y"], "label": "a"}\n', [],
     ["row 1", "field 'question'", "expected text, found int"]),
    ("duplicate-id", "d.jsonl", ROW.replace("{", '{"id": 1, ') * 2, ["--column", "id=id"],
     ["row 2", "duplicate id '1'"]),
    ("unknown-extension", "d.txt", ROW, [], ["d.txt", "cannot tell the format"]),
    ("unknown-format", "d.jsonl", ROW, ["--format", "xml"], ["unknown format 'xml'"]),
    ("unknown-kind", "d.jsonl", ROW, ["--kind", "essay"], ["unknown kind 'essay'"]),
    ("unknown-column", "d.jsonl", ROW, ["--column", "answer=label"], ["unknown field 'answer'"]),
    ("holdout-range", "d.jsonl", ROW * 3, ["--holdout", "1.5"], ["--holdout must be a share between 0 and 1"]),
    ("holdout-nan", "d.jsonl", ROW * 3, ["--holdout", "nan"], ["--holdout must be a share between 0 and 1"]),
    ("option-bomb", "d.jsonl", ROW, ["--column", "question=" + LAUGHS.replace("\n", ", ").join("{}")],
     ["--column", "alias bomb"]),
    ("option-twice", "d.jsonl", ROW, ["--column", "label=a", "--column", "label=b"], ["label is given twice"]),
]


@pytest.mark.parametrize("name,content,args,names", [d[1:] for d in DATA_FILES], ids=[d[0] for d in DATA_FILES])
def test_data_files(place, name, content, args, names):
    data = write(place, name, content)
    code, output = invoke(place, "data", "import", data, *args)
    assert code == 2
    assert one_sentence(output, *names).startswith("error: ")
    assert not (place / "home" / "rationale_sets").exists()


def test_duplicate_choices_are_imported_with_a_warning_in_the_summary(place):
    from worker.cli import cli
    data = write(place, "d.jsonl", '{"id": 7, "question": "Q?", "choices": ["x", "x "], "label": "a"}\n')
    result = CliRunner().invoke(cli, ["data", "import", str(data), "--column", "id=id"])
    assert result.exit_code == 0, result.output
    assert "warning: train: 1 rows list the same choice twice (e.g. 7)" in result.output


# --- 4. mapping files: `data import FILE --mapping M` --------------------------------------------

MAPPINGS = [
    ("holdout-text", "holdout: abc\n", ["m.yaml", "holdout: expected a share between 0 and 1", "'abc'"]),
    ("holdout-list", "holdout: [0.1]\n", ["m.yaml", "holdout: expected a share"]),
    ("holdout-nan", "holdout: .nan\n", ["m.yaml", "holdout: expected a share"]),
    ("holdout-bool", "holdout: true\n", ["m.yaml", "holdout: expected a share"]),
    ("holdout-2", "holdout: 2\n", ["--holdout must be a share between 0 and 1"]),
    ("seed-text", "holdout: 0.5\nseed: abc\n", ["m.yaml", "seed: expected an integer"]),
    ("unknown-key", "colums: {label: answer}\n", ["m.yaml", "unknown key 'colums'"]),
    ("top-list", "- columns\n", ["m.yaml", "expected a mapping of options, found list"]),
    ("duplicate", "kind: yes_no\nkind: numeric\n", ["m.yaml", "'kind' is written twice"]),
    ("bomb", LAUGHS, ["m.yaml", "alias bomb"]),
    ("utf16", "kind: yes_no\n".encode("utf-16"), ["m.yaml", "UTF-16"]),
    ("yaml-syntax", "columns: {label: [\n", ["m.yaml", "not valid YAML"]),
    ("columns-list", "columns: [label]\n", ["'columns' must map our fields"]),
    ("kind", "kind: essay\n", ["unknown kind 'essay'"]),
    ("python-tag", "kind: !!python/name:os.system\n", ["m.yaml", "python/name:os.system"]),
    ("format-list", "format: [jsonl]\n", ["option 'format' must be text, found ['jsonl']"]),
    ("label-format-map", "label_format: {a: 1}\n", ["option 'label_format' must be text"]),
    ("header-text", "header: maybe\n", ["option 'header' must be true or false, found 'maybe'"]),
    ("cut-number", "rationale_cut: 5\n", ["option 'rationale_cut' must be text or a list of text"]),
    ("rationales-number", "rationales: [1]\n", ["option 'rationales' must be a file or a list of files"]),
    ("splits-list", "splits: [train]\n", ["option 'splits' must map split names to options"]),
    ("splits-scalar", "splits: {train: 5}\n", ["option 'splits' must map split names to options"]),
    ("strip-leaks-text", "strip_leaks: abc\n", ["option 'strip_leaks' must be true or false"]),
]


@pytest.mark.parametrize("content,names", [m[1:] for m in MAPPINGS], ids=[m[0] for m in MAPPINGS])
def test_mapping_files(place, content, names):
    data = write(place, "d.jsonl", ROW * 4)
    mapping = write(place, "m.yaml", content)
    code, output = invoke(place, "data", "import", data, "--mapping", mapping)
    assert code == 2
    assert one_sentence(output, *names).startswith("error: ")


# --- 5. matrix files: `cotdistill submit M --dry-run` and the jobs API ----------------------------

MATRICES = [
    ("base-list", "name: x\nbase: [1, 2]\nfactors: {seed: [0]}\n", ["m.yaml", "base must be a run config file name"]),
    ("base-int", "name: x\nbase: 5\nfactors: {seed: [0]}\n", ["m.yaml", "base must be"]),
    ("base-missing", "name: x\nbase: nope.yaml\nfactors: {seed: [0]}\n", ["m.yaml", "base config nope.yaml not found"]),
    ("base-utf16", "name: x\nbase: b16.yaml\nfactors: {seed: [0]}\n", ["b16.yaml", "UTF-16"]),
    ("base-list-file", "name: x\nbase: blist.yaml\nfactors: {seed: [0]}\n", ["blist.yaml", "must be a mapping"]),
    ("top-list", "- name\n", ["m.yaml", "a matrix is a mapping"]),
    ("no-name", "factors: {seed: [0]}\n", ["m.yaml", "needs `name` and `factors`"]),
    ("name-list", "name: [a]\nfactors: {seed: [0]}\n", ["m.yaml", "name must be text"]),
    ("factors-list", "name: x\nfactors: [seed]\n", ["m.yaml", "needs `name` and `factors`"]),
    ("factor-scalar", "name: x\nfactors: {seed: 3}\n", ["m.yaml", "factor 'seed' must be a non-empty list"]),
    ("factor-empty", "name: x\nfactors: {seed: []}\n", ["m.yaml", "factor 'seed' must be a non-empty list"]),
    ("variant-scalar", "name: x\nfactors: {variant: [1]}\n", ["m.yaml", "'variant' must be a list of mappings"]),
    ("factor-key", "name: x\nfactors: {'a..b': [1]}\n", ["m.yaml", "factor 'a..b' is not a dotted key"]),
    ("cell-nan", "name: x\nfactors: {train.clip: [1, .nan]}\n", ["cell {'train.clip': nan}", "finite number"]),
    ("cell-seed", "name: x\nfactors: {seed: [0, -1]}\n", ["cell {'seed': -1}", "seed: expected a number >= 0"]),
    ("not-section", "name: x\nbase: {placement: after}\nfactors: {placement.kind: [a]}\n", ["placement is not a section"]),
    ("duplicate", "name: x\nfactors: {seed: [0]}\nfactors: {seed: [1]}\n", ["m.yaml", "'factors' is written twice"]),
    ("bomb", "name: x\n" + LAUGHS + "factors: {seed: [0]}\n", ["m.yaml", "alias bomb"]),
    ("unknown", "name: x\nfactors: {seed: [0]}\nbsae: {}\n", ["m.yaml", "unknown key(s) bsae"]),
]


@pytest.mark.parametrize("content,names", [m[1:] for m in MATRICES], ids=[m[0] for m in MATRICES])
def test_matrix_files(place, content, names):
    write(place, "b16.yaml", "seed: 1\n".encode("utf-16"))
    write(place, "blist.yaml", "- 1\n")
    matrix = write(place, "m.yaml", content)
    code, output = invoke(place, "submit", matrix, "--dry-run")
    assert code == 1
    assert one_sentence(output, *names).startswith("Error: ")


# --- 6. prompt templates: `teacher generate --template-file T` -----------------------------------

TEMPLATES = [
    ("width", "Q: {question:>200000000}\n{choices}\nA:", ["t.txt", "{question:>200000000}", "format spec"]),
    ("repr", "Q: {question!r}\n{choices}\nA:", ["t.txt", "{question!r}", "conversion"]),
    ("nested-spec", "Q: {question}\n{choices:{gold_hint}}\nA:", ["t.txt", "{choices:{gold_hint}}", "format spec"]),
    ("attribute", "Q: {question.__class__.__init__}\n{choices}\nA:", ["t.txt", "unknown field {question.__class__"]),
    ("index", "Q: {question[0]}\n{choices}\nA:", ["t.txt", "unknown field {question[0]}"]),
    ("unknown", "Q: {question}\n{choices}\n{secret}\nA:", ["t.txt", "unknown field {secret}"]),
    ("unpaired", "Q: {question\n{choices}", ["t.txt", "not a valid format string"]),
    ("no-choices", "Q: {question}\nA:", ["t.txt", "lacks the field {choices}"]),
    ("gold-shown", "Q: {question}\n{choices}\n{gold}", ["t.txt", "rationalize is off"]),
    ("utf16", "Q: {question}\n{choices}".encode("utf-16"), ["t.txt", "UTF-16"]),
]


@pytest.mark.parametrize("content,names", [t[1:] for t in TEMPLATES], ids=[t[0] for t in TEMPLATES])
def test_prompt_templates(place, content, names):
    template = write(place, "t.txt", content)
    code, output = invoke(place, "teacher", "generate", "synthetic", "--option", "n_train=2", "--template-file",
                          template, "--base-url", "http://127.0.0.1:9/v1", "--model", "m",
                          "--out", place / "work" / "set")
    assert code == 2
    assert one_sentence(output, *names).startswith("error: ")


# --- 7. teacher answers from a local server --------------------------------------------------------

class Answers:
    """A local OpenAI-compatible server that answers every request with `payload`, at once or one
    byte every `drip` seconds."""

    def __init__(self):
        self.payload, self.drip, self.requests = b"{}", 0.0, 0
        answers = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                self.rfile.read(int(self.headers["Content-Length"]))
                answers.requests += 1
                try:
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(answers.payload)))
                    self.end_headers()
                    if not answers.drip:
                        self.wfile.write(answers.payload)
                        return
                    for byte in answers.payload:
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        time.sleep(answers.drip)
                except OSError:
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()


@pytest.fixture(scope="module")
def answers():
    server = Answers()
    yield server
    server.server.shutdown()
    server.server.server_close()


ANSWERS = [
    ("text-number", "completions", {"choices": [{"text": 42}]}, "field choices[0].text is a number, not text"),
    ("text-list", "completions", {"choices": [{"text": ["a"]}]}, "field choices[0].text is a list, not text"),
    ("text-object", "completions", {"choices": [{"text": {"a": 1}}]}, "field choices[0].text is an object"),
    ("text-bool", "completions", {"choices": [{"text": False}]}, "field choices[0].text is a boolean"),
    ("choices-object", "completions", {"choices": {"text": "x"}}, "field choices is an object, not a list"),
    ("choices-text", "completions", {"choices": "x"}, "field choices is text, not a list"),
    ("choice-text", "completions", {"choices": ["x"]}, "field choices[0] is text, not an object"),
    ("answer-list", "completions", [{"choices": []}], "the answer is a list, not an object"),
    ("answer-number", "completions", 5, "the answer is a number, not an object"),
    ("message-text", "chat", {"choices": [{"message": "x"}]}, "field choices[0].message is text"),
    ("content-list", "chat", {"choices": [{"message": {"content": [{"type": "text", "text": "x"}]}}]},
     "field choices[0].message.content is a list, not text"),
    ("content-number", "chat", {"choices": [{"message": {"content": 1.5}}]}, "choices[0].message.content is a number"),
]


@pytest.mark.parametrize("api,body,message", [a[1:] for a in ANSWERS], ids=[a[0] for a in ANSWERS])
def test_teacher_answers_of_the_wrong_type(place, answers, api, body, message):
    answers.payload, answers.drip = json.dumps(body).encode(), 0.0
    code, output = invoke(place, "teacher", "generate", "synthetic", "--option", "n_train=1", "--n", "1",
                          "--base-url", answers.url, "--model", "m", "--api", api, "--no-cache",
                          "--out", place / "work" / "set")
    assert code == 2
    one_sentence(output.splitlines()[-1], message, "1 examples failed", "rerun")


@pytest.mark.parametrize("payload,drip,message", [
    (b'{"choices": [{"text": "' + b"a" * (2 << 20) + b'"}]}', 0.0, "more than the 1,048,576-byte cap: refused"),
    (json.dumps({"choices": [{"text": "So the answer is (a)."}]}).encode(), 0.1, "within 1 s (the timeout counts "
                                                                                  "the whole request"),
    (b'{"choices": [{"text": "a", "text": "b"}]}', 0.0, "the key 'text' is written twice"),
    (b'{"choices": ' + b"[" * 80 + b"]" * 80 + b"}", 0.0, "nested 81 levels deep, more than 64"),
], ids=["50-mb-cap", "drip", "duplicate-key", "deep"])
def test_teacher_answers_too_big_too_slow_or_malformed(place, answers, payload, drip, message):
    """In process, without retries (the CLI retries a slow or unreadable answer five times)."""
    from cotdistill.examples import Example
    from cotdistill.teachers import Decoding, HttpTeacher, generate_rationales, make_prompt
    answers.payload, answers.drip = payload, drip
    example = Example(id="q1", question="Sky colour?", choices=("red", "blue"), label="b")
    before = tree(place)
    result = generate_rationales({"train": [example]}, HttpTeacher(answers.url, "m", timeout=1.0, max_retries=0),
                                 make_prompt("multiple_choice"), Decoding(max_new_tokens=8),
                                 place / "work" / "set", use_cache=False)
    assert result.set_path is None and list(result.failed) == ["train/q1"]
    one_sentence(result.failed["train/q1"], message, answers.url)
    assert tree(place) == before


# --- 8. CLI flags ----------------------------------------------------------------------------------

FLAGS = [
    ("port-high", ["up", "--port", "99999"], "'--port': 99999 is not in the range 1<=x<=65535"),
    ("port-zero", ["up", "--port", "0"], "'--port'"),
    ("port-text", ["up", "--port", "http"], "'--port': 'http' is not a valid integer"),
    ("workers-zero", ["up", "--workers", "0"], "'--workers'"),
    ("temperature", ["teacher", "generate", "synthetic", "--temperature", "-1"], "'--temperature'"),
    ("top-p-zero", ["teacher", "generate", "synthetic", "--top-p", "0"], "'--top-p'"),
    ("top-p-high", ["teacher", "generate", "synthetic", "--top-p", "1.5"], "'--top-p'"),
    ("seed-negative", ["teacher", "generate", "synthetic", "--seed", "-1"], "'--seed'"),
    ("seed-huge", ["teacher", "generate", "synthetic", "--seed", str(2**32)], "'--seed'"),
    ("concurrency", ["teacher", "generate", "synthetic", "--concurrency", "0"], "'--concurrency'"),
    ("timeout-zero", ["teacher", "generate", "synthetic", "--timeout", "0"], "'--timeout'"),
    ("max-new-tokens", ["teacher", "generate", "synthetic", "--max-new-tokens", "0"], "'--max-new-tokens'"),
    ("batch-size", ["teacher", "generate", "synthetic", "--batch-size", "0"], "'--batch-size'"),
    ("n-zero", ["teacher", "generate", "synthetic", "--n", "0"], "'--n'"),
    ("api", ["teacher", "generate", "synthetic", "--api", "soap"], "'--api'"),
    ("import-seed", ["data", "import", "x.jsonl", "--seed", "-1"], "'--seed'"),
    ("import-holdout", ["data", "import", "x.jsonl", "--holdout", "abc"], "'--holdout'"),
    ("max-rationale", ["data", "import", "x.jsonl", "--max-rationale-chars", "0"], "'--max-rationale-chars'"),
    ("mapping-missing", ["data", "import", "x.jsonl", "--mapping", "nope.yaml"], "'--mapping'"),
    ("template-missing", ["teacher", "generate", "synthetic", "--template-file", "nope.txt"], "'--template-file'"),
    ("gpu-gib", ["submit", "m.yaml", "--dry-run", "--gpu-gib", "0"], "'--gpu-gib'"),
    ("rescore-missing", ["rescore", "nope"], "'RUN_DIR'"),
    ("scoring", ["rescore", ".", "--scoring", "best"], "'--scoring'"),
]


@pytest.mark.parametrize("args,names", [f[1:] for f in FLAGS], ids=[f[0] for f in FLAGS])
def test_cli_flags(place, args, names):
    code, output = invoke(place, *args)
    assert code == 2
    click_usage_error(output, names)


def test_the_temperature_is_finite(place):
    code, output = invoke(place, "teacher", "generate", "synthetic", "--temperature", "nan", "--base-url",
                          "http://127.0.0.1:9/v1", "--model", "m", "--out", place / "work" / "set")
    assert code == 2 and one_sentence(output, "finite temperature >= 0", "temperature nan")


# --- 9. paths and names (the path policy and the name validator are h-sec's; here: one sentence) ---

def test_paths_that_do_not_exist(place):
    config = write(place, "c.yaml", "data: {name: file, options: {path: /nonexistent/d.jsonl}}\n")
    code, output = invoke(place, "run", config)
    assert code == 2 and one_sentence(output, "c.yaml", "data.options.path: file /nonexistent/d.jsonl not found")
    code, output = invoke(place, "run", write(place, "k.yaml", "perturbation: {kind: key_tokens, "
                                                               "scores_file: /nonexistent/s.jsonl}\n"))
    assert code == 2 and one_sentence(output, "perturbation.scores_file: file /nonexistent/s.jsonl not found")
    code, output = invoke(place, "data", "import", place / "in" / "none.jsonl")
    assert code == 2 and one_sentence(output, "none.jsonl", "file not found")
    code, output = invoke(place, "data", "check", "no-such-set")
    assert code == 2 and one_sentence(output, "no-such-set", "not a rationale set folder")


@pytest.mark.parametrize("row,names", [
    ('{"question": "Q\\u0000", "choices": ["x", "y"], "label": "a"}', ["row 2", "field 'question'", "NUL"]),
    ('{"question": "Q", "choices": ["x", "y"], "label": "a", "label": "b"}', ["row 2", "'label' is written twice"]),
    ('{"question": "Q", "choices": ["x", "y"], "label": "z"}', ["row 2", "field 'label'"]),
], ids=["nul", "duplicate-key", "label"])
def test_a_run_on_bad_data_fails_before_its_folder_is_made(place, row, names):
    good = '{"question": "Q", "choices": ["x", "y"], "label": "a"}'
    data = write(place, "d.jsonl", good + "\n" + row + "\n")
    config = write(place, "c.yaml", f"data: {{name: file, options: {{path: {data}}}}}\ntrain: {{steps: 1}}\n")
    code, output = invoke(place, "run", config, "--out", place / "work" / "run", "--device", "cpu")
    assert code == 2
    one_sentence(output.strip().splitlines()[-1], "d.jsonl", *names)


def test_a_run_name_too_long_for_the_file_system_is_no_traceback(place):
    config = write(place, "c.yaml", "data: {name: synthetic}\n")
    code, output = invoke(place, "run", config, "name=" + "n" * 300)
    assert code != 0 and "Traceback" not in output and output.strip()
    assert list((place / "runs").iterdir()) == []


# --- 10. jobs API calls (in process, on a SQLite file) ---------------------------------------------

@pytest.fixture(scope="module")
def jobs(tmp_path_factory):
    """The jobs API on a migrated SQLite file of its own; yields (api, counts of rows)."""
    root = tmp_path_factory.mktemp("jobs")
    url = f"sqlite:///{root / 'home' / 'app.db'}"
    (root / "home").mkdir()
    (root / "data").mkdir()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("COTDISTILL_HOME", str(root / "home"))
        mp.setenv("COTDISTILL_DATABASE_URL", url)
        mp.setenv("COTDISTILL_DATA_DIR", str(root / "data"))
        mp.setenv("COTDISTILL_ARTIFACTS", str(root / "runs"))
        mp.delenv("COTDISTILL_ALLOWED_PATHS", raising=False)
        from sqlalchemy import create_engine, text

        from worker import api
        from worker.db import upgrade
        upgrade(url)
        engine = create_engine(url)

        def counts():
            with engine.connect() as conn:
                return {t: conn.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar()
                        for t in ("experiments", "runs", "rationale_sets", "examples", "jobs")}
        yield api, counts, root
        engine.dispose()


GOOD_BASE = {"data": {"name": "synthetic"}, "train": {"steps": 2}}
MATRIX_CALLS = [
    ("base-list", {"name": "x", "base": [1], "factors": {"seed": [0]}}, "base must be an inline run config"),
    ("base-file-name", {"name": "x", "base": "base.yaml", "factors": {"seed": [0]}}, "not 'base.yaml'"),
    ("no-name", {"factors": {"seed": [0]}}, "a matrix needs `name` and `factors`"),
    ("factors-none", {"name": "x", "factors": None}, "a matrix needs `name` and `factors`"),
    ("factor-scalar", {"name": "x", "factors": {"seed": 1}}, "factor 'seed' must be a non-empty list"),
    ("cell-nan", {"name": "x", "base": GOOD_BASE, "factors": {"train.lr": [float("nan")]}},
     "train.lr: expected a finite number, got nan"),
    ("cell-inf", {"name": "x", "base": GOOD_BASE, "factors": {"rationale_weight": [float("inf")]}},
     "rationale_weight: expected a finite number"),
    ("cell-seed", {"name": "x", "base": GOOD_BASE, "factors": {"seed": [2**40]}}, "seed: expected a number <="),
    ("cell-n-boot", {"name": "x", "base": {**GOOD_BASE, "eval": {"n_boot": 10**12}}, "factors": {"seed": [0]}},
     "eval.n_boot: expected a number <= 1,000,000"),
    ("base-nul", {"name": "x", "base": {"data": {"name": "syn\x00"}}, "factors": {"seed": [0]}},
     "data.name: the text holds a NUL character"),
    ("variant", {"name": "x", "factors": {"variant": ["after"]}}, "'variant' must be a list of mappings"),
    ("name-dotdot", {"name": "../up", "base": GOOD_BASE, "factors": {"seed": [0]}},
     "experiment name '../up' may hold only letters"),
    ("name-slash", {"name": "a/b", "base": GOOD_BASE, "factors": {"seed": [0]}}, "experiment name 'a/b' may hold"),
    ("name-dots", {"name": "..", "base": GOOD_BASE, "factors": {"seed": [0]}}, "may not contain '..'"),
    ("name-hidden", {"name": ".x", "base": GOOD_BASE, "factors": {"seed": [0]}}, "must begin with a letter or digit"),
    ("name-long", {"name": "n" * 101, "base": GOOD_BASE, "factors": {"seed": [0]}},
     "experiment name has 101 characters; at most 100"),
    ("name-space", {"name": "my exp", "base": GOOD_BASE, "factors": {"seed": [0]}}, "experiment name 'my exp'"),
]


@pytest.mark.parametrize("call", ["submit_matrix", "plan_matrix", "estimate_matrix"])
@pytest.mark.parametrize("matrix,message", [m[1:] for m in MATRIX_CALLS], ids=[m[0] for m in MATRIX_CALLS])
def test_jobs_api_matrices(jobs, call, matrix, message):
    from cotdistill.errors import ConfigError
    api, counts, root = jobs
    before, files = counts(), tree(root)
    with pytest.raises(ConfigError) as e:
        getattr(api, call)(matrix)
    one_sentence(str(e.value), message)
    assert counts() == before and tree(root) == files


IMPORT_CALLS = [
    ("nul", b'{"question": "Q\\u0000", "choices": ["x", "y"], "label": "a"}\n', {}, "question", "NUL character"),
    ("27-choices", json.dumps({"question": "Q", "choices": list("abcdefghijklmnopqrstuvwxyz0"), "label": "a"})
     .encode() + b"\n", {}, "choices", "27 choices"),
    ("dup-key", b'{"question": "Q", "question": "R", "choices": ["x", "y"], "label": "a"}\n', {}, None,
     "'question' is written twice"),
    ("deep", b'{"question": ' + b"[" * 99 + b"]" * 99 + b"}\n", {}, None, "nested 100 levels deep"),
    ("kind", b'{"question": "Q", "label": "yes"}\n', {"kind": "essay"}, "kind", "unknown kind 'essay'"),
    ("option", b'{"question": "Q", "label": "yes"}\n', {"colour": "red"}, "colour", "unknown import option"),
    ("holdout", b'{"question": "Q", "choices": ["x", "y"], "label": "a"}\n', {"holdout": 2.0}, "holdout",
     "--holdout must be a share between 0 and 1"),
]


@pytest.mark.parametrize("data,options,field,message", [c[1:] for c in IMPORT_CALLS], ids=[c[0] for c in IMPORT_CALLS])
def test_jobs_api_imports(jobs, data, options, field, message):
    api, counts, root = jobs
    path = api.save_upload("upload.jsonl", data)
    before, files = counts(), tree(root)
    for result in (api.preview_import({"train": path}, options),
                   api.import_rationale_set({"train": path}, options, "bad-set")):
        error = result["error"]
        one_sentence(error["message"], message)
        assert field is None or error["field"] == field
    assert counts() == before and tree(root) == files


@pytest.mark.parametrize("text,message", [
    (LAUGHS, "alias bomb"), ("&a [*a]", "refers to its own anchor"), ("[" * 100_000, "nested deeper than 64"),
    ("a: 1\na: 2\n", "'a' is written twice"), ("x: !!python/name:os.system", "python/name:os.system"),
    ("a: [1", "not valid YAML"),
], ids=["bomb", "self-anchor", "deep", "duplicate", "python-tag", "syntax"])
def test_jobs_api_parses_yaml_from_a_page_under_the_same_limits(jobs, text, message):
    """The Launch page's loader options and the key-token study's base config (the app parses
    nothing itself)."""
    api, counts, root = jobs
    started = time.monotonic()
    with pytest.raises(ValueError) as e:
        api.parse_yaml(text)
    assert time.monotonic() - started < 30          # not a timing claim: a hang would fail here
    one_sentence(str(e.value), message)


# --- 11. a handful through real processes ---------------------------------------------------------

def _process(place: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "worker.cli", *args], cwd=place / "work", env=env,
                          capture_output=True, text=True, timeout=300)


def test_processes_an_alias_bomb_config_a_nul_import_and_a_bad_port(place):
    before = tree(place)
    bomb = write(place, "bomb.yaml", LAUGHS)
    nul = write(place, "nul.jsonl", '{"question": "Q\\u0000", "choices": ["x", "y"], "label": "a"}\n')
    before = tree(place)
    p = _process(place, "run", str(bomb))
    assert p.returncode == 2 and one_sentence(p.stderr, "bomb.yaml", "alias bomb") and not p.stdout
    p = _process(place, "data", "import", str(nul))
    assert p.returncode == 2 and one_sentence(p.stderr, "nul.jsonl", "row 1", "field 'question'")
    p = _process(place, "up", "--port", "99999")
    assert p.returncode == 2 and click_usage_error(p.stderr, "'--port'")
    assert tree(place) == before


# --- 11. the path policy, names and teacher secrets (h-sec) ------------------------------------------

def _outside(root: Path) -> Path:
    secret = root / "outside" / "secret.txt"
    secret.parent.mkdir(exist_ok=True)
    secret.write_text("top secret\n")
    return secret


PATH_CALLS = [
    ("rationales-option", "file", {"path": "{data}/q.csv", "rationales": "{secret}"},
     "data.options.rationales: the path '{secret}' is outside the folders jobs may read"),
    ("rationales-list", "file", {"path": "{data}/q.csv", "rationales": ["{data}/q.csv", "{secret}"]},
     "data.options.rationales[1]: the path '{secret}' is outside"),
    ("paths-split", "file", {"paths": {"train": "{secret}"}}, "data.options.paths.train: the path '{secret}' is outside"),
    ("dotdot", "file", {"path": "{data}/../outside/secret.txt"}, "is outside the folders jobs may read"),
    ("tilde", "file", {"path": "~/secret.txt"}, "data.options.path: the path '~/secret.txt' starts with '~'"),
    ("relative", "file", {"path": "q.csv"}, "data.options.path: the path 'q.csv' is relative"),
    ("backslash", "file", {"path": "{data}\\..\\x.csv"}, "holds a backslash"),
    ("set-tilde", "rationale-set", {"path": "~"}, "data.options.path: the path '~' starts with '~'"),
    ("set-outside", "rationale-set", {"path": "{root}/outside"}, "data.options.path: the path '{root}/outside' is outside"),
    ("symlink-out", "file", {"path": "{data}/link.csv"}, "data.options.path: the path '{data}/link.csv' is outside"),
]


@pytest.mark.parametrize("name,options,message", [c[1:] for c in PATH_CALLS], ids=[c[0] for c in PATH_CALLS])
def test_jobs_api_paths(jobs, name, options, message):
    """Browse and data report refuse before reading a byte; the refusal echoes nothing of the file."""
    from worker.guard import Refused
    api, counts, root = jobs
    secret = _outside(root)
    (root / "data" / "q.csv").write_text("question,choices,label\nq,a|b,a\n")
    if not (root / "data" / "link.csv").exists():
        (root / "data" / "link.csv").symlink_to(secret)
    fill = {"data": str(root / "data"), "secret": str(secret), "root": str(root)}
    options = json.loads(json.dumps(options).replace("{data}", fill["data"]).replace("{secret}", fill["secret"])
                         .replace("{root}", fill["root"]))
    before, files = counts(), tree(root)
    for call in (lambda: api.dataset_examples(name, "train", options=options),
                 lambda: api.dataset_report(name, ["train"], options=options)):
        with pytest.raises(Refused) as e:
            call()
        one_sentence(str(e.value), message.format(**fill))
        assert "top secret" not in str(e.value)
    assert counts() == before and tree(root) == files


TEACHER_CALLS = [
    ("default-no-keys", {"api_key_env": "WANDB_API_KEY"}, {}, "WANDB_API_KEY may not be sent to a teacher"),
    ("password", {"api_key_env": "COTDISTILL_PASSWORD"}, {"COTDISTILL_TEACHER_KEYS": "COTDISTILL_PASSWORD"},
     "the app's password, every COTDISTILL_* variable"),
    ("glob-not-a-name", {"api_key_env": "OPENAI_API_KEY"}, {"COTDISTILL_TEACHER_KEYS": "*_API_KEY"},
     "COTDISTILL_TEACHER_KEYS (now: *_API_KEY)"),
    ("dotdot-url", {"base_url": "http://vllm.lab/ok/../../other"}, {"COTDISTILL_TEACHER_URLS": "http://vllm.lab/ok"},
     "'..' segment"),
    ("userinfo-url", {"base_url": "http://vllm.lab@evil.org/ok"}, {"COTDISTILL_TEACHER_URLS": "http://vllm.lab/ok"},
     "holds credentials"),
    ("backslash-url", {"base_url": "http://vllm.lab\\@evil.org/ok"}, {}, "holds a backslash"),
    ("other-host", {"base_url": "http://evil.org/v1"}, {"COTDISTILL_TEACHER_URLS": "http://vllm.lab/ok"},
     "is not an allowed teacher URL"),
]


@pytest.mark.parametrize("teacher,env,message", [c[1:] for c in TEACHER_CALLS], ids=[c[0] for c in TEACHER_CALLS])
def test_jobs_api_teacher_secrets(jobs, monkeypatch, teacher, env, message):
    from worker.guard import Refused
    api, counts, root = jobs
    for var in ("COTDISTILL_TEACHER_KEYS", "COTDISTILL_TEACHER_URLS"):
        monkeypatch.delenv(var, raising=False)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    before, files = counts(), tree(root)
    with pytest.raises(Refused) as e:
        api.submit_generation({"name": "synthetic-count", "splits": ["test"], "n": 2},
                              {"kind": "http", "base_url": "http://vllm.lab/ok/v1", "model": "m", **teacher})
    one_sentence(str(e.value), message)
    assert counts() == before and tree(root) == files


@pytest.mark.parametrize("args,names", [
    (["run", "{config}", "name=../../up"], ["name '../../up' may hold only letters"]),
    (["run", "{config}", "name=a/b"], ["name 'a/b' may hold only letters"]),
    (["data", "import", "{data}", "--name", "../up"], ["--name '../up' may hold only letters"]),
    (["teacher", "generate", "synthetic", "--base-url", "http://127.0.0.1:9/v1", "--model", "m",
      "--api-key-env", "COTDISTILL_PASSWORD", "--out", "{out}"], ["--api-key-env", "COTDISTILL_PASSWORD may not be sent"]),
    (["teacher", "generate", "synthetic", "--base-url", "http://127.0.0.1:9/ok/../v1", "--model", "m", "--out", "{out}"],
     ["--base-url", "'..' segment"]),
], ids=["run-name-dotdot", "run-name-slash", "import-name-dotdot", "cli-app-password", "cli-dotdot-url"])
def test_cli_names_and_secrets(place, monkeypatch, args, names):
    monkeypatch.setenv("COTDISTILL_PASSWORD", "correct horse battery")
    config = write(place, "c.yaml", "data: {name: synthetic}\n")
    data = write(place, "d.jsonl", '{"question": "Q", "choices": ["x", "y"], "label": "a"}\n')
    args = [a.format(config=config, data=data, out=place / "work" / "set") for a in args]
    code, output = invoke(place, *args)
    assert code != 0 and one_sentence(output, *names)
