"""From the Launch form's choices to an experiment matrix ({name, base, factors}), as plain data.

    matrix = build_matrix("cqa-shuffle", datasets=["synthetic-count"], students=[{"name": "tiny"}],
                          placements=["none", "after"], perturbations=[{"kind": "none"}],
                          seeds=[0, 1, 2], data={"n_train": 500}, train={"steps": 200})

Every choice the form allows several of becomes a factor (the cartesian product is taken by
worker.experiments.expand); everything else goes into the base config.
"""

from __future__ import annotations

import itertools
from typing import Callable

KEEP_KINDS = ("truncate", "random_subset", "key_tokens")


def parse_list(text: str, convert: Callable[[str], object], what: str) -> list:
    """'0.3, 0.5' → [0.3, 0.5]; a ValueError names the field and the bad item."""
    items = [t.strip() for t in str(text).replace(";", ",").split(",") if t.strip()]
    if not items:
        raise ValueError(f"{what}: give at least one value")
    out = []
    for item in items:
        try:
            out.append(convert(item))
        except ValueError:
            raise ValueError(f"{what}: {item!r} is not a valid value") from None
    return out


def int_or_same(text: str) -> int | str:
    return "same" if text == "same" else int(text)


def perturbation_variants(kind: str, *, level: str = "token", values: dict[str, list] | None = None,
                          fixed: dict | None = None, scores_file: str | None = None) -> list[dict]:
    """One perturbation entry per combination of the swept parameter `values` (e.g. {"p": [0.3, 0.5]}),
    each with the `fixed` parameters (e.g. {"mode": "drop"})."""
    values = values or {}
    keys = list(values)
    variants = []
    for combo in itertools.product(*(values[k] for k in keys)) if keys else [()]:
        entry = {"kind": kind, "level": level, "params": {**(fixed or {}), **dict(zip(keys, combo))}}
        if scores_file:
            entry["scores_file"] = scores_file
        variants.append(entry)
    return variants


def student_entries(choices: list[str], hub_id: str = "", *, vocab_size: int, max_length: int,
                    at_size: dict | None = None) -> list[dict]:
    """Student configs: 'tiny:SIZE' for the built-in tiny student, any other name as given (the
    offline smollm2-135m, a Hugging Face id or a local path). `at_size`: student keys for every
    entry (lora, gradient_checkpointing, attn_implementation, dtype; see size_options)."""
    names = list(choices) + ([hub_id.strip()] if hub_id.strip() else [])
    out = []
    for name in names:
        if name.startswith("tiny:"):
            out.append({"name": "tiny", "size": name.split(":", 1)[1], "vocab_size": vocab_size,
                        "max_length": max_length, **(at_size or {})})
        else:
            out.append({"name": name, "max_length": max_length, **(at_size or {})})
    return out


def size_options(*, lora_r: int | None = None, gradient_checkpointing: bool = False,
                 attn_implementation: str = "sdpa", dtype: str = "auto") -> dict:
    """The students-at-size keys that differ from their defaults (so a plain matrix stays as it was):
    lora_r None = full fine-tune, else LoRA of that rank with alpha 2r on peft's default modules."""
    out = {}
    if lora_r:
        out["lora"] = {"r": int(lora_r), "alpha": 2 * int(lora_r)}
    if gradient_checkpointing:
        out["gradient_checkpointing"] = True
    if attn_implementation != "sdpa":
        out["attn_implementation"] = attn_implementation
    if dtype != "auto":
        out["dtype"] = dtype
    return out


def build_matrix(name: str, *, datasets: list[str], students: list[dict], placements: list[str],
                 perturbations: list[dict], seeds: list[int], data: dict | None = None,
                 train: dict | None = None, eval: dict | None = None) -> dict:
    """The matrix submit_matrix takes. Raises ValueError when a factor has no value."""
    factors = {"data.name": datasets, "student": students, "placement": placements,
               "perturbation": perturbations, "seed": seeds}
    empty = [k for k, v in factors.items() if not v]
    if not name.strip():
        raise ValueError("give the experiment a name")
    if empty:
        raise ValueError(f"choose at least one value for: {', '.join(empty)}")
    base = {"data": dict(data or {}), "train": dict(train or {}), "eval": dict(eval or {})}
    return {"name": name.strip(), "base": base, "factors": factors}


def conditions(placements: list[str], perturbations: list[dict]) -> list[dict]:
    """Every (placement, perturbation) pair, for the preview of the training sequences."""
    return [{"placement": p, "perturbation": pert, "label": f"{p} · {describe(pert)}"}
            for p in placements for pert in perturbations]


def describe(perturbation: dict) -> str:
    params = ",".join(f"{k}={v}" for k, v in sorted((perturbation.get("params") or {}).items()) if v is not None)
    level = "" if perturbation.get("level", "token") == "token" else f"[{perturbation['level']}]"
    return perturbation["kind"] + level + (f"({params})" if params else "")
