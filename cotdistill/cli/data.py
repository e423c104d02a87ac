"""`cotdistill datasets` and `cotdistill data fetch|import|register|check`: the datasets there are, and
rationale sets made from releases or files.

    cotdistill datasets
    cotdistill data import my.csv --column label=answer --out sets/mine
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from cotdistill.errors import ConfigError
from cotdistill.cli.common import _fail, _pairs, _set_line, science


@science.command()
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Default: $COTDISTILL_DATA_DIR or ../shared/data.")
def datasets(data_dir) -> None:
    """List the datasets that load here, with their counts."""
    from cotdistill.data import available, data_dir as default_dir

    root = Path(data_dir) if data_dir else default_dir()
    click.echo(f"data folder: {root}")
    for info in available(root):
        if info.error:
            click.echo(f"  {info.name:<22} {info.kind or 'any':<16} unavailable: {info.error}")
            continue
        counts = ", ".join(f"{split} {n:,} ({info.rationale_counts.get(split, 0):,} with rationale)"
                           for split, n in info.counts.items()) or info.description
        click.echo(f"  {info.name:<22} {info.kind or 'any':<16} {counts}")
    click.echo("  any Hugging Face dataset id (e.g. tau/commonsense_qa) loads with internet access;\n"
               "  any JSONL/CSV/TSV file loads with `data: {name: file, options: {path: …, columns: …}}`.")
    _print_catalogue()


def _print_catalogue() -> None:
    """The rationale sets of the catalogue (the app lists the same ones)."""
    from cotdistill.data.catalogue import catalogue
    from cotdistill.data.rationale_set import sets_root
    from cotdistill.errors import DataError

    try:
        entries = catalogue()
    except DataError as e:
        _fail(str(e))
    click.echo(f"rationale sets ({sets_root()} and registered folders; train on one with "
               f"`data: {{name: rationale-set, options: {{path: NAME_OR_FOLDER}}}}`):")
    if not entries:
        click.echo("  none yet: `cotdistill data import`, `cotdistill teacher generate`, or "
                   "`cotdistill data register FOLDER`")
    for e in entries:
        if e.error:
            click.echo(f"  set {e.name:<18} {'?':<16} unavailable: {e.error} ({e.path})")
            continue
        counts = ", ".join(f"{split} {n:,} ({e.with_rationale[split]:,} with rationale)"
                           if split in e.with_rationale else f"{split} {n:,}"
                           for split, n in e.splits.items())
        where = f" · {e.path}" if e.registered else ""
        click.echo(f"  set {e.name:<18} {e.kind or '?':<16} {counts}{where}")


@science.group(name="data")
def data_group() -> None:
    """Published rationale releases and rationale sets: fetch, import, check."""


@data_group.command()
@click.argument("name")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Default: $COTDISTILL_DATA_DIR or ../shared/data.")
def fetch(name, data_dir) -> None:
    """Download the published release NAME (offline: says where to put its files)."""
    from cotdistill.errors import FetchError
    from cotdistill.data.releases import fetch_release

    try:
        path = fetch_release(name, Path(data_dir) if data_dir else None)
    except FetchError as e:
        _fail(str(e))
    click.echo(f"{name}: {path}")


IMPORT_HELP = """Make a rationale set from a release folder, or from files: PATH or SPLIT=PATH ...

\b
Layouts (--format, default from the extension):
  jsonl   one object per line                      train.jsonl
  json    an array [{...}, ...], or an object keyed by row number or id {"0": {...}}
  csv/tsv with a header row, or --no-header: columns are positions  --column question=0
          --no-quoting for cells that begin with a literal "; --unescape turns \\n into newlines
\b
Fields (--column FIELD=COLUMN, repeatable; a nested path works: question.stem,
question.choices[].text, answers[0]):
  id question choices label rationale teacher_label
  teacher_correct   a true/false "was the teacher right" column (never teacher_label)
\b
Kinds (--kind): multiple_choice (default), yes_no (yes/no/true/false), numeric.
Label formats (--label-format, multiple choice): letter (A, a, (a), a), [A], '(B) text';
  default), text (the choice's text: exact, else the one choice equal up to case and spaces;
  an ambiguous or missing match is refused with the candidates), index (0-based), index1
  (1-based), sentence ('Sentence A').
Choices: a JSON list, a cell split by --choices-sep '|', or --embedded-choices inside the
  question: '(a) x (b) y', '(A) … (H) …', 'A. x B. y', 'a) x b) y', 'Answer Choices: (A) …',
  'Options:\\n- x\\n- y'. The options block is the last run of markers (after the header
  when there is one): 'P(A)' or a '(a)' earlier in the question stays in it; the markers are
  stripped from the choices; markers that skip a letter are refused with the row.
