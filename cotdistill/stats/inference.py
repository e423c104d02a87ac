"""Statistics for comparing arms: procedure-level tests with seeds as the unit, and item-level ones.

Two questions, never confused (DESIGN.md "Rules that keep results right"):

1. *Does training procedure A beat procedure B?* Each seed is one independent draw of a procedure's
   randomness (initialisation, data order, dropout), so the unit is the seed pair:

    procedure_diff([+0.14, +0.04, +0.20])      # paired t over per-seed-pair accuracy differences
    seed_budget([+0.14, +0.04, +0.20])         # smallest detectable difference, seeds needed, p floor

2. *Do these trained models differ on these test items?* Items are the unit. Per-example correctness
   of one run is a sequence of bools; two runs evaluated on the same test items are compared item by
   item:

    from cotdistill.stats.inference import accuracy, bootstrap_ci, paired_bootstrap_diff, mcnemar_exact, mean_ci
    bootstrap_ci(correct_after)                         # accuracy with a 95% percentile-bootstrap interval
    paired_bootstrap_diff(correct_after, correct_none)  # accuracy gain, items resampled jointly
    mcnemar_exact(correct_after, correct_none)          # exact test on the discordant items
    mean_ci([0.61, 0.63, 0.60])                         # mean accuracy across seeds, t-interval
    seed_paired_diff(a_by_seed, b_by_seed)              # (seed pairs x items): mean over seed pairs,
                                                        # item-cluster bootstrap, McNemar per pair,
                                                        # combined exact sign-flip p: these models,
                                                        # these items (question 2, not question 1)

Every function takes its randomness as a `seed` argument; the same inputs and seed give the same
interval.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np


def scipy_stats():
    """scipy.stats, imported on first use: imported with this module, it cost every process that
    imports this one or cotdistill.evaluate.diagnostics (the workers and every CLI command, through worker.api)
    1.5-2 s on a 2-core machine."""
    from scipy import stats
    return stats

# Resampled indices are drawn in chunks of at most this many (16 MiB of int32 indices, 32 MiB of gathered
# float64 values), so 10,000 resamples of a 1,221-item test set never hold all 12 million at once.
_MAX_CHUNK_ELEMENTS = 1 << 22
_FEW_VALUES = 16
_FEW_PATTERNS = 512


@dataclass(frozen=True)
class Interval:
    """A point estimate with a two-sided interval at `confidence`."""

    estimate: float
    low: float
    high: float
    confidence: float = 0.95

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        return f"{self.estimate:.3f} [{self.low:.3f}, {self.high:.3f}]"


@dataclass(frozen=True)
class McNemarResult:
    """Discordant counts of two paired runs and the exact two-sided p-value."""

    a_only: int
    """Items run a got right and run b got wrong."""
    b_only: int
    """Items run b got right and run a got wrong."""
    p_value: float


# ---------------------------------------------------------------- input checks

def _as_floats(name: str, values: Sequence[float | bool]) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim != 1:
        raise ValueError(f"{name} must be a flat sequence of numbers, got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name} is empty; need at least one value")
    bad = np.flatnonzero(~np.isfinite(array))
    if bad.size:
        raise ValueError(f"{name} has non-finite values at positions {bad[:10].tolist()}")
    return array


def _as_bools(name: str, values: Sequence[bool]) -> np.ndarray:
    array = _as_floats(name, values)
    bad = np.flatnonzero((array != 0) & (array != 1))
    if bad.size:
        raise ValueError(f"{name} must hold correctness values (True/False or 1/0); "
                         f"positions {bad[:10].tolist()} are not")
    return array.astype(bool)


def _check_paired(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape != b.shape:
        raise ValueError(f"paired sequences must have the same length (one entry per test item): "
                         f"a has {a.size}, b has {b.size}")


def _check_confidence(confidence: float) -> None:
    if not (isinstance(confidence, (int, float)) and 0 < confidence < 1):
        raise ValueError(f"confidence must be strictly between 0 and 1 (e.g. 0.95), got {confidence!r}")


def _check_n_boot(n_boot: int) -> None:
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise ValueError(f"n_boot must be a positive int, got {n_boot!r}")


# ---------------------------------------------------------------- point estimates and bootstrap

def accuracy(correct: Sequence[bool]) -> float:
    """The fraction of items answered correctly."""
    return float(_as_bools("correct", correct).mean())


def _bootstrap_means(values: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """Means of n_boot resamples (with replacement) of `values`, drawn chunk by chunk.

    Correctness (0/1) and paired differences (-1/0/1) take few distinct values: then a resample is
    fully described by how often it draws each value, a multinomial draw, which gives the same
    distribution of means in O(n_boot) instead of O(n_boot x n)."""
    rng = np.random.default_rng(seed)
    n = values.size
    distinct, counts = np.unique(values, return_counts=True)
    if distinct.size <= _FEW_VALUES:
        draws = rng.multinomial(n, counts / n, size=n_boot)           # (resamples, distinct values)
        return draws @ distinct / n
    chunk = max(1, _MAX_CHUNK_ELEMENTS // n)
    # int32 indices halve the memory traffic of the gather, which dominates the time.
    dtype = np.int32 if n < 2**31 else np.int64
    means = np.empty(n_boot)
    for start in range(0, n_boot, chunk):
        stop = min(start + chunk, n_boot)
        indices = rng.integers(0, n, size=(stop - start, n), dtype=dtype)  # (resamples, items)
        means[start:stop] = values[indices].mean(axis=1)
    return means


def _percentile_interval(values: np.ndarray, n_boot: int, confidence: float, seed: int) -> Interval:
    means = _bootstrap_means(values, n_boot, seed)
    tail = (1 - confidence) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return Interval(float(values.mean()), float(low), float(high), confidence)


def bootstrap_ci(values: Sequence[float | bool], *, n_boot: int = 10_000, confidence: float = 0.95,
                 seed: int = 0) -> Interval:
    """The mean of `values` (accuracy, for bools) with a percentile-bootstrap interval."""
    _check_confidence(confidence)
    _check_n_boot(n_boot)
    return _percentile_interval(_as_floats("values", values), n_boot, confidence, seed)


def paired_bootstrap_diff(a: Sequence[float | bool], b: Sequence[float | bool], *, n_boot: int = 10_000,
                          confidence: float = 0.95, seed: int = 0) -> Interval:
    """mean(a) - mean(b) with a percentile-bootstrap interval that resamples items jointly.

    a[i] and b[i] must be the same test item; resampling the per-item differences keeps the pairing,
    which is what makes the interval narrower than two independent ones.
    """
    _check_confidence(confidence)
    _check_n_boot(n_boot)
    a_arr, b_arr = _as_floats("a", a), _as_floats("b", b)
    _check_paired(a_arr, b_arr)
    return _percentile_interval(a_arr - b_arr, n_boot, confidence, seed)


def cluster_bootstrap_ci(values: Sequence[float | bool], clusters: Sequence[object], *,
                         n_boot: int = 10_000, confidence: float = 0.95, seed: int = 0) -> Interval:
    """The mean of `values` with a percentile-bootstrap interval that resamples clusters, not values:
    the rows of one test question (kept with several rationales) are one item, so the interval is as
    wide as the number of questions makes it. clusters[i] names the cluster of values[i]."""
    _check_confidence(confidence)
    _check_n_boot(n_boot)
    arr = _as_floats("values", values)
    if len(clusters) != arr.size:
        raise ValueError(f"clusters has {len(clusters)} entries for {arr.size} values")
    index: dict[object, int] = {}
    inverse = np.array([index.setdefault(c, len(index)) for c in clusters], dtype=np.int64)
    sums, sizes = np.bincount(inverse, weights=arr), np.bincount(inverse).astype(float)
    rng, k = np.random.default_rng(seed), sums.size
    means = np.empty(n_boot)
    chunk = max(1, _MAX_CHUNK_ELEMENTS // k)
    for start in range(0, n_boot, chunk):
        m = min(chunk, n_boot - start)
        picks = rng.integers(0, k, size=(m, k))                     # (resamples, clusters drawn)
        means[start:start + m] = sums[picks].sum(axis=1) / sizes[picks].sum(axis=1)
    tail = (1 - confidence) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return Interval(float(arr.mean()), float(low), float(high), confidence)


# ---------------------------------------------------------------- tests and across-seed intervals

def mcnemar_exact(a: Sequence[bool], b: Sequence[bool]) -> McNemarResult:
    """Exact two-sided McNemar test: a binomial(n_discordant, 1/2) test on the discordant items.

    p = min(1, 2 * P(X <= min(a_only, b_only))), computed in exact fractions; p = 1 with no discordant items.
    """
    a_arr, b_arr = _as_bools("a", a), _as_bools("b", b)
    _check_paired(a_arr, b_arr)
    a_only = int(np.sum(a_arr & ~b_arr))
    b_only = int(np.sum(b_arr & ~a_arr))
    n = a_only + b_only
    if n == 0:
        return McNemarResult(a_only, b_only, 1.0)
    # Exact integers; Python's int / int is correctly rounded, so only the final result is rounded.
    term = tail = 1                                    # C(n, 0)
    for i in range(min(a_only, b_only)):
        term = term * (n - i) // (i + 1)               # C(n, i + 1)
        tail += term
    return McNemarResult(a_only, b_only, min(1.0, (2 * tail) / (2 ** n)))


def mean_ci(values: Sequence[float], confidence: float = 0.95) -> Interval:
    """Mean across seeds with a Student-t interval.

    With a single value the spread is unknown, so low and high are NaN (the estimate is still the value).
    """
    _check_confidence(confidence)
    array = _as_floats("values", values)
    estimate = float(array.mean())
    if array.size == 1:
        return Interval(estimate, math.nan, math.nan, confidence)
    t = scipy_stats().t.ppf((1 + confidence) / 2, array.size - 1)
    half = float(t * array.std(ddof=1) / math.sqrt(array.size))
    return Interval(estimate, estimate - half, estimate + half, confidence)


# ---------------------------------------------------------------- across seeds: items are clusters

MIN_SEEDS_TO_RESAMPLE = 5
"""With at least this many seed pairs the bootstrap also resamples seeds (two-stage); with fewer, the
seed-to-seed spread cannot be estimated from a resample of so few values, so only items are resampled."""


@dataclass(frozen=True)
class SeedPairedResult:
    """Arm A minus arm B over seed pairs evaluated on the same test items.

    `interval` is the cluster-bootstrap interval of the mean difference over seed pairs; `p_value` the
    combined sign-flip test over items; `per_pair` one McNemarResult per seed pair, in input order."""

    interval: Interval
    p_value: float
    per_pair: tuple[McNemarResult, ...]
    per_pair_diff: tuple[float, ...]
    n_items: int
    resampled_seeds: bool
    interval_method: str
    test_method: str


def _as_matrix(name: str, rows: Sequence[Sequence[bool]]) -> np.ndarray:
    try:
        array = np.asarray(rows, dtype=float)
    except ValueError as e:
        raise ValueError(f"{name} must have one row per seed pair, all rows the same test items "
                         f"(same length): {e}") from None
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"{name} must be a non-empty (seed pairs x items) table, got shape {array.shape}")
    bad = np.argwhere((array != 0) & (array != 1))
    if bad.size:
        raise ValueError(f"{name} must hold correctness values (True/False or 1/0); "
                         f"(seed pair, item) {bad[:5].tolist()} are not")
    return array


def _two_stage_means(diffs: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """Means of n_boot resamples that draw seed pairs and, independently, items (with replacement).

    diffs is (seed pairs, items). A resample's mean is sum_s w_s * sum_i c_i * diffs[s, i] / n, with
    w the seed weights and c the item counts. Items with the same column of differences across seeds
    are interchangeable, and there are few such patterns (most items never change): the item counts
    are then drawn per pattern, one multinomial, as in `_bootstrap_means`."""
    rng = np.random.default_rng(seed)
    n_seeds, n = diffs.shape
    patterns, pattern_counts = np.unique(diffs.T, axis=0, return_counts=True)   # (patterns, seeds)
    few = len(patterns) <= _FEW_PATTERNS
    diffs_t32 = diffs.T.astype(np.float32)                                      # (items, seeds)
    means = np.empty(n_boot)
    chunk = max(1, _MAX_CHUNK_ELEMENTS // (len(patterns) if few else n))
    for start in range(0, n_boot, chunk):
        rows = min(start + chunk, n_boot) - start
        if few:
            counts = rng.multinomial(n, pattern_counts / n, size=rows)            # (resamples, patterns)
            per_seed = counts @ patterns / n                                     # (resamples, seeds)
        else:
            # int32 indices and float32 counts: both exact here (rows * n < 2**31, counts <= n < 2**24).
            indices = rng.integers(0, n, size=(rows, n), dtype=np.int32)         # (resamples, items)
            indices += (np.arange(rows, dtype=np.int32) * n)[:, None]   # one flat bincount for all rows
            counts = np.bincount(indices.ravel(), minlength=rows * n).reshape(rows, n).astype(np.float32)
            per_seed = (counts @ diffs_t32).astype(float) / n
        weights = rng.multinomial(n_seeds, np.full(n_seeds, 1 / n_seeds), size=rows) / n_seeds
        means[start:start + rows] = np.sum(per_seed * weights, axis=1)
    return means


def sign_flip_p(item_diffs: np.ndarray, n_seeds: int) -> float:
    """Exact two-sided sign-flip test that the per-item mean differences are centred on zero.

    Under "the arms are exchangeable on every item", swapping A and B on an item (on all its seeds at
    once) flips the sign of that item's mean difference, whatever the correlation between its seeds; so
    the statistic sum_i d_i is referred to its distribution over all 2^n sign patterns. With
    d_i = k_i / n_seeds for integers k_i, items sharing |k| form a binomial, and the exact distribution
    is the convolution of at most n_seeds of them: exact, no Monte Carlo. With one seed pair this is
    exactly McNemar's exact test. p = P(|T| >= |t_observed|)."""
    k = np.rint(np.asarray(item_diffs) * n_seeds).astype(np.int64)
    observed = abs(int(k.sum()))
    magnitudes, group_sizes = np.unique(np.abs(k[k != 0]), return_counts=True)
    dist = np.ones(1)                                       # distribution of T over offsets -total..total
    total = 0
    for v, m in zip(magnitudes.tolist(), group_sizes.tolist()):
        group = np.zeros(2 * v * m + 1)
        group[::2 * v] = scipy_stats().binom.pmf(np.arange(m + 1), m, 0.5)      # values v * (2j - m)
        dist = np.convolve(dist, group)
        total += v * m
    values = np.arange(-total, total + 1)
    return float(min(1.0, dist[np.abs(values) >= observed].sum()))


