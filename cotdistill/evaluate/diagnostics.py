"""Label-bias diagnostics: is a run's accuracy more than the share of the label it keeps answering?

A student can collapse onto one answer letter; its accuracy is then the share of that letter among
the gold labels, and two arms answering the same constant letter "agree" on every item, so their
paired difference looks tight. These pure functions read evaluation records (dicts with example_id,
gold, predicted, correct and, in score mode, by_mode) and make that visible:

    from cotdistill.evaluate.diagnostics import diagnose, paired_basis
    diagnose(records, accuracy_low=0.18, accuracy_high=0.27)
    # {"prediction_distribution": {"a": 0.97, "b": 0.03}, "gold_distribution": {"a": 0.2, ...},
    #  "majority_label": "b", "majority_baseline": 0.21, "per_label_accuracy": {"a": 1.0, "b": 0.0, ...},
    #  "top_prediction": "a", "top_prediction_share": 0.97, "accuracy_by_mode": {"letter": 0.2, ...},
    #  "collapsed": True, "collapse_reason": "not distinguishable from a constant answer: ...",
    #  "above_baseline_p": 0.41, "below_baseline_p": 0.66, "below_baseline": False, "below_baseline_reason": None,
    #  "unparsed_rate": 0.0, "high_unparsed": False, "unparsed_reason": None, "flags": ["not distinguishable ..."]}
    paired_basis(records_arm_a, records_arm_b)["warning"]    # None, or why a paired interval misleads

No torch here: the job system and the app may call these on stored predictions.
"""

from __future__ import annotations

from collections import Counter
from typing import Iterable, Sequence

from cotdistill.stats.inference import scipy_stats

COLLAPSE_THRESHOLD = 0.6
"""A run whose most frequent prediction covers more than this share of the items counts as collapsed."""
MAX_LABELS = 26
"""Distributions keep this many labels (the most frequent); the rest are pooled (open-ended answers)."""
UNPARSED = "(unparsed)"
"""Distribution key for predictions from which no label could be parsed."""
UNPARSED_THRESHOLD = 0.2
"""A run whose generation gave no parseable label on more than this share of the items is flagged: its
accuracy then rests on forced answers (or on answers counted wrong), not on what it generates."""
ALPHA = 0.05
"""Level of the one-sided exact binomial tests of the accuracy against the majority baseline."""
OTHER = "(other)"
"""Distribution key pooling the labels beyond the MAX_LABELS most frequent."""


def label_shares(labels: Iterable[str | None], max_labels: int = MAX_LABELS) -> dict[str, float]:
    """{label: share of items}, labels in sorted order; None counts as UNPARSED, and labels beyond the
    `max_labels` most frequent are pooled under OTHER (both keys last, present only when non-zero)."""
    labels = list(labels)
    if not labels:
        raise ValueError("no labels to count")
    counts = Counter(label for label in labels if label is not None)
    kept = sorted(label for label, _ in _most_common(counts)[:max_labels])
    shares = {label: counts[label] / len(labels) for label in kept}
    other = sum(counts.values()) - sum(counts[label] for label in kept)
    if other:
        shares[OTHER] = other / len(labels)
    if len(labels) > sum(counts.values()):
        shares[UNPARSED] = (len(labels) - sum(counts.values())) / len(labels)
    return shares


def _most_common(counts: Counter) -> list[tuple[str, int]]:
    """(label, count), most frequent first, ties in label order (so results never depend on input order)."""
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


def _top(labels: Sequence[str | None]) -> tuple[str | None, float]:
    """The most frequent parsed label and its share of all items (None, 0.0 when nothing parsed)."""
    counts = Counter(label for label in labels if label is not None)
    if not counts:
        return None, 0.0
    label, count = _most_common(counts)[0]
    return label, count / len(labels)


