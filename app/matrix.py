"""From the Launch form's choices to an experiment matrix ({name, base, factors}), as plain data.

    matrix = build_matrix("cqa-shuffle", datasets=["synthetic-count"], students=[{"name": "tiny"}],
                          placements=["none", "after"], perturbations=[{"kind": "none"}],
                          seeds=[0, 1, 2], data={"n_train": 500}, train={"steps": 200})

Every choice the form allows several of becomes a factor (the cartesian product is taken by
worker.experiments.expand); everything else goes into the base config. `baseline` adds the untouched
student (no fine-tuning) as the factor `train.steps: [steps, 0]`: expand turns its cells into one run
per dataset × student × seed and evaluation protocol (none; and before when it is a placement).
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
    offline smollm2-135m, Hugging Face ids or local paths, comma-separated in `hub_id`). `at_size`:
    student keys for every entry (lora, gradient_checkpointing, attn_implementation, dtype; see
    size_options)."""
    names = list(choices) + [h.strip() for h in hub_id.split(",") if h.strip()]
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
                 train: dict | None = None, eval: dict | None = None, base: dict | None = None,
                 more_factors: dict | None = None, baseline: bool = False) -> dict:
    """The matrix submit_matrix takes. `base` (an earlier experiment's, when relaunching) keeps every
    setting the form does not show, under the form's data, train and eval values; `more_factors` are
    factors the form cannot edit, kept as they are; `baseline` adds the untouched student (the factor
    train.steps: [steps, 0]). Raises ValueError when a factor has no value."""
    factors = {**(more_factors or {}), "data.name": datasets, "student": students, "placement": placements,
               "perturbation": perturbations, "seed": seeds}
    if baseline:
        steps = (train or {}).get("steps") or ((base or {}).get("train") or {}).get("steps") or 200
        factors["train.steps"] = [int(steps), 0]
    empty = [k for k, v in factors.items() if not v]
    if not name.strip():
        raise ValueError("give the experiment a name")
    from worker import api
    if problem := api.name_problem(name.strip(), "the experiment name"):
        raise ValueError(problem)
    if empty:
        raise ValueError(f"choose at least one value for: {', '.join(empty)}")
    earlier = {k: v for k, v in (base or {}).items() if k not in ("name",) + FORM_FACTORS}
    merged = {**earlier}
    for section, given in (("data", data), ("train", train), ("eval", eval)):
        merged[section] = {**(earlier.get(section) or {}), **(given or {})}
    return {"name": name.strip(), "base": merged, "factors": factors}


def conditions(placements: list[str], perturbations: list[dict]) -> list[dict]:
    """Every (placement, perturbation) pair, for the preview of the training sequences."""
    return [{"placement": p, "perturbation": pert, "label": f"{p} · {describe(pert)}"}
            for p in placements for pert in perturbations]


def describe(perturbation: dict) -> str:
    params = ",".join(f"{k}={v}" for k, v in sorted((perturbation.get("params") or {}).items()) if v is not None)
    level = "" if perturbation.get("level", "token") == "token" else f"[{perturbation['level']}]"
    return perturbation["kind"] + level + (f"({params})" if params else "")


# ------------------------------------------------------------------------------------------ relaunch

FORM_FACTORS = ("data.name", "student", "placement", "perturbation", "seed", "train.steps")


def _number_text(values: list) -> str:
    return ", ".join(str(v) for v in values)


def perturbation_form(perturbations: list[dict]) -> tuple[list[str], dict[str, dict]]:
    """The Perturbations widgets for a list of perturbation entries: the kinds (in order, once each)
    and, per kind, its widgets' values (level, swept values as comma-separated text, fixed params)."""
    kinds: list[str] = []
    params: dict[str, dict] = {}
    for p in perturbations:
        kind, values = p["kind"], p.get("params") or {}
        if kind not in kinds:
            kinds.append(kind)
            params[kind] = {"level": p.get("level", "token"), "sweep": {}, "fixed": {}}
        entry = params[kind]
        for name, value in values.items():
            if kind == "mask" and name == "mode" or kind == "key_tokens" and name in ("order", "signed"):
                entry["fixed"][name] = value
            elif value is not None and value not in entry["sweep"].setdefault(name, []):
                entry["sweep"][name].append(value)
        if p.get("scores_file"):
            entry["fixed"]["scores_file"] = p["scores_file"]
    for entry in params.values():
        entry["sweep"] = {name: _number_text(values) for name, values in entry["sweep"].items()}
    return kinds, params