def seed_paired_diff(a: Sequence[Sequence[bool]], b: Sequence[Sequence[bool]], *, n_boot: int = 10_000,
                     confidence: float = 0.95, seed: int = 0,
                     min_seeds_to_resample: int = MIN_SEEDS_TO_RESAMPLE) -> SeedPairedResult:
    """Arm A minus arm B when each arm ran several seeds on the same test items.

    a[s][i] and b[s][i] are the correctness of seed pair s (A's and B's run with the same seed) on test
    item i; every row covers the same items in the same order. Seeds are repeated measurements of the
    same items, never extra items:
    - the estimate is the mean over seed pairs of the accuracy difference (= the mean over items of the
      per-item mean difference over seeds);
    - the interval is a percentile cluster bootstrap that resamples items with all their seeds together;
      with >= `min_seeds_to_resample` seed pairs it is two-stage (seed pairs resampled too, which counts
      seed noise twice over and so errs wide rather than narrow);
    - McNemar's exact test per seed pair, and a combined exact sign-flip test over items
      (`sign_flip_p`) that makes no independence assumption across seeds.
    Five identical seed pairs therefore give the same interval (up to resampling noise) and the same p
    as one of them."""
    _check_confidence(confidence)
    _check_n_boot(n_boot)
    a_arr, b_arr = _as_matrix("a", a), _as_matrix("b", b)
    if a_arr.shape != b_arr.shape:
        raise ValueError(f"a and b must be the same (seed pairs x items) table: a is {a_arr.shape}, "
                         f"b is {b_arr.shape}")
    diffs = a_arr - b_arr                                   # (seed pairs, items), values -1/0/1
    n_seeds, n_items = diffs.shape
    item_diffs = diffs.mean(axis=0)
    resample_seeds = n_seeds >= min_seeds_to_resample
    means = (_two_stage_means(diffs, n_boot, seed) if resample_seeds
             else _bootstrap_means(item_diffs, n_boot, seed))
    tail = (1 - confidence) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    interval = Interval(float(item_diffs.mean()), float(low), float(high), confidence)
    per_pair = tuple(mcnemar_exact(a_arr[s].astype(bool), b_arr[s].astype(bool)) for s in range(n_seeds))
    interval_method = (f"two-stage cluster bootstrap ({n_boot} resamples of test items with all their "
                       f"seeds, and of the {n_seeds} seed pairs)" if resample_seeds else
                       f"cluster bootstrap over test items ({n_boot} resamples, all seeds of an item "
                       f"together; seeds not resampled below {min_seeds_to_resample} seed pairs)")
    test_method = ("exact McNemar" if n_seeds == 1 else
                   f"exact sign-flip test on the per-item mean difference over {n_seeds} seed pairs")
    return SeedPairedResult(interval, sign_flip_p(item_diffs, n_seeds), per_pair,
                            tuple(float(d) for d in diffs.mean(axis=1)), n_items, resample_seeds,
                            interval_method, test_method)