def majority_baseline(records: Sequence[dict]) -> tuple[str, float]:
    """The most frequent gold label and the accuracy of always answering it."""
    label, share = _top([r["gold"] for r in records])
    if label is None:
        raise ValueError("no evaluation records")
    return label, share


def per_label_accuracy(records: Sequence[dict], max_labels: int = MAX_LABELS) -> dict[str, float]:
    """{gold label: accuracy on the items whose gold label it is}, for the `max_labels` most frequent
    gold labels, in sorted order. A constant answer shows as 1.0 on one label and 0.0 on the others."""
    by_gold: dict[str, list[bool]] = {}
    for r in records:
        by_gold.setdefault(r["gold"], []).append(bool(r["correct"]))
    counts = Counter({label: len(hits) for label, hits in by_gold.items()})
    kept = sorted(label for label, _ in _most_common(counts)[:max_labels])
    return {label: sum(by_gold[label]) / len(by_gold[label]) for label in kept}


def accuracy_by_mode(records: Sequence[dict]) -> dict[str, float] | None:
    """{scoring: accuracy} over the scorings every record holds in `by_mode`; None without by_mode."""
    if not records or any("by_mode" not in r for r in records):
        return None
    modes = [m for m in records[0]["by_mode"] if all(m in r["by_mode"] for r in records)]
    return {m: sum(bool(r["by_mode"][m]["correct"]) for r in records) / len(records) for m in modes}


def baseline_tests(records: Sequence[dict]) -> tuple[float, float]:
    """(p above, p below): one-sided exact binomial tests of the number of correct items against
    n x the majority baseline. The baseline is read off the same test items' gold labels and taken
    as fixed: it is what always answering that label scores on exactly these items."""
    _, baseline = majority_baseline(records)
    correct, n = sum(bool(r["correct"]) for r in records), len(records)
    above = scipy_stats().binomtest(correct, n, baseline, alternative="greater").pvalue
    below = scipy_stats().binomtest(correct, n, baseline, alternative="less").pvalue
    return float(above), float(below)


def unparsed_rate(records: Sequence[dict]) -> float:
    """The share of items whose generation gave no label: forced answers and answers still None."""
    return sum(bool(r.get("forced")) or r["predicted"] is None for r in records) / len(records)


def collapse_check(records: Sequence[dict], *, accuracy_low: float, accuracy_high: float,
                   threshold: float = COLLAPSE_THRESHOLD, alpha: float = ALPHA) -> tuple[bool, str | None]:
    """(collapsed, reason): not distinguishable from a constant answer. Never when the accuracy is
    significantly above the majority baseline (one-sided exact binomial at `alpha`): a model that beats
    always answering the majority label is not answering a constant, even if it favours that label.
    Otherwise, when the most frequent prediction covers more than `threshold` of the items (and more
    than that label's share among the gold labels), or when the accuracy's interval includes the
    majority baseline (always answering the most frequent gold label would score as well)."""
    if baseline_tests(records)[0] < alpha:
        return False, None
    top, share = _top([r["predicted"] for r in records])
    majority, baseline = majority_baseline(records)
    gold_share = sum(r["gold"] == top for r in records) / len(records) if top is not None else 0.0
    reasons = []
    if share > threshold and share > gold_share:
        reasons.append(f"the most frequent prediction {top!r} covers {share:.0%} of {len(records)} items "
                       f"(threshold {threshold:.0%})")
    if accuracy_low <= baseline <= accuracy_high:
        reasons.append(f"the accuracy's 95% interval [{accuracy_low:.3f}, {accuracy_high:.3f}] includes the "
                       f"majority baseline {baseline:.3f} (always answering {majority!r})")
    if not reasons:
        return False, None
    return True, "not distinguishable from a constant answer: " + "; ".join(reasons)


