"""Arms: a run configuration without its seed, and labels that say what differs between arms.

    arm_key(config)                  # '1f0c…': equal exactly when two runs differ only in their seed
    arm_key(config, ignore=PANEL_KEYS)   # the arm's row in a table whose panels are dataset × student
    arm_labels(configs)              # {arm_key: 'after · n_train=400', …}: keys that differ, named
    eval_protocol(config, summary)   # 'generate' or 'score': how the run's accuracy was produced

Runs belong to one arm exactly when everything but the seed is equal (the run's name and trackers
change no result; config.hashed_settings drops them), so runs that differ in n_train, rationale weight,
perturbation parameters, student size, steps or loader options are different arms. A label starts
with the placement (and the perturbation kind with the details, parameters, level or scores file,
that differ among arms of that kind: `after/mask(p=0.5)`), then names every other key whose value
differs across the configs labelled together (`after · n_train=400`); keys equal across all of them
are not shown. A config with train.steps 0 evaluates the student without fine-tuning: it is labelled
`untouched`. Distinct arms never share a label: where the keys shown cannot tell two apart, the label
ends in the arm key.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from typing import Any, Iterable

from cotdistill.config import RunConfig, hashed_settings

PANEL_KEYS = ("data.name", "student.name")
"""Shown as a table's panels (dataset / student) rather than in its arm labels."""
UNTOUCHED = "untouched"
"""The label of the student evaluated without fine-tuning (train.steps 0)."""
_NOT_TRAINING = ("placement", "rationale_weight", "perturbation.", "train.")
"""Keys that change nothing for an untouched student: left out of its label."""


@cache
def _defaults() -> str:
    return json.dumps(RunConfig().to_dict())


def settings(config: dict, ignore: Iterable[str] = ()) -> dict:
    """The settings that make an arm: a stored run config with the keys it lacks at their defaults
    (older runs), as config.hashed_settings covers them, without the seed and the dotted keys in
    `ignore` (e.g. 'data.name')."""
    full = json.loads(_defaults())
    for key, value in config.items():
        if isinstance(full.get(key), dict) and isinstance(value, dict):
            full[key] = {**full[key], **value}
        else:
            full[key] = value
    out = hashed_settings(full)
    out.pop("seed", None)
    for dotted in ignore:
        section, _, key = dotted.partition(".")
        if key and isinstance(out.get(section), dict):
            out[section].pop(key, None)
        elif not key:
            out.pop(section, None)
    return out


def arm_key(config: dict, ignore: Iterable[str] = ()) -> str:
    """12 hex digits, equal for two run configs exactly when they differ only in seed (and name,
    trackers), or in the keys of `ignore`."""
    text = json.dumps(settings(config, ignore), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def is_untouched(config: dict) -> bool:
    """Whether the run evaluates the student without fine-tuning (train.steps 0)."""
    return (config.get("train") or {}).get("steps") == 0


def eval_protocol(config: dict, summary: dict | None = None) -> str:
    """'generate' or 'score': what the run recorded (summary eval_mode), else what its config asks
    for (eval.mode auto: generation for `before`, scoring otherwise)."""
    recorded = (summary or {}).get("eval_mode")
    if recorded in ("generate", "score"):
        return recorded
    mode = (config.get("eval") or {}).get("mode", "auto")
    if mode in ("generate", "score"):
        return mode
    return "generate" if config.get("placement") == "before" else "score"


# ------------------------------------------------------------------------------------------ labels

def _flat(s: dict) -> dict[str, Any]:
    """Dotted keys of the settings; perturbation.params and data.options one level further."""
    out: dict[str, Any] = {}
    for section, value in s.items():
        if not isinstance(value, dict):
            out[section] = value
            continue
        for key, v in value.items():
            if key in ("params", "options") and isinstance(v, dict):
                for inner, w in v.items():
                    out[f"{section}.{key}.{inner}"] = w
            else:
                out[f"{section}.{key}"] = v
    return out


def _text(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    return str(value)



def _differing(flats: list[dict], keys: list[str]) -> list[str]:
    """The keys (in order) whose value is not the same in every config (absent counts as a value)."""
    out = []
    for key in keys:
        values = {json.dumps(f.get(key, "\0missing"), sort_keys=True, default=str) for f in flats}
        if len(values) > 1:
            out.append(key)
    return out


def _names(keys: list[str]) -> dict[str, str]:
    """Each dotted key by its last part, or in full where two keys shown share it."""
    last = [k.rsplit(".", 1)[-1] for k in keys]
    return {k: (short if last.count(short) == 1 else k) for k, short in zip(keys, last)}


def _base(flat: dict, same_kind: list[dict]) -> str:
    """`placement` or `placement/kind(details that differ among the arms of that kind)`: its
    parameters, level and scores file."""
    kind = flat.get("perturbation.kind", "none")
    if kind == "none":
        return str(flat.get("placement"))
    details = [k for k in dict.fromkeys(k for f in same_kind for k in f)
               if k.startswith("perturbation.") and k != "perturbation.kind"]
    details.sort(key=lambda k: (not k.startswith("perturbation.params."), k))
    shown = [k for k in _differing(same_kind, details) if k in flat]
    inner = ",".join(f"{k.rsplit('.', 1)[-1]}={_text(flat[k])}" for k in shown)
    return f"{flat.get('placement')}/{kind}" + (f"({inner})" if inner else "")


def arm_labels(configs: Iterable[dict], panel_keys: Iterable[str] = PANEL_KEYS) -> dict[str, str]:
    """{arm_key(config): label} for every config (several runs of an arm may be passed). The label
    names what differs across `configs`, apart from `panel_keys` (shown as the table's panels); two
    configs that differ in anything else get different labels."""
    panel_keys = tuple(panel_keys)
    by_key: dict[str, dict] = {}
    for config in configs:
        by_key.setdefault(arm_key(config), config)
    flats = {k: _flat(settings(c, panel_keys)) for k, c in by_key.items()}
    untouched = {k for k, c in by_key.items() if is_untouched(c)}
    trained = [f for k, f in flats.items() if k not in untouched]
    order = list(dict.fromkeys(key for f in flats.values() for key in f))
    plain = [k for k in order if k != "placement" and not k.startswith("perturbation.")]
    shown_trained = _differing(trained, plain)
    shown_untouched = [k for k in _differing(list(flats.values()), plain) if not k.startswith(_NOT_TRAINING)]
    names = _names(list(dict.fromkeys(shown_trained + shown_untouched)))
    labels: dict[str, str] = {}
    for key, flat in flats.items():
        if key in untouched:
            base, shown = UNTOUCHED, shown_untouched
        else:
            kind = flat.get("perturbation.kind", "none")
            base = _base(flat, [f for f in trained if f.get("perturbation.kind", "none") == kind])
            shown = shown_trained
        rest = ", ".join(f"{names[k]}={_text(flat[k])}" for k in shown if k in flat)
        labels[key] = base + (f" · {rest}" if rest else "")
    return _distinct(labels, {k: arm_key(c, panel_keys) for k, c in by_key.items()})


def _distinct(labels: dict[str, str], rows: dict[str, str]) -> dict[str, str]:
    """Labels made unique per row (arm without the panel keys): a label two rows share gets each
    row's key appended."""
    rows_of: dict[str, set[str]] = {}
    for key, label in labels.items():
        rows_of.setdefault(label, set()).add(rows[key])
    return {key: (label if len(rows_of[label]) == 1 else f"{label} #{rows[key][:6]}")
            for key, label in labels.items()}
