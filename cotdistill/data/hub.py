"""Public Hugging Face datasets by id, through `datasets.load_dataset` (no rationales).

    load_examples("tau/commonsense_qa", "validation")    # CSQA's labelled eval split
    load_examples("allenai/openbookqa", "test")           # config 'main'
    load_examples("allenai/quarel", "train", revision="main")

Splits: train, validation (alias valid, dev), test, where the dataset has labels for them.
Offline (HF_HUB_OFFLINE / HF_DATASETS_OFFLINE / TRANSFORMERS_OFFLINE set) a dataset that is not in
the local cache fails at once, before `datasets` is even imported, with a message saying how to
supply it as files.

Any other dataset id (or a local dataset folder `datasets` can read) loads with a column mapping,
read exactly as the `file` importer reads a record (same options: columns, kind, choices_sep,
label_format), plus `config` (the dataset's configuration name):

    load_examples("allenai/ai2_arc", "train", config="ARC-Easy",
                  columns={"label": "answerKey"}, label_format="letter")
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from cotdistill.data.local import QUAREL_QUESTION
from cotdistill.data.readers import Where
from cotdistill.examples import LETTERS, Example
from cotdistill.errors import DataError

SPLIT_ALIASES = {"train": "train", "validation": "validation", "valid": "validation",
                 "dev": "validation", "test": "test"}
DEFAULTS: dict[str, Any] = {"revision": None, "config": None, "columns": None, "kind": "multiple_choice",
                            "choices_sep": None, "label_format": None}
TRUE_VALUES = {"1", "ON", "YES", "TRUE"}


def _letter_key(where: Where, key: Any, n: int) -> str:
    letter = str(key or "").strip().lower()
    if letter not in LETTERS[:n] or not letter:
        raise where.error(f"label not among the choices: answerKey {key!r}", "answerKey")
    return letter


def _choice_texts(where: Where, record: dict) -> tuple[str, ...]:
    choices = record.get("choices") or {}
    texts, labels = choices.get("text"), choices.get("label")
    if not texts or labels != [c.upper() for c in LETTERS[:len(texts)]]:
        raise where.error(f"expected choices {{'label': ['A', ...], 'text': [...]}}, found "
                          f"{choices!r}", "choices")
    return tuple(texts)


def convert_commonsense_qa(where: Where, record: dict) -> Example:
    choices = _choice_texts(where, record)
    return Example(id=where.text(record, "id"), question=where.text(record, "question"),
                   choices=choices, label=_letter_key(where, record.get("answerKey"), len(choices)))


def convert_openbookqa(where: Where, record: dict) -> Example:
    choices = _choice_texts(where, record)
    return Example(id=where.text(record, "id"), question=where.text(record, "question_stem"),
                   choices=choices, label=_letter_key(where, record.get("answerKey"), len(choices)))


def convert_quarel(where: Where, record: dict) -> Example:
    match = QUAREL_QUESTION.fullmatch(where.text(record, "question"))
    if not match or not all(match.groups()):
        raise where.error("expected a question 'stem (A) option (B) option'", "question")
    stem, *choices = match.groups()
    index = record.get("answer_index")
    if index not in (0, 1) or isinstance(index, bool):
        raise where.error(f"label not among the choices: answer_index {index!r}", "answer_index")
    return Example(id=where.text(record, "id"), question=stem, choices=tuple(choices),
                   label=LETTERS[index])


@dataclass(frozen=True)
class HubSpec:
    """A supported hub dataset: its config, labelled splits and record converter."""

    config: str | None
    kind: str
    description: str
    convert: Callable[[Where, dict], Example]
    unlabeled: Mapping[str, str]  # hub split -> why it cannot be used, and what to use instead
    file_columns: str | None      # the `file` importer's columns for a JSONL export, if it can
    local_release: str            # the local release with the same items


HUB_DATASETS: dict[str, HubSpec] = {
    "tau/commonsense_qa": HubSpec(
        None, "multiple_choice", "CommonsenseQA from the Hugging Face hub (no rationales)",
        convert_commonsense_qa,
        {"test": "its test split has no labels (answerKey is empty); use split 'validation' "
                 "(1,221 items), the usual evaluation split"},
        "{label: answerKey}", "commonsenseqa-dsbs"),
    "allenai/openbookqa": HubSpec(
        "main", "multiple_choice", "OpenBookQA (main) from the Hugging Face hub (no rationales)",
        convert_openbookqa, {}, "{question: question_stem, label: answerKey}",
        "openbookqa-tinyllm"),
    "allenai/quarel": HubSpec(
        None, "multiple_choice", "QuaRel from the Hugging Face hub (no rationales)",
        convert_quarel, {}, None, "quarel-mario"),
}


def load_hub(dataset_id: str, split: str, revision: str | None = None, *, config: str | None = None,
             columns: Mapping[str, str] | None = None, kind: str = "multiple_choice",
             choices_sep: str | None = None, label_format: str | None = None) -> list[Example]:
    """The examples of one split of a hub dataset: a supported one as is, any other (or a local
    dataset folder) through the importer's column mapping."""
    if dataset_id not in HUB_DATASETS or columns is not None or config is not None:
        return load_mapped(dataset_id, split, revision=revision, config=config, columns=columns, kind=kind,
                           choices_sep=choices_sep, label_format=label_format)
    spec = _spec(dataset_id)
    hub_split = _hub_split(dataset_id, spec, split)
    if is_offline() and not is_cached(dataset_id):
        raise DataError(f"Hugging Face dataset {dataset_id!r} cannot be downloaded: offline mode "
                        f"is on (HF_HUB_OFFLINE / HF_DATASETS_OFFLINE) and no cached copy was "
                        f"found. {how_to_supply(dataset_id, spec, hub_split)}", field="name")
    rows = _download(dataset_id, spec, hub_split, revision)
    source = f"hf://datasets/{dataset_id}:{hub_split}"
    return [spec.convert(Where(source, i, f"record index {i} from 0"), dict(row))
            for i, row in enumerate(rows)]


