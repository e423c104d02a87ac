"""Rationale perturbations: what about the rationale helps the student?

A perturbation transforms one example's rationale before it is placed in the training target.
It works on "units": the student's token ids (the default level), words, or sentences (`text_units`,
`split_sentences`). The functions never look inside a unit; they only permute, drop, keep or
substitute units, so ints and strings work alike: at sentence level a masked sentence becomes one mask
unit, a filler copies one filler unit per sentence.

Use it through `perturb`, which validates the parameters and derives the random generator from
(seed, example id), so every example is perturbed the same way in every process:

    from cotdistill.sequences.perturbations import PerturbContext, perturb
    perturb("mask", [5, 6, 7, 8], seed=0, example_id="q17", params={"p": 0.3, "mode": "replace"},
            context=PerturbContext(mask_unit=0))

Kinds (`PERTURBATIONS`, parameters and defaults in `DEFAULT_PARAMS`):

- ``none``: the rationale unchanged.
- ``shuffle``: a random permutation of the units.
- ``mask``: each unit masked with probability ``p``; ``mode`` 'drop' removes it, 'replace' puts
  ``context.mask_unit`` in its place.
- ``filler``: ``length`` ('same' or an int) copies of ``context.filler_unit``.
- ``truncate``: the first ``k`` units, or the first ``fraction`` of them.
- ``random_subset``: ``k`` (or ``fraction`` of the) units picked at random, in their original order.
- ``mismatch``: the units of another example of ``context.pool``, picked at random.
- ``key_tokens``: the top ``k`` (or ``fraction``) units by ``context.scores``, in their original
  order or (``order='shuffled'``) permuted. ``signed`` (default false) is read by the runner's
  scores loader: signed grad x input scores are ranked by magnitude unless it is true.

``k`` and ``fraction`` are exclusive; a fraction keeps round-half-up(fraction * n) units, at least one
when the rationale is non-empty and the fraction positive. An empty rationale stays empty for every
kind except ``mismatch``, which returns the other example's units.

Each registry function takes ``(units, rng, params, context)`` with ``params`` as returned by
`validate_params`; call them directly only when you manage the generator yourself.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Callable, Mapping, Sequence

import numpy as np


@dataclass(frozen=True)
class PerturbContext:
    """What some perturbations need beyond the units themselves."""

    mask_unit: object | None = None
    """Unit that replaces a masked unit in mask mode 'replace' (a mask/unk token id, or a word like '_')."""
    filler_unit: object | None = None
    """Unit used by `filler` (e.g. the id of ' .' or the word '...')."""
    pool: Sequence[Sequence] = ()
    """Rationale units of the other examples of the training set (for `mismatch`)."""
    self_index: int | None = None
    """This example's index in `pool`, never picked by `mismatch`."""
    scores: Sequence[float] | None = None
    """Per-unit importance for `key_tokens`, same length as the units."""


Perturbation = Callable[[list, np.random.Generator, dict, PerturbContext], list]

_KEEP_DEFAULTS = {"k": None, "fraction": 0.5}

MAX_FILLER = 1_048_576
"""Longest filler: student.max_length's cap; the sequence is cut there anyway."""

DEFAULT_PARAMS: dict[str, dict] = {
    "none": {},
    "shuffle": {},
    "mask": {"p": 0.5, "mode": "drop"},
    "filler": {"length": "same"},
    "truncate": dict(_KEEP_DEFAULTS),
    "random_subset": dict(_KEEP_DEFAULTS),
    "mismatch": {},
    "key_tokens": {**_KEEP_DEFAULTS, "order": "original", "signed": False},
}


# ---------------------------------------------------------------- text units

ABBREVIATIONS = ("e.g.", "i.e.", "vs.", "cf.", "mr.", "mrs.", "ms.", "dr.", "st.")
"""Words ending in a period that do not end a sentence (compared lower-case)."""
_END = re.compile(r"[.!?]+[\"')\]]*(?=\s)")
_LIST_MARKER = re.compile(r"(?:\d+|[A-Za-z]|[ivxIVX]+)[.)]")
_ACRONYM = re.compile(r"(?:[A-Za-z]\.){2,}")


def split_sentences(text: str) -> list[str]:
    """The sentences or steps of `text`, stripped, in order; the units of `level: sentence`.

    A unit ends at a newline, and after `.`, `!` or `?` (with any closing quotes or brackets) followed
    by whitespace, except after an abbreviation of ABBREVIATIONS (`e.g.`), a dotted acronym (`U.S.`) or
    a list marker that opens the unit (`1.`, `b)`, `iv.`): each step of a numbered or bulleted list is
    one unit. A period inside a number (`3.5`) is followed by no whitespace and ends nothing. Text with
    no sentence end is one unit; blank text gives none."""
    units = []
    for line in str(text).splitlines():
        start = 0
        for m in _END.finditer(line):
            words = line[start:m.end()].split()
            word = words[-1].lower() if words else ""
            if word in ABBREVIATIONS or _ACRONYM.fullmatch(word) or \
                    (len(words) == 1 and _LIST_MARKER.fullmatch(words[0])):
                continue
            units.append(line[start:m.end()])
            start = m.end()
        units.append(line[start:])
    return [u.strip() for u in units if u.strip()]