def form_values(experiment: dict, *, pretrained: list[str] = ()) -> dict:
    """What the Launch form shows to relaunch `experiment` ({name, base, factors}): every factor the
    form has (datasets, students, placements, perturbations, seeds) and the base config's data, student
    and training settings. `ignored` names the factors the form cannot vary (their values are lost, and
    the page says so)."""
    base, factors = experiment.get("base") or {}, experiment.get("factors") or {}
    data, train, evaluation = base.get("data") or {}, base.get("train") or {}, base.get("eval") or {}
    steps, baseline = train.get("steps"), False
    if "train.steps" in factors:                  # the form's baseline: [steps, 0]; else not the form's
        trained = [v for v in factors["train.steps"] if v != 0]
        if 0 in factors["train.steps"] and len(trained) <= 1:
            steps, baseline = (trained[0] if trained else steps), True
    datasets = list(factors.get("data.name") or [data.get("name") or "synthetic-count"])
    students = list(factors.get("student") or [base.get("student") or {"name": "tiny", "size": "tiny"}])
    perturbations = list(factors.get("perturbation") or [base.get("perturbation") or {"kind": "none"}])
    options = {k: v for k, v in (data.get("options") or {}).items() if not (datasets == ["rationale-set"] and k == "path")}
    choices, hub = [], []
    for s in students:
        s = {"name": s} if isinstance(s, str) else s
        if s["name"] == "tiny":
            choices.append(f"tiny:{s.get('size', 'tiny')}")
        elif s["name"] in pretrained:
            choices.append(s["name"])
        else:
            hub.append(s["name"])
    first = next((s for s in students if isinstance(s, dict) and s.get("name") == "tiny"),
                 students[0] if isinstance(students[0], dict) else {})
    kinds, params = perturbation_form(perturbations)
    return {
        "student_entries": [s for s in students if isinstance(s, dict)],
        "name": experiment["name"], "source": "set" if datasets == ["rationale-set"] else "datasets",
        "datasets": datasets, "set_path": (data.get("options") or {}).get("path") if datasets == ["rationale-set"] else None,
        "train_split": data.get("train_split"), "test_split": data.get("test_split"),
        "options": options, "n_train": data.get("n_train") or 0, "n_test": data.get("n_test") or 0,
        "rationale_filter": data.get("rationale_filter") or "all",
        "students": choices, "hub_id": ", ".join(hub), "vocab_size": first.get("vocab_size"),
        "max_length": first.get("max_length"),
        "placements": list(factors.get("placement") or [base.get("placement") or "none"]),
        "perturbations": kinds, "perturbation_params": params,
        "seeds": _number_text(factors.get("seed") or [base.get("seed", 0)]),
        "steps": steps, "batch_size": train.get("batch_size"), "lr": train.get("lr"),
        "warmup_steps": train.get("warmup_steps"), "eval_mode": evaluation.get("mode") or "auto",
        "loss_normalization": train.get("loss_normalization") or "token", "baseline": baseline,
        "ignored": sorted(k for k in factors if k not in FORM_FACTORS or k == "train.steps" and not baseline),
    }


def with_earlier(students: list[dict], earlier: list[dict] | None) -> list[dict]:
    """The form's student entries with the settings the form does not show (anything but name, size,
    vocabulary and length) taken from the earlier experiment's entry of the same student."""
    out = []
    for s in students:
        match = next((e for e in earlier or [] if (e.get("name"), e.get("size")) == (s.get("name"), s.get("size"))), {})
        out.append({**match, **s})
    return out


def next_name(name: str, taken: set[str]) -> str:
    """'exp' → 'exp-2' (or -3, … the first not taken); 'exp-2' → 'exp-3'; a long number (a date) is not a version."""
    stem, _, number = name.rpartition("-")
    stem, n = (stem, int(number)) if stem and number.isdigit() and len(number) <= 3 else (name, 1)
    while f"{stem}-{n + 1}" in taken:
        n += 1
    return f"{stem}-{n + 1}"