# ---------------------------------------------------------------- the procedure: seeds are the unit

NEEDS_SEEDS = "needs ≥ 2 seeds"
"""The procedure-level verdict of a comparison with a single seed pair: seed-to-seed variance is unknown."""


@dataclass(frozen=True)
class ProcedureResult:
    """Arm A minus arm B as training procedures: one accuracy difference per seed pair.

    The estimate is the mean of the per-pair differences; `low`/`high` a Student-t interval and
    `p_value` the two-sided paired t-test over the k seed pairs (df = k - 1). With one seed pair the
    spread is unknown: low, high, p_value and sd are None and `verdict` is NEEDS_SEEDS."""

    estimate: float
    low: float | None
    high: float | None
    p_value: float | None
    sd: float | None
    """Standard deviation of the per-pair differences (ddof 1)."""
    per_pair_diff: tuple[float, ...]
    confidence: float = 0.95
    method: str = ""

    @property
    def n_pairs(self) -> int:
        return len(self.per_pair_diff)

    @property
    def verdict(self) -> str:
        """'significant' / 'not significant' at alpha 0.05 (uncorrected), or NEEDS_SEEDS."""
        if self.p_value is None:
            return NEEDS_SEEDS
        return "significant" if self.p_value < 0.05 else "not significant"

    def to_dict(self) -> dict:
        return {**asdict(self), "n_pairs": self.n_pairs, "verdict": self.verdict}