Rationales: --rationales FILE (repeatable, numbered files in order) aligned by position (JSON
  array of strings, or lines) or by id (objects {"id", "rationale"}); a list gives one row each.
  --rationale-cut "Thus, the answer is" (repeatable) keeps only the reasoning of a completion
  (rows without the marker are kept whole and counted in the report);
  --strip-leaks drops sentences that state the gold answer and an opening "Yes," / "No.".
Placeholders (--placeholders): rationales that are empty, nan, none, null, n/a, dummy, - or a
  single word are counted at any rate and dropped (drop, default: the row stays without a
  rationale), kept (keep) or refused with the row (error).
Length: a rationale longer than --max-rationale-chars (default 20,000, or
  $COTDISTILL_MAX_RATIONALE_CHARS) is refused with its file and row, before anything is written.
Questions: a question is its stem with its choices (a generic stem with other choices is
  another question). Splits: SPLIT=PATH per file; --holdout 0.1 --seed 0 holds out a seeded
  share of a train-only set's questions (all rows of one question together). A split other
  than train keeps one row per question (the others are dropped and counted);
  --keep-duplicate-test-rows keeps them, and a run's interval then resamples questions.
  One file given as train and test is refused.
\b
A mapping file (--mapping m.yaml) holds the same options, with per-split overrides:
  format: tsv
  header: false
  columns: {question: "0", label: "1"}
  embedded_choices: true
  splits: {test: {columns: {question: "1", label: "2"}}}
--save-mapping m.yaml writes the options used, for the next import.

\b
Example:
  cotdistill data import train=cqa_train.json test=cqa_test.json --column label=answerKey \\
      --embedded-choices --rationale-cut "So the answer is" --name cqa-mine
