"""Datasets: every source of examples behind one call.

    from cotdistill.data import load_examples, available
    train = load_examples("commonsenseqa-dsbs", "train")               # local release
    test = load_examples("quarel-mario", "test")
    toy = load_examples("synthetic", "train", steps=4, seed=1)          # built-in, offline
    mine = load_examples("file", "train", path="my.csv", columns={"label": "answer"})
    made = load_examples("rationale-set", "train", path="sets/cqa-smollm2")   # a rationale set
    hub = load_examples("tau/commonsense_qa", "validation")             # a '/' means the HF hub
    for info in available(): print(info.name, info.counts, info.error)

Local releases live in folders under `data_dir()` (`$COTDISTILL_DATA_DIR`, else `shared/data`
beside the checkout the package is in, else its `data/`; never relative to the working folder). Every loader validates its input completely and raises `DataError`
naming the file, row and field; nothing is returned half-loaded. A new source is one loader
function and one entry in `DATASETS`.

The package owns every source (readers, importer, hub, the built-in tasks), the data report
(report), the rationale set store (store: immutable, versioned folders) and the published releases
(releases). It may import the configuration and the bottom layer (errors, examples, paths, files,
safe_load, names); never students, training, evaluation, teachers or the run.
"""

from __future__ import annotations

import os
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from cotdistill.data import counting, hub, importer, keyfacts, keytoken, local, rationale_set, synthetic
from cotdistill.errors import DataError
from cotdistill.examples import Example
from cotdistill.paths import is_bare_name

__all__ = ["DATASETS", "DatasetInfo", "DatasetSpec", "available", "data_dir", "load_examples", "option_paths",
           "sample_rows"]


@dataclass(frozen=True)
class DatasetSpec:
    """How to load one registered dataset."""

    loader: Callable[..., list[Example]]
    splits: tuple[str, ...] | None  # None: the options decide (the `file` importer)
    kind: str | None                # None: the options decide
    description: str
    options: Mapping[str, Any] = field(default_factory=dict)  # accepted options and defaults
    folder: str | None = None       # local releases: folder under data_dir(), passed first
    path_options: tuple[str, ...] = ()  # options naming files or folders (checked by option_paths)


DATASETS: dict[str, DatasetSpec] = {
    "commonsenseqa-dsbs": DatasetSpec(
        local.load_commonsenseqa, ("train", "test"), "multiple_choice",
        "CommonsenseQA + PaLM-540B CoT rationales (Distilling Step-by-Step)",
        folder="commonsenseqa-dsbs"),
    "quarel-mario": DatasetSpec(
        local.load_quarel, ("train", "dev", "test"), "multiple_choice",
        "QuaRel + GPT-3 rationales, several per train question (MaRio)",
        {"dedupe": True, "source": "raw"}, folder="quarel-mario"),
    "openbookqa-tinyllm": DatasetSpec(
        local.load_openbookqa, ("train", "valid", "test"), "multiple_choice",
        "OpenBookQA + FLAN-T5 / LLaMA-2 rationales (TinyLLM)",
        {"teacher": "flan"}, folder="openbookqa-tinyllm"),
    "strategyqa-mario": DatasetSpec(
        local.load_strategyqa, ("train", "dev", "test"), "yes_no",
        "StrategyQA yes/no + GPT-3 rationales, several per train question (MaRio)",
        {"dedupe": True}, folder="strategyqa-mario"),
    "svamp-dsbs": DatasetSpec(
        local.load_svamp, ("train", "test"), "numeric",
        "SVAMP arithmetic word problems + PaLM-540B CoT rationales (Distilling Step-by-Step)",
        folder="svamp-dsbs"),
    "synthetic": DatasetSpec(
        synthetic.load_synthetic, synthetic.SPLITS, "multiple_choice",
        "built-in modular-arithmetic chains with step-by-step rationales (offline, seeded)",
        synthetic.DEFAULTS),
    "synthetic-count": DatasetSpec(
        counting.load_counting, counting.SPLITS, "multiple_choice",
        "built-in counting over a seeded world of object colours; the rationale recalls each fact",
        counting.DEFAULTS),
    "synthetic-key": DatasetSpec(
        keytoken.load_keytoken, keytoken.SPLITS, "yes_no",
        "built-in yes/no key-token task: one word among distractors decides the label "
        "(ground truth for attribution)",
        keytoken.DEFAULTS),
    "synthetic-keyfacts": DatasetSpec(
        keyfacts.load_keyfacts, keyfacts.SPLITS, "multiple_choice",
        "built-in key-token study task: a count over a seeded colour world; the rationale's fact words "
        "(known per example) sit among filler words",
        keyfacts.DEFAULTS),
    "file": DatasetSpec(
        importer.load_file, None, None,
        "your own JSONL/CSV/TSV file(s) with a column mapping", importer.DEFAULTS,
        path_options=importer.PATH_OPTIONS),
    "rationale-set": DatasetSpec(
        rationale_set.load_rationale_set, None, None,
        "a rationale set folder (generated by a teacher or imported; option path)",
        rationale_set.DEFAULTS, path_options=rationale_set.PATH_OPTIONS),
}