def procedure_diff(per_pair_diff: Sequence[float], *, confidence: float = 0.95) -> ProcedureResult:
    """The paired t-test over seed pairs: does procedure A beat procedure B?

    per_pair_diff[s] is accuracy(A's run with seed s) - accuracy(B's run with seed s) on the same test
    items. Assumptions: seed pairs are independent draws of the two procedures, and the per-pair
    differences are roughly normal (each is a mean over hundreds of items). The test is conditional on
    the test set: it asks whether the procedures differ on these items, averaged over what the seeds
    change. Differences that do not vary at all give p = 0 (or 1 when they are all zero)."""
    _check_confidence(confidence)
    d = _as_floats("per_pair_diff", per_pair_diff)
    k = d.size
    estimate = float(d.mean())
    values = tuple(float(v) for v in d)
    method = (f"paired t-test over {k} seed pairs (df {k - 1}): the per-pair accuracy differences are "
              f"the unit" if k >= 2 else "one seed pair: seed-to-seed variance unknown")
    if k < 2:
        return ProcedureResult(estimate, None, None, None, None, values, confidence, method)
    sd = float(d.std(ddof=1))
    if sd == 0.0:
        p = 1.0 if estimate == 0.0 else 0.0
        return ProcedureResult(estimate, estimate, estimate, p, 0.0, values, confidence, method)
    se = sd / math.sqrt(k)
    t_crit = float(scipy_stats().t.ppf((1 + confidence) / 2, k - 1))
    p = float(2 * scipy_stats().t.sf(abs(estimate) / se, k - 1))
    return ProcedureResult(estimate, estimate - t_crit * se, estimate + t_crit * se, min(1.0, p), sd,
                           values, confidence, method)


