"""Datasets: every source of examples behind one call.

    from cotdistill.data import load_examples, available
    train = load_examples("commonsenseqa-dsbs", "train")               # local release
    test = load_examples("quarel-mario", "test")
    toy = load_examples("synthetic", "train", steps=4, seed=1)          # built-in, offline
    mine = load_examples("file", "train", path="my.csv", columns={"label": "answer"})
    hub = load_examples("tau/commonsense_qa", "validation")             # a '/' means the HF hub
    for info in available(): print(info.name, info.counts, info.error)

Local releases live in folders under `data_dir()` (`$COTDISTILL_DATA_DIR`, else `../shared/data`
if it exists, else `./data`). Every loader validates its input completely and raises `DataError`
naming the file, row and field; nothing is returned half-loaded. A new source is one loader
function and one entry in `DATASETS`.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from cotdistill.data import counting, hub, importer, local, synthetic
from cotdistill.examples import DataError, Example

__all__ = ["DATASETS", "DatasetInfo", "DatasetSpec", "available", "data_dir", "load_examples"]


@dataclass(frozen=True)
class DatasetSpec:
    """How to load one registered dataset."""

    loader: Callable[..., list[Example]]
    splits: tuple[str, ...] | None  # None: the options decide (the `file` importer)
    kind: str | None                # None: the options decide
    description: str
    options: Mapping[str, Any] = field(default_factory=dict)  # accepted options and defaults
    folder: str | None = None       # local releases: folder under data_dir(), passed first


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
    "file": DatasetSpec(
        importer.load_file, None, None,
        "your own JSONL/CSV/TSV file(s) with a column mapping", importer.DEFAULTS),
}


def data_dir() -> Path:
    """Where local releases live: $COTDISTILL_DATA_DIR, else ../shared/data if it exists,
    else ./data."""
    if os.environ.get("COTDISTILL_DATA_DIR"):
        return Path(os.environ["COTDISTILL_DATA_DIR"])
    shared = Path.cwd().parent / "shared" / "data"
    return shared if shared.is_dir() else Path("data")


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
        elif name in ("synthetic", "synthetic-count"):
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