def text_units(text: str, level: str) -> list[str]:
    """The units of `text` at a text level: whitespace-separated words (`word`) or split_sentences
    (`sentence`). Joined back with single spaces (`" ".join(units)`) before re-tokenising."""
    if level == "word":
        return str(text).split()
    if level == "sentence":
        return split_sentences(text)
    raise ValueError(f"text_units: level must be 'word' or 'sentence', not {level!r}")


# ---------------------------------------------------------------- randomness

def rng_for(seed: int, example_id: str) -> np.random.Generator:
    """A generator that depends only on (seed, example_id), identical across processes and versions.

    Python's `hash()` is salted per process, so the seed material comes from SHA-256 instead; the bit
    generator is named (PCG64) rather than left to `default_rng`, whose choice could change.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be an int, got {seed!r}")
    digest = hashlib.sha256(f"{int(seed)}:{example_id}".encode("utf-8")).digest()
    return np.random.Generator(np.random.PCG64(int.from_bytes(digest, "big")))


# ---------------------------------------------------------------- parameters

def _is_int(x: object) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


def _is_unit_interval(x: object) -> bool:
    return (isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool)
            and 0.0 <= float(x) <= 1.0)


def _check_keep(kind: str, params: dict, given: Mapping) -> None:
    """Resolve the exclusive k / fraction pair: the default fraction applies only when neither is given."""
    if given.get("k") is not None and given.get("fraction") is not None:
        raise ValueError(f"perturbation {kind!r}: give either 'k' or 'fraction', not both "
                         f"(got k={given['k']!r}, fraction={given['fraction']!r})")
    if given.get("k") is not None:
        params["fraction"] = None
        if not _is_int(params["k"]) or params["k"] < 0:
            raise ValueError(f"perturbation {kind!r}: parameter 'k' must be an int >= 0, got {params['k']!r}")
        params["k"] = int(params["k"])
    else:
        if params["fraction"] is None:
            params["fraction"] = _KEEP_DEFAULTS["fraction"]
        if not _is_unit_interval(params["fraction"]):
            raise ValueError(f"perturbation {kind!r}: parameter 'fraction' must be a number in [0, 1], "
                             f"got {params['fraction']!r}")


def _check_choice(kind: str, params: dict, name: str, allowed: tuple) -> None:
    if params[name] not in allowed:
        raise ValueError(f"perturbation {kind!r}: parameter {name!r} must be one of {allowed}, "
                         f"got {params[name]!r}")


def validate_params(kind: str, params: Mapping | None) -> dict:
    """Return `params` with defaults filled in; raise ValueError on an unknown kind or a bad parameter."""
    if kind not in DEFAULT_PARAMS:
        raise ValueError(f"unknown perturbation {kind!r}; expected one of {sorted(DEFAULT_PARAMS)}")
    given = dict(params or {})
    accepted = DEFAULT_PARAMS[kind]
    unknown = sorted(set(given) - set(accepted))
    if unknown:
        raise ValueError(f"perturbation {kind!r}: unknown parameter(s) {unknown}; "
                         f"accepted: {sorted(accepted) or 'none'}")
    resolved = {**accepted, **given}
    if kind == "mask":
        if not _is_unit_interval(resolved["p"]):
            raise ValueError(f"perturbation 'mask': parameter 'p' must be a number in [0, 1], "
                             f"got {resolved['p']!r}")
        _check_choice(kind, resolved, "mode", ("drop", "replace"))
    elif kind == "filler":
        length = resolved["length"]
        if length != "same" and not (_is_int(length) and 0 <= length <= MAX_FILLER):
            raise ValueError(f"perturbation 'filler': parameter 'length' must be 'same' or an int from 0 "
                             f"to {MAX_FILLER:,} (the longest sequence a student takes), got {length!r}")
    elif kind in ("truncate", "random_subset", "key_tokens"):
        _check_keep(kind, resolved, given)
        if kind == "key_tokens":
            _check_choice(kind, resolved, "order", ("original", "shuffled"))
            _check_choice(kind, resolved, "signed", (False, True))
    return resolved


def _keep_count(n: int, params: dict) -> int:
    """How many of n units to keep under validated k / fraction parameters."""
    if params.get("k") is not None:
        return min(params["k"], n)
    # Exact arithmetic on the fraction as written, so 0.5 * 7 rounds to 4 with no float surprise.
    fraction = Fraction(str(float(params["fraction"])))
    kept = math.floor(fraction * n + Fraction(1, 2))
    if n > 0 and fraction > 0:
        kept = max(kept, 1)
    return min(kept, n)


# ---------------------------------------------------------------- perturbations

def none(units: list, rng: np.random.Generator, params: dict, context: PerturbContext) -> list:
    """The rationale unchanged (a copy)."""
    return list(units)


def shuffle(units: list, rng: np.random.Generator, params: dict, context: PerturbContext) -> list:
    """A random permutation of the units."""
    # Permute indices, not the units, so ints stay Python ints and words stay str.
    return [units[i] for i in rng.permutation(len(units))]


def mask(units: list, rng: np.random.Generator, params: dict, context: PerturbContext) -> list:
    """Mask each unit independently with probability p: drop it, or replace it by context.mask_unit."""
    if params["mode"] == "replace" and context.mask_unit is None:
        raise ValueError("perturbation 'mask' with mode 'replace' needs context.mask_unit "
                         "(the mask or unk token id, or a word such as '_')")
    hit = rng.random(len(units)) < params["p"]
    if params["mode"] == "drop":
        return [u for u, h in zip(units, hit) if not h]
    return [context.mask_unit if h else u for u, h in zip(units, hit)]


def filler(units: list, rng: np.random.Generator, params: dict, context: PerturbContext) -> list:
    """Copies of context.filler_unit in place of the rationale: as many as the units, or `length`."""
    if context.filler_unit is None:
        raise ValueError("perturbation 'filler' needs context.filler_unit (e.g. the id of ' .' or the word '...')")
    if not units:
        return []
    n = len(units) if params["length"] == "same" else int(params["length"])
    return [context.filler_unit] * n


def truncate(units: list, rng: np.random.Generator, params: dict, context: PerturbContext) -> list:
    """The first k units, or the first `fraction` of them."""
    return list(units[:_keep_count(len(units), params)])


def random_subset(units: list, rng: np.random.Generator, params: dict, context: PerturbContext) -> list:
    """k (or `fraction` of the) units picked at random, kept in their original order."""
    picked = rng.choice(len(units), size=_keep_count(len(units), params), replace=False)
    return [units[i] for i in np.sort(picked)]


def mismatch(units: list, rng: np.random.Generator, params: dict, context: PerturbContext) -> list:
    """The units of another example of context.pool, picked uniformly among all but self_index."""
    pool, me = context.pool, context.self_index
    if me is not None and not 0 <= me < len(pool):
        raise ValueError(f"perturbation 'mismatch': context.self_index {me} is outside the pool "
                         f"(size {len(pool)})")
    others = len(pool) - (me is not None)
    if others < 1:
        raise ValueError(f"perturbation 'mismatch' needs another example in context.pool "
                         f"(pool size {len(pool)}, self_index {me})")
    j = int(rng.integers(others))
    if me is not None and j >= me:
        j += 1  # skip this example without building a list of the others
    return list(pool[j])


def key_tokens(units: list, rng: np.random.Generator, params: dict, context: PerturbContext) -> list:
    """The top k (or `fraction`) units by context.scores, ties to the earlier unit."""
    scores = context.scores
    if scores is None:
        raise ValueError("perturbation 'key_tokens' needs context.scores (one importance score per unit)")
    if len(scores) != len(units):
        raise ValueError(f"perturbation 'key_tokens': context.scores has {len(scores)} entries "
                         f"but the rationale has {len(units)} units")
    values = np.asarray(scores, dtype=float)
    if np.isnan(values).any():
        raise ValueError(f"perturbation 'key_tokens': context.scores contains NaN at positions "
                         f"{np.flatnonzero(np.isnan(values)).tolist()}")
    # lexsort sorts by the last key first: highest score, then earliest position.
    ranked = np.lexsort((np.arange(len(units)), -values))
    kept = ranked[:_keep_count(len(units), params)]
    kept = np.sort(kept) if params["order"] == "original" else rng.permutation(kept)
    return [units[i] for i in kept]


PERTURBATIONS: dict[str, Perturbation] = {
    "none": none,
    "shuffle": shuffle,
    "mask": mask,
    "filler": filler,
    "truncate": truncate,
    "random_subset": random_subset,
    "mismatch": mismatch,
    "key_tokens": key_tokens,
}


def perturb(kind: str, units: Sequence, *, seed: int, example_id: str, params: Mapping | None = None,
            context: PerturbContext = PerturbContext()) -> list:
    """Apply perturbation `kind` to one example's rationale units, reproducibly for (seed, example_id)."""
    resolved = validate_params(kind, params)
    return PERTURBATIONS[kind](list(units), rng_for(seed, example_id), resolved, context)