@dataclass(frozen=True)
class SeedBudget:
    """What a number of seed pairs can show, from the seed-to-seed spread an experiment observed.

    `detectable` is the smallest true difference the paired t-test finds with probability `power` at
    level `alpha` with the k seed pairs run; `seeds_for_target` how many seed pairs `target` needs
    (None above `max_seeds`); `sign_flip_floor` the smallest p-value a distribution-free test over
    seed pairs (exact sign flip) can reach with k pairs, 2 / 2^k: below 6 pairs it cannot go under 0.05."""

    n_pairs: int
    sd: float | None
    alpha: float
    power: float
    detectable: float | None
    target: float | None
    seeds_for_target: int | None
    sign_flip_floor: float

    def to_dict(self) -> dict:
        return asdict(self)


def t_test_power(difference: float, sd: float, k: int, alpha: float = 0.05) -> float:
    """Power of the two-sided paired t-test with k pairs for a true mean difference, per-pair sd."""
    if k < 2:
        return 0.0
    st = scipy_stats()
    t_crit = st.t.ppf(1 - alpha / 2, k - 1)
    ncp = difference / (sd / math.sqrt(k))
    return float(st.nct.sf(t_crit, k - 1, ncp) + st.nct.cdf(-t_crit, k - 1, ncp))