PACKAGE_ROOT = Path(__file__).resolve().parent.parent.parent  # the checkout (or site-packages)


def data_dir() -> Path:
    """Where local releases live: $COTDISTILL_DATA_DIR, else shared/data next to the checkout
    the package is in, else data/ inside it: resolved from the package's location, never from
    the working directory, so `cotdistill datasets` finds them from any folder."""
    if os.environ.get("COTDISTILL_DATA_DIR"):
        return Path(os.environ["COTDISTILL_DATA_DIR"])
    shared = PACKAGE_ROOT.parent / "shared" / "data"
    return shared if shared.is_dir() else PACKAGE_ROOT / "data"


def load_examples(name: str, split: str, *, data_dir: Path | None = None,
                  **options: Any) -> list[Example]:
    """The examples of one split of a registered dataset, or of a hub dataset id ('owner/name')."""
    if "/" in name:
        examples = hub.load_hub(name, split, **_options(name, hub.DEFAULTS, options))
    else:
        spec = _spec(name)
        if spec.splits is not None and split not in spec.splits:
            raise DataError(f"dataset {name!r} has no split {split!r}; valid splits: "
                            f"{', '.join(spec.splits)}", field="split")
        merged = _options(name, spec.options, options)
        if spec.folder is None:
            examples = spec.loader(split, **merged)
        else:
            examples = spec.loader(_folder(data_dir, spec.folder), split, **merged)
    _check_unique_ids(name, split, examples)
    return examples


def option_paths(name: Any, options: Mapping[str, Any] | None,
                 where: str = "data") -> Iterator[tuple[str, str]]:
    """(dotted key, path) of every file or folder a dataset reference reads: the values of the
    options its loader declares as paths (a string, a list of them, or {split: path}), and a hub
    id that is a local folder. A rationale set's bare name is yielded as its folder under
    sets_root(), so the caller confines what will really be read. Undeclared options yield nothing
    (the loader refuses unknown ones before reading)."""
    if isinstance(name, str) and "/" in name and not hub_id_like(name):
        yield f"{where}.name", name
    spec = DATASETS.get(name) if isinstance(name, str) else None
    for key in spec.path_options if spec else ():
        value = (options or {}).get(key)
        sub = f"{where}.options.{key}"
        if isinstance(value, (str, Path)):
            if name == "rationale-set" and is_bare_name(str(value)):
                value = rationale_set.sets_root() / str(value)
            yield sub, str(value)
        elif isinstance(value, (list, tuple)):
            yield from ((f"{sub}[{i}]", str(v)) for i, v in enumerate(value) if isinstance(v, (str, Path)))
        elif isinstance(value, Mapping):
            yield from ((f"{sub}.{k}", str(v)) for k, v in value.items() if isinstance(v, (str, Path)))
        elif value is not None:
            yield sub, repr(value)                  # not a path at all: refused as one


def hub_id_like(name: str) -> bool:
    """'owner/name': one slash between two plain names (a hub id, never a local folder)."""
    owner, _, rest = name.partition("/")
    return is_bare_name(owner) and is_bare_name(rest)