def load_mapped(dataset_id: str, split: str, *, revision: str | None, config: str | None,
                columns: Mapping[str, str] | None, kind: str, choices_sep: str | None,
                label_format: str | None) -> list[Example]:
    """Any dataset `datasets.load_dataset` can read, each record read by the file importer's rules."""
    from cotdistill.data import importer
    importer.read_mapped(lambda required: (), columns=columns, kind=kind,  # options first
                         choices_sep=choices_sep, label_format=label_format)
    local = Path(dataset_id).expanduser().is_dir()
    if not local and is_offline() and not is_cached(dataset_id):
        raise DataError(f"Hugging Face dataset {dataset_id!r} cannot be downloaded: offline mode is on "
                        f"(HF_HUB_OFFLINE / HF_DATASETS_OFFLINE) and no cached copy was found. On a machine "
                        f"with internet run `datasets.load_dataset({dataset_id!r}, split={split!r})"
                        f".to_json('{split}.jsonl')` and load that file with name: file", field="name")
    try:
        import datasets
        rows = datasets.load_dataset(dataset_id, config, split=split, revision=revision)
    except Exception as e:  # many error types: connection, missing split, unknown config
        raise DataError(f"could not load dataset {dataset_id!r} (config {config!r}) split {split!r}: "
                        f"{type(e).__name__}: {e}", field="name") from e
    source = f"hf://datasets/{dataset_id}:{split}" if not local else f"{dataset_id}:{split}"
    records = ((Where(source, i, f"record index {i} from 0"), dict(row)) for i, row in enumerate(rows))
    return importer.read_mapped(lambda required: records, columns=columns, kind=kind,
                                choices_sep=choices_sep, label_format=label_format)


def _spec(dataset_id: str) -> HubSpec:
    if dataset_id not in HUB_DATASETS:
        raise DataError(f"unsupported Hugging Face dataset {dataset_id!r}; supported ids: "
                        f"{', '.join(HUB_DATASETS)}. Any other dataset can be imported with the "
                        f"'file' importer: export it to JSONL/CSV and load it with name: file, "
                        f"path: …, columns: {{…}}", field="name")
    return HUB_DATASETS[dataset_id]


def _hub_split(dataset_id: str, spec: HubSpec, split: str) -> str:
    hub_split = SPLIT_ALIASES.get(split)
    if hub_split is None:
        valid = [s for s in ("train", "validation", "test") if s not in spec.unlabeled]
        raise DataError(f"dataset {dataset_id!r} has no split {split!r}; valid splits: "
                        f"{', '.join(valid)}", field="split")
    if hub_split in spec.unlabeled:
        raise DataError(f"{dataset_id!r}: {spec.unlabeled[hub_split]}", field="split")
    return hub_split


def is_offline() -> bool:
    """Whether the environment forbids downloads from the hub."""
    names = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")
    return any(os.environ.get(n, "").strip().upper() in TRUE_VALUES for n in names)


def _cache_home() -> Path:
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "huggingface"


def is_cached(dataset_id: str) -> bool:
    """Whether the `datasets` or hub cache holds a copy (then offline loading may work)."""
    datasets_cache = Path(os.environ.get("HF_DATASETS_CACHE") or _cache_home() / "datasets")
    hub_cache = Path(os.environ.get("HF_HUB_CACHE") or _cache_home() / "hub")
    owner, name = dataset_id.split("/", 1)
    return ((datasets_cache / f"{owner}___{name}").is_dir()
            or (hub_cache / f"datasets--{owner}--{name}").is_dir())


def how_to_supply(dataset_id: str, spec: HubSpec, split: str) -> str:
    """How to do without the hub: export on a machine with internet, or use a cache."""
    config = f", {spec.config!r}" if spec.config else ""
    file = f"{dataset_id.split('/')[-1]}_{split}.jsonl"
    export = (f"on a machine with internet run `datasets.load_dataset({dataset_id!r}{config}, "
              f"split={split!r}).to_json({file!r})`, copy {file} here and load it with "
              f"name: file, path: {file}, columns: {spec.file_columns}")
    if spec.file_columns is None:
        export = ("its questions embed the choices as '(A) … (B) …', which the file importer "
                  "does not split")
    return (f"To supply it locally: {export}; or set HF_HOME to a cache that already holds it; "
            f"or use the local release {spec.local_release!r} (same items, with rationales).")


def _download(dataset_id: str, spec: HubSpec, split: str, revision: str | None):
    try:
        import datasets

        return datasets.load_dataset(dataset_id, spec.config, split=split, revision=revision)
    except Exception as e:  # connection errors come in many types (requests, httpx, OSError, …)
        raise DataError(f"could not load Hugging Face dataset {dataset_id!r} split {split!r}: "
                        f"{type(e).__name__}: {e}. {how_to_supply(dataset_id, spec, split)}",
                        field="name") from e
