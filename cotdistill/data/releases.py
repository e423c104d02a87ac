"""Published teacher rationales: where each known release is downloaded from, and who wrote it.

    fetch_release("svamp-dsbs")              # into data_dir()/svamp-dsbs, sizes checked
    print(instructions("svamp-dsbs", dest))  # offline: which URL goes to which path
    release_teacher("openbookqa-tinyllm", {"teacher": "llama"})   # ('LLaMA-2 …', None)

The URLs are the repositories and commits named in each release's SOURCE.md (raw files on
GitHub). Set COTDISTILL_RELEASES_MIRROR to a base URL laid out as <repo>/<commit>/<path> to
download from a mirror instead. Offline (HF_HUB_OFFLINE, HF_DATASETS_OFFLINE,
TRANSFORMERS_OFFLINE or COTDISTILL_OFFLINE set) nothing is downloaded: the error says exactly
which file to put where. Files land in a hidden `.NAME.partial` folder first (a rerun skips the
ones already complete) and the release folder appears only when every file has its expected size.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

from cotdistill.errors import FetchError

RAW = "https://raw.githubusercontent.com"
MIRROR_ENV = "COTDISTILL_RELEASES_MIRROR"
OFFLINE_ENV = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE",
               "COTDISTILL_OFFLINE")


@dataclass(frozen=True)
class Release:
    repo: str
    commit: str
    path: str                    # the release's folder in the repository
    files: Mapping[str, int]     # file under the folder -> size in bytes (from SOURCE.md)
    teacher: str
    gold_conditioned: bool | None


def _shards(split: str, sizes: list[int]) -> dict[str, int]:
    return {f"llm/{split}_CoT_{i}.json": size for i, size in enumerate(sizes)}


def _mario(task: str, sizes: dict[str, int]) -> dict[str, int]:
    return {path.format(task=task): size for path, size in sizes.items()}


DSBS = ("maxh119Z/distilling-step-by-step1", "5b76a471c46c61f45114eab6621ffdff12d676b6")
MARIO = ("INK-USC/RationaleMultiRewardDistillation", "8f9ff58c47ef626ca8c041963338659fd4282314")
RELEASES: dict[str, Release] = {
    "commonsenseqa-dsbs": Release(*DSBS, "datasets/cqa", {
        "cqa_train.json": 3443547, "cqa_test.json": 422767,
        **_shards("train", [478929, 479710, 482479, 480766, 479459, 480749, 482082, 477210,
                            471556, 352538]),
        **_shards("test", [480252, 104190])},
        "PaLM-540B few-shot CoT (Distilling Step-by-Step release)", False),
    "svamp-dsbs": Release(*DSBS, "datasets/svamp", {
        "SVAMP.json": 339970, "svamp_train.json": 163561, "svamp_test.json": 41338,
        **_shards("train", [205881, 122946]), **_shards("test", [82516])},
        "PaLM-540B few-shot CoT (Distilling Step-by-Step release)", False),
    "openbookqa-tinyllm": Release(
        "logk6/KD_LLM", "4ee0bf672b72daf4981d19386cebe2b2da50d817", "datasets/obqa", {
            "obqa_train.json": 1050812, "obqa_valid.json": 112742, "obqa_test.json": 108095,
            **_shards("train", [330635, 328541, 321974, 314582, 330013, 316904, 315274, 313617,
                                318203, 280476]),
            **_shards("valid", [339441]), **_shards("test", [348785])},
        "FLAN-T5, told the gold answer (TinyLLM release)", True),
    "quarel-mario": Release(*MARIO, "data/quarel", {
        "raw/train.tsv": 2765615, "raw/dev.tsv": 57530, "raw/test.tsv": 114402,
        "raw/quarel_test.tsv": 114402, "raw/train.jsonl": 3207458, "raw/dev.jsonl": 72129,
        "raw/test.jsonl": 143523, "gpt3/train_gpt3_responses.jsonl": 4170856,
        "gpt3/test_gpt3_responses.jsonl": 236116,
        "flant5/test_flant5large_responses.jsonl": 211266,
        "flant5/test_flant5xl_responses.jsonl": 223610,
        "flant5/test_flant5xxl_responses.jsonl": 222016,
        "llama/llama-7b_quarel_test_output.jsonl": 471147,
        "llama/llama-65b_quarel_test_output.jsonl": 466714},
        "GPT-3 few-shot CoT (MaRio release; raw/train keeps the samples whose answer was right)",
        False),
    "strategyqa-mario": Release(*MARIO, "data/strategyqa", {
        "raw/train.tsv": 1187852, "raw/dev.tsv": 43891, "raw/test.tsv": 110409,
        "raw/train.jsonl": 1485001, "raw/dev.jsonl": 53566, "raw/test.jsonl": 134735,
        "raw/strategyqa_processed_train.json": 1590037,
        "raw/strategyqa_processed_dev.json": 179348,
        "raw/strategyqa_processed_test.json": 440820,
        "gpt3/train_gpt3_responses.jsonl": 2551790, "gpt3/test_gpt3_responses.jsonl": 133447,
        "flant5/test_flant5large_responses.jsonl": 111502,
        "flant5/test_flant5xl_responses.jsonl": 119129,
        "flant5/test_flant5xxl_responses.jsonl": 122159,
        "llama/llama-7b_strategyqa_test_output.jsonl": 386248,
        "llama/llama-65b_strategyqa_test_output.jsonl": 397899},
        "GPT-3 few-shot CoT on train (MaRio release); dev/test carry StrategyQA's human facts",
        False),
}


def release(name: str) -> Release:
    if name not in RELEASES:
        raise FetchError(f"unknown release {name!r}; known: {', '.join(RELEASES)}")
    return RELEASES[name]


def release_teacher(name: str, options: Mapping[str, Any]) -> tuple[str, bool | None]:
    """(who wrote the rationales, whether it was told the gold answer) for provenance."""
    if name == "openbookqa-tinyllm" and options.get("teacher") == "llama":
        return "LLaMA-2 (TinyLLM release; conditioning on the gold answer not stated)", None
    spec = release(name)
    return spec.teacher, spec.gold_conditioned


def urls(name: str) -> dict[str, str]:
    """File under the release folder -> the URL it is downloaded from."""
    spec = release(name)
    base = os.environ.get(MIRROR_ENV, RAW).rstrip("/")
    return {rel: f"{base}/{spec.repo}/{spec.commit}/{spec.path}/{rel}" for rel in spec.files}


def is_offline() -> bool:
    return any(os.environ.get(n, "").strip().upper() in {"1", "ON", "YES", "TRUE"}
               for n in OFFLINE_ENV)


def instructions(name: str, dest: Path) -> str:
    """Which URL to save as which file, for a machine without internet."""
    spec = release(name)
    lines = [f"On a machine with internet, download these {len(spec.files)} files of {name} "
             f"({spec.repo} at commit {spec.commit[:12]}) and put them here:"]
    for rel, url in urls(name).items():
        lines.append(f"  {url}\n    -> {Path(dest) / rel}  ({spec.files[rel]:,} bytes)")
    lines.append(f"Then `cotdistill datasets` lists {name}; or point COTDISTILL_DATA_DIR at the "
                 f"folder that holds {Path(dest).name}/.")
    return "\n".join(lines)


def fetch_release(name: str, root: Path | None = None, *, timeout: float = 60.0) -> Path:
    """Download a release into root/NAME (root: data_dir()); the folder if already complete."""
    from cotdistill.data import data_dir

    spec = release(name)
    dest = Path(root) if root is not None else data_dir()
    dest = dest / name
    if _complete(dest, spec):
        return dest
    if is_offline():
        raise FetchError(f"offline mode is on ({'/'.join(OFFLINE_ENV)}), nothing was "
                         f"downloaded. {instructions(name, dest)}")
    if dest.exists():
        raise FetchError(f"{dest} exists but does not hold every file of {name} with its "
                         f"expected size; move it away and fetch again")
    partial = dest.with_name(f".{name}.partial")
    for rel, url in urls(name).items():
        _download(url, partial / rel, spec.files[rel], timeout, name, dest)
    _write_note(partial, name)
    partial.rename(dest)
    return dest


def _complete(folder: Path, spec: Release) -> bool:
    return all((folder / rel).is_file() and (folder / rel).stat().st_size == size
               for rel, size in spec.files.items())


def _download(url: str, target: Path, size: int, timeout: float, name: str, dest: Path) -> None:
    if target.is_file() and target.stat().st_size == size:
        return                                        # finished by an earlier, interrupted fetch
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, tmp.open("wb") as f:
            while chunk := response.read(1 << 16):
                f.write(chunk)
    except (OSError, ValueError) as e:                # URLError, HTTPError, timeouts
        raise FetchError(f"could not download {url}: {e}. {instructions(name, dest)}") from None
    if tmp.stat().st_size != size:
        got = tmp.stat().st_size
        tmp.unlink()
        raise FetchError(f"{url} has {got:,} bytes, expected {size:,} (the size in SOURCE.md): "
                         f"not the published file; nothing was kept")
    tmp.replace(target)


def _write_note(folder: Path, name: str) -> None:
    spec = release(name)
    note = {"release": name, "repo": spec.repo, "commit": spec.commit, "path": spec.path,
            "files": urls(name), "fetched_at": datetime.now(timezone.utc).isoformat()}
    (folder / "FETCHED.json").write_text(json.dumps(note, indent=1) + "\n", encoding="utf-8")