def seed_budget(per_pair_diff: Sequence[float], *, target: float | None = None, alpha: float = 0.05,
                power: float = 0.8, max_seeds: int = 200) -> SeedBudget:
    """The seed budget of a comparison (see SeedBudget); `target` defaults to the observed difference.
    Without a spread (one pair, or identical differences) nothing is computed but the floor."""
    d = _as_floats("per_pair_diff", per_pair_diff)
    k = d.size
    floor = min(1.0, 2.0 / 2 ** k)
    sd = float(d.std(ddof=1)) if k >= 2 else None
    target = float(abs(d.mean())) if target is None else abs(float(target))
    if not sd:
        return SeedBudget(k, sd, alpha, power, None, target, None, floor)
    low, high = 0.0, sd                       # power rises to 1 with the difference for any k >= 2
    while t_test_power(high, sd, k, alpha) < power:
        high *= 2
    for _ in range(50):                       # bisection, to ~1e-15 of sd
        mid = (low + high) / 2
        low, high = (mid, high) if t_test_power(mid, sd, k, alpha) < power else (low, mid)
    detectable = high
    needed = None
    if target > 0:
        needed = next((n for n in range(2, max_seeds + 1) if t_test_power(target, sd, n, alpha) >= power), None)
    return SeedBudget(k, sd, alpha, power, detectable, target, needed, floor)