def diagnose(records: Sequence[dict], *, accuracy_low: float, accuracy_high: float,
             threshold: float = COLLAPSE_THRESHOLD, unparsed_threshold: float = UNPARSED_THRESHOLD,
             alpha: float = ALPHA) -> dict:
    """Every diagnostic for a run summary, as plain JSON-ready data (keys in the module docstring).
    Three flags, each with its reason: `collapsed` (constant answer), `below_baseline` (accuracy
    significantly below always answering the majority label, one-sided exact binomial at `alpha`) and
    `high_unparsed` (no label parsed from the generation on more than `unparsed_threshold` of the
    items); `flags` lists the reasons of those raised."""
    if not records:
        raise ValueError("no evaluation records")
    majority, baseline = majority_baseline(records)
    top, share = _top([r["predicted"] for r in records])
    collapsed, reason = collapse_check(records, accuracy_low=accuracy_low, accuracy_high=accuracy_high,
                                       threshold=threshold, alpha=alpha)
    above_p, below_p = baseline_tests(records)
    accuracy = sum(bool(r["correct"]) for r in records) / len(records)
    below = below_p < alpha
    below_reason = (f"accuracy {accuracy:.3f} is significantly below the majority baseline {baseline:.3f} "
                    f"(always answering {majority!r}; one-sided exact binomial p = {below_p:.2g})") if below else None
    rate = unparsed_rate(records)
    high = rate > unparsed_threshold
    unparsed_reason = (f"no label parsed from the generation on {rate:.0%} of {len(records)} items "
                       f"(threshold {unparsed_threshold:.0%}): those answers are forced by scoring the "
                       f"candidates, not generated") if high else None
    return {"prediction_distribution": label_shares(r["predicted"] for r in records),
            "gold_distribution": label_shares(r["gold"] for r in records),
            "majority_label": majority, "majority_baseline": baseline,
            "per_label_accuracy": per_label_accuracy(records),
            "top_prediction": top, "top_prediction_share": share,
            "accuracy_by_mode": accuracy_by_mode(records),
            "collapsed": collapsed, "collapse_reason": reason,
            "above_baseline_p": above_p, "below_baseline_p": below_p,
            "below_baseline": below, "below_baseline_reason": below_reason,
            "unparsed_rate": rate, "high_unparsed": high, "unparsed_reason": unparsed_reason,
            "flags": [r for r in (reason, below_reason, unparsed_reason) if r]}


def paired_basis(records_a: Sequence[dict], records_b: Sequence[dict],
                 threshold: float = COLLAPSE_THRESHOLD) -> dict:
    """Whether a paired comparison of two arms rests on answers that vary.

    Items are paired by example_id. When both arms answer one constant label on more than `threshold`
    of the shared items, their paired difference is small and tight because the answers do not move,
    not because the arms are equal: the interval must be shown with `warning`, never read as
    "no difference". Returns {n_paired, a_top_label, a_top_share, b_top_label, b_top_share,
    agreement (share of items both arms answer alike), constant (bool), warning (str | None)}."""
    a = {r["example_id"]: r["predicted"] for r in records_a}
    b = {r["example_id"]: r["predicted"] for r in records_b}
    shared = [i for i in a if i in b]
    if not shared:
        raise ValueError("the two arms share no example_id: they were not evaluated on the same items")
    a_label, a_share = _top([a[i] for i in shared])
    b_label, b_share = _top([b[i] for i in shared])
    constant = a_share > threshold and b_share > threshold
    warning = None
    if constant:
        warning = (f"both arms answer one constant label on most items (a: {a_label!r} on {a_share:.0%}, "
                   f"b: {b_label!r} on {b_share:.0%} of {len(shared)} shared items): the paired difference "
                   f"measures the label bias, not the arms; a tight interval here is not evidence of "
                   f"no difference")
    return {"n_paired": len(shared), "a_top_label": a_label, "a_top_share": a_share,
            "b_top_label": b_label, "b_top_share": b_share,
            "agreement": sum(a[i] == b[i] for i in shared) / len(shared),
            "constant": constant, "warning": warning}