The data report (leaks, placeholders, overlap, cut misses) is printed after the import; see
`data check`. The set is listed by `cotdistill datasets` and in the app (Datasets, Launch, Key
tokens); `cotdistill data register FOLDER` adds a set folder written elsewhere.
"""


IMPORT_KEYS = ("columns", "kind", "format", "header", "quoting", "unescape", "choices_sep",
               "embedded_choices", "label_format", "rationale_cut", "rationales", "strip_leaks",
               "holdout", "seed", "teacher", "splits", "placeholders", "keep_duplicate_test_rows")


def _mapping(path: str | None) -> dict:
    """The options of a mapping YAML; one sentence naming the file and key if it is not one."""
    from cotdistill.config import read_config_file

    if path is None:
        return {}
    try:
        data = read_config_file(path, "--mapping") or {}
    except ConfigError as e:
        _fail(str(e))
    if not isinstance(data, dict):
        _fail(f"--mapping {path}: expected a mapping of options, found {type(data).__name__}")
    unknown = sorted(set(map(str, data)) - set(IMPORT_KEYS))
    if unknown:
        _fail(f"--mapping {path}: unknown key {unknown[0]!r}; keys: {', '.join(IMPORT_KEYS)}")
    if data.get("holdout") is not None:
        data["holdout"] = _number(data["holdout"], f"--mapping {path}: holdout",
                                  "a share between 0 and 1, such as 0.1")  # PyYAML reads 1e-1 as text
    if data.get("seed") is not None and (isinstance(data["seed"], bool) or not isinstance(data["seed"], int)):
        _fail(f"--mapping {path}: seed: expected an integer, found {data['seed']!r}")
    return data


def _number(value, where: str, expected: str) -> float:
    """A finite number from a YAML value (numbers written 1e-1 arrive as text); exits otherwise."""
    import math

    try:
        number = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError, OverflowError):
        number = math.nan
    if not math.isfinite(number):
        _fail(f"{where}: expected {expected}, found {value!r}")
    return number


@data_group.command(name="import", help=IMPORT_HELP)
@click.argument("sources", nargs=-1, required=True)
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Set folder (default: $COTDISTILL_HOME/rationale_sets/<name>).")
@click.option("--name", default=None, help="Set name (default: the release or the file name).")
@click.option("--release", default=None,
              help="SOURCE is a folder laid out like this release (default: the folder's name).")
@click.option("--split", "splits", multiple=True,
              help="Release: splits to import (default all). File: the split of a bare PATH.")
@click.option("--mapping", "mapping_file", type=click.Path(dir_okay=False, exists=True),
              default=None, help="A YAML of these options (flags given here win).")
@click.option("--save-mapping", type=click.Path(dir_okay=False), default=None,
              help="Write the options used to this YAML.")
@click.option("--column", "columns", multiple=True, help="FIELD=COLUMN or FIELD=a.b[].c (repeatable).")
@click.option("--kind", default=None, help="multiple_choice (default), yes_no, numeric.")
@click.option("--format", "fmt", default=None, help="jsonl, json, csv or tsv (default: extension).")
@click.option("--header/--no-header", default=None, help="Tables: first row names the columns.")
@click.option("--quoting/--no-quoting", default=None, help="Tables: --no-quoting keeps literal quotes.")
@click.option("--unescape", is_flag=True, default=None, help="Literal \\n and \\t become real ones.")
@click.option("--choices-sep", default=None, help="Split a choices cell at this text, e.g. '|'.")
@click.option("--embedded-choices", is_flag=True, default=None,
              help="Choices are written inside the question: '(a) … (b) …'.")
@click.option("--label-format", default=None, help="letter, text, index, index1, sentence.")
@click.option("--rationales", "rationale_files", multiple=True,
              help="File(s) holding the rationales, aligned by position or id.")
@click.option("--rationale-cut", "cuts", multiple=True,
              help="Cut the rationale at this marker, e.g. 'Thus, the answer is' (repeatable).")
@click.option("--strip-leaks", is_flag=True, default=None,
              help="Drop rationale sentences that state the gold answer.")
@click.option("--placeholders", type=click.Choice(["drop", "keep", "error"]), default=None,
              help="Placeholder rationales (nan, -, one word …): drop (default), keep or error.")
@click.option("--keep-duplicate-test-rows", "keep_duplicates", is_flag=True, default=None,
              help="Keep every row of a test question (default: one row per question).")
@click.option("--holdout", type=float, default=None, help="Hold out this share as a test split.")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=None, help="Seed of --holdout (default 0).")
@click.option("--option", "options", multiple=True, help="Release option KEY=VALUE.")
@click.option("--teacher", "teacher_name", default=None, help="Who wrote the rationales (a file).")
@click.option("--max-rationale-chars", "max_rationale", type=click.IntRange(min=1), default=None,
              help="Refuse rationales longer than this (default 20,000; $COTDISTILL_MAX_RATIONALE_CHARS).")
@click.option("--dry-run", is_flag=True,
              help="Files: read and check them, print the first parsed rows and the data report, write nothing.")
def import_(sources, out, name, release, splits, mapping_file, save_mapping, columns, kind, fmt,
            header, quoting, unescape, choices_sep, embedded_choices, label_format,
            rationale_files, cuts, strip_leaks, placeholders, keep_duplicates, holdout, seed,
            options, teacher_name, max_rationale, dry_run) -> None:
    from cotdistill.data.catalogue import remember
    from cotdistill.data.rationale_set import sets_root
    from cotdistill.errors import DataError
    from cotdistill.names import BadName, check_name
    from cotdistill.data.store import import_file, import_release, read_import

    folder = Path(sources[0])
    try:
        if name is not None:
            check_name(name, "--name")
        if len(sources) == 1 and folder.is_dir():
            if dry_run:
                _fail("--dry-run reads files; a release folder is checked with `cotdistill data "
                      "check` once imported")
            release = release or folder.name
            target = Path(out) if out else sets_root() / (name or release)
            path = import_release(release, folder, target, splits=splits or None, name=name,
                                  max_rationale=max_rationale, **_pairs(options, "--option"))
        else:
            files = dict(s.split("=", 1) if "=" in s else ((splits or ("train",))[0], s)
                         for s in sources)
            given = {"columns": _pairs(columns, "--column") or None, "kind": kind,
                     "format": fmt, "header": header, "quoting": quoting, "unescape": unescape,
                     "choices_sep": choices_sep, "embedded_choices": embedded_choices,
                     "label_format": label_format, "rationale_cut": list(cuts) or None,
                     "rationales": list(rationale_files) or None, "strip_leaks": strip_leaks,
                     "placeholders": placeholders, "keep_duplicate_test_rows": keep_duplicates,
                     "holdout": holdout, "seed": seed, "teacher": teacher_name}
            opts = {**_mapping(mapping_file), **{k: v for k, v in given.items() if v is not None}}
            if save_mapping:
                import yaml

                Path(save_mapping).write_text(yaml.safe_dump(opts, sort_keys=False),
                                              encoding="utf-8")
            teacher = opts.pop("teacher", None)
            if dry_run:
                examples = read_import(files, split_options=opts.pop("splits", None),
                                       holdout=opts.pop("holdout", None), seed=opts.pop("seed", 0),
                                       strip_leaks=opts.pop("strip_leaks", False),
                                       keep_duplicate_test_rows=opts.pop(
                                           "keep_duplicate_test_rows", False),
                                       max_rationale=max_rationale, **opts)
                click.echo(_report_of(examples))
                click.echo("dry run: nothing written")
                return
            target = Path(out) if out else sets_root() / (name or Path(files[next(iter(files))]).stem)
            path = import_file(files, target, name=name, teacher=teacher,
                               split_options=opts.pop("splits", None),
                               holdout=opts.pop("holdout", None), seed=opts.pop("seed", 0),
                               strip_leaks=opts.pop("strip_leaks", False),
                               keep_duplicate_test_rows=opts.pop("keep_duplicate_test_rows", False),
                               max_rationale=max_rationale, **opts)
        remember(path)
    except (DataError, BadName) as e:
        _fail(str(e))
    click.echo(_set_line(path))
    click.echo(_report_text({"rationale-set": str(path)}))


@data_group.command(name="register")
@click.argument("folder", type=click.Path(file_okay=False))
def register(folder) -> None:
    """Add an existing rationale set FOLDER (written with --out, copied from elsewhere) to the
    catalogue: `cotdistill datasets` and the app then list it. The set is verified first."""
    from cotdistill.data.catalogue import register_folder
    from cotdistill.errors import DataError

    try:
        entry = register_folder(folder)
    except DataError as e:
        _fail(str(e))
    click.echo(_set_line(Path(entry.path)))
    click.echo(f"registered: `cotdistill datasets` lists it as {entry.name!r}; the app lists it on "
               f"its next refresh")


def _report_text(source: dict) -> str:
    from cotdistill.data.store import open_rationale_set

    rs = open_rationale_set(source["rationale-set"])
    return _report_of({split: rs.examples(split) for split in rs.splits},
                      notes=(rs.provenance.get("extra") or {}).get("import") or {})


def _report_of(splits: dict, notes: dict | None = None) -> str:
    """The first parsed rows and the data report of {split: examples} (`notes`: what the import
    counted; default: from the examples)."""
    from cotdistill.data.report import data_report, format_report

    shown = [f"  {e.id}: {e.question!r} choices {list(e.choices or [])} label {e.label!r} "
             f"rationale {(e.rationale or '')[:60]!r}" for e in next(iter(splits.values()))[:2]]
    return "\n".join(["parsed, first rows:", *shown,
                      format_report(data_report(splits, notes=notes))])


@data_group.command(name="check")
@click.argument("source")
@click.option("--split", "splits", multiple=True, help="Splits to check (default: all).")
@click.option("--option", "options", multiple=True, help="Dataset option KEY=VALUE.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--tokenizer", default=None,
              help="Rationale lengths in tokens of this tokenizer (a folder or a hub id; default: words).")
def check(source, splits, options, as_json, tokenizer) -> None:
    """Data report of a rationale set (folder or name) or a registered dataset: label and length
    distributions, answer leaks, placeholders and duplicates, several rationales per question,
    train/test overlap, teacher disagreement. Exit status 1 if there are warnings."""
    from cotdistill.data import DATASETS, load_examples
    from cotdistill.data.rationale_set import resolve
    from cotdistill.data.report import data_report, format_report
    from cotdistill.errors import DataError
    from cotdistill.data.store import open_rationale_set

    notes = None
    try:
        if source in DATASETS and DATASETS[source].splits:
            opts = _pairs(options, "--option")
            parts = splits or DATASETS[source].splits
            data = {p: load_examples(source, p, **opts) for p in parts}
        else:
            rs = open_rationale_set(resolve(source))
            data = {p: rs.examples(p) for p in (splits or rs.splits)}
            notes = {p: n for p, n in ((rs.provenance.get("extra") or {}).get("import") or {}).items()
                     if p in data}
    except DataError as e:
        _fail(str(e))
    count, unit = _token_counter(tokenizer) if tokenizer else (None, "words")
    report = data_report(data, count=count, unit=unit, notes=notes)
    click.echo(json.dumps(report, indent=1) if as_json else format_report(report))
    sys.exit(1 if report["warnings"] else 0)


def _token_counter(name: str):
    """(a rationale's length in tokens of `name`, the unit's name); one sentence if it won't load."""
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(name)
    except (OSError, ValueError) as e:
        _fail(f"--tokenizer {name}: cannot load it ({str(e).splitlines()[0]}); give a local "
              f"tokenizer folder, or a hub id where the hub is reachable")
    return (lambda text: len(tok(text, add_special_tokens=False)["input_ids"])), f"tokens ({name})"