def sample_rows(rows: list, n: int | None, how: str, seed: int,
                key: Callable[[Any], Any] | None = None) -> list:
    """n rows of `rows`: the first n (`first`), or a seeded random sample of rows kept in file order
    (`random`). With `key` (a row's question, e.g. cotdistill.examples.question_id) n counts
    questions, and a drawn question brings all its rows; with one row per question that draws the
    same rows as without. The seed is data.sample_seed, never the run seed, so every arm and seed of
    a comparison gets the same rows."""
    groups = list(range(len(rows))) if key is None else \
        list(dict.fromkeys(key(row) for row in rows))
    if n is None or n >= len(groups):
        return list(rows)
    if how == "first":
        chosen = groups[:n]
    else:
        chosen = [groups[i] for i in random.Random(seed).sample(range(len(groups)), n)]
    if key is None:
        return [rows[i] for i in sorted(chosen)]
    wanted = set(chosen)
    return [row for row in rows if key(row) in wanted]


def _spec(name: str) -> DatasetSpec:
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}, or a Hugging "
                        f"Face id with a '/' ({', '.join(hub.HUB_DATASETS)})", field="name")
    return DATASETS[name]


def _options(name: str, defaults: Mapping[str, Any], options: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        accepted = ", ".join(defaults) or "none"
        raise DataError(f"unknown option {unknown[0]!r} for dataset {name!r}; accepted: "
                        f"{accepted}", field=unknown[0])
    return {**defaults, **options}


def _folder(root: Path | None, folder: str) -> Path:
    root = Path(root) if root is not None else data_dir()
    path = root / folder
    if not path.is_dir():
        raise DataError(f"dataset folder {folder!r} not found under {root}; put the release "
                        f"there or set COTDISTILL_DATA_DIR", file=str(path))
    return path


def _check_unique_ids(name: str, split: str, examples: list[Example]) -> None:
    counts = Counter(example.id for example in examples)
    repeated = [example_id for example_id, n in counts.items() if n > 1]
    if repeated:
        where = [i for i, example in enumerate(examples) if example.id == repeated[0]]
        raise DataError(f"{len(repeated)} ids repeat in split {split!r} of {name!r}, e.g. "
                        f"{repeated[0]!r} at examples {where[0]} and {where[1]} (0-based); "
                        f"ids must be unique within a split", field="id")


@dataclass
class DatasetInfo:
    """One line of `cotdistill datasets`: what a dataset holds, or why it cannot be read."""

    name: str
    kind: str | None
    description: str
    counts: dict[str, int] = field(default_factory=dict)
    rationale_counts: dict[str, int] = field(default_factory=dict)  # non-empty rationales
    error: str | None = None


def available(data_dir: Path | None = None) -> list[DatasetInfo]:
    """Every registered dataset with its split sizes; a local one that fails records its error."""
    infos = []
    for name, spec in DATASETS.items():
        info = DatasetInfo(name, spec.kind, spec.description)
        if spec.folder is not None:
            _count_local(info, spec, data_dir)
        elif name in ("synthetic", "synthetic-count", "synthetic-key", "synthetic-keyfacts"):
            sizes = {"train": spec.options["n_train"], "test": spec.options["n_test"]}
            info.counts, info.rationale_counts = dict(sizes), dict(sizes)
        infos.append(info)
    for hub_id, hub_spec in hub.HUB_DATASETS.items():
        infos.append(DatasetInfo(hub_id, hub_spec.kind, hub_spec.description))
    return infos


def _count_local(info: DatasetInfo, spec: DatasetSpec, root: Path | None) -> None:
    try:
        _folder(root, spec.folder)
    except DataError as e:
        info.error = str(e)
        return
    for split in spec.splits:
        try:
            examples = load_examples(info.name, split, data_dir=root)
        except DataError as e:
            info.error = info.error or f"split {split!r}: {e}"
            continue
        info.counts[split] = len(examples)
        info.rationale_counts[split] = sum(1 for e in examples if e.rationale)
