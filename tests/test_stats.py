"""Tests for cotdistill.stats.inference against hand-computed values."""

import math

import numpy as np
import pytest

import cotdistill.stats.inference as stats
from cotdistill.stats.inference import (Interval, McNemarResult, accuracy, bootstrap_ci, cluster_bootstrap_ci,
                                        mcnemar_exact, mean_ci, paired_bootstrap_diff)


def discordant(a_only: int, b_only: int, both: int = 3, neither: int = 2) -> tuple[list, list]:
    """Paired correctness vectors with the given discordant counts."""
    a = [True] * a_only + [False] * b_only + [True] * both + [False] * neither
    b = [False] * a_only + [True] * b_only + [True] * both + [False] * neither
    return a, b


# ---------------------------------------------------------------- accuracy and Interval

def test_accuracy():
    assert accuracy([True, False, True, True]) == 0.75
    assert accuracy([1, 0, 0, 0, 0]) == 0.2


def test_interval_str_and_dict():
    interval = Interval(0.6123, 0.58, 0.644)
    assert str(interval) == "0.612 [0.580, 0.644]"
    assert interval.to_dict() == {"estimate": 0.6123, "low": 0.58, "high": 0.644, "confidence": 0.95}


# ---------------------------------------------------------------- McNemar

@pytest.mark.parametrize("a_only, b_only, p", [
    (1, 6, 0.125),          # 2 * (C(7,0) + C(7,1)) / 2^7 = 2 * 8 / 128
    (6, 1, 0.125),          # symmetric
    (0, 0, 1.0),            # no discordant pairs
    (5, 5, 1.0),            # 2 * 638 / 1024 > 1, capped
    (2, 8, 0.109375),       # 2 * (1 + 10 + 45) / 2^10 = 112 / 1024
    (0, 3, 0.25),           # 2 * 1 / 8
])
def test_mcnemar_exact_hand_values(a_only, b_only, p):
    a, b = discordant(a_only, b_only)
    assert mcnemar_exact(a, b) == McNemarResult(a_only, b_only, p)


def test_mcnemar_large_counts_stay_exact():
    # 0 vs 2000 discordant: p = 2 / 2^2000, which underflows to 0.0 only at the final float conversion.
    a, b = discordant(0, 2000)
    assert mcnemar_exact(a, b).p_value == 0.0
    a, b = discordant(40, 60)
    assert 0.05 < mcnemar_exact(a, b).p_value < 0.06  # 2 * P(Bin(100, .5) <= 40) = 0.0569


# ---------------------------------------------------------------- mean_ci

def test_mean_ci_t_interval():
    interval = mean_ci([0.5, 0.6, 0.7])
    # t(0.975, df=2) has a closed form: 0.95 * sqrt(2 / (4 * 0.975 * 0.025)) = 4.3026527297494639...
    # (the often-quoted 4.302652729911275 is off in the tenth digit).
    t = 0.95 * math.sqrt(2 / (4 * 0.975 * 0.025))
    assert t == pytest.approx(4.302652729749464, abs=1e-14)
    half = t * 0.1 / math.sqrt(3)
    assert interval.estimate == pytest.approx(0.6, abs=1e-12)
    assert interval.low == pytest.approx(0.6 - half, abs=1e-12)
    assert interval.high == pytest.approx(0.6 + half, abs=1e-12)
    assert interval.confidence == 0.95


def test_mean_ci_single_value_has_nan_bounds():
    interval = mean_ci([0.7])
    assert interval.estimate == 0.7 and math.isnan(interval.low) and math.isnan(interval.high)


def test_mean_ci_identical_values_has_zero_width():
    interval = mean_ci([0.4, 0.4, 0.4])
    assert interval.estimate == pytest.approx(0.4, abs=1e-15)
    assert interval.high - interval.low == pytest.approx(0.0, abs=1e-15)


# ---------------------------------------------------------------- bootstrap

def test_bootstrap_all_ones():
    interval = bootstrap_ci([True] * 50)
    assert (interval.estimate, interval.low, interval.high) == (1.0, 1.0, 1.0)


def test_bootstrap_matches_normal_approximation():
    values = np.array([1] * 600 + [0] * 400)
    interval = bootstrap_ci(values)
    half = 1.96 * math.sqrt(0.24 / 1000)
    assert interval.estimate == pytest.approx(0.6, abs=1e-12)
    assert abs(interval.low - (0.6 - half)) < 0.005
    assert abs(interval.high - (0.6 + half)) < 0.005


def test_cluster_bootstrap_resamples_questions_not_rows():
    """Why (issue 23): 150 questions kept 3 rows each were reported with an interval as if there were
    450 independent items. Two questions of three identical rows each: a resample draws the right
    question twice (1.0), once (0.5) or never (0.0), so the 95% interval is [0, 1]."""
    values, clusters = [1, 1, 1, 0, 0, 0], ["q1"] * 3 + ["q2"] * 3
    interval = cluster_bootstrap_ci(values, clusters, n_boot=4000, seed=0)
    assert (interval.estimate, interval.low, interval.high) == (0.5, 0.0, 1.0)
    assert bootstrap_ci(values, n_boot=4000, seed=0).high < 1.0        # rows: too narrow
    # 300 questions x 3 identical rows: as wide as 300 items, not 900
    rows = np.repeat(np.array([1] * 180 + [0] * 120), 3)
    by_question = cluster_bootstrap_ci(rows, np.repeat(np.arange(300), 3), seed=1)
    alone = bootstrap_ci(np.array([1] * 180 + [0] * 120), seed=1)
    assert by_question.estimate == pytest.approx(0.6)
    assert abs((by_question.high - by_question.low) - (alone.high - alone.low)) < 0.01
    with pytest.raises(ValueError, match="clusters has 2 entries for 6 values"):
        cluster_bootstrap_ci(values, ["a", "b"])


def test_bootstrap_same_seed_same_interval_other_seed_differs():
    # Continuous values: with 0/1 values the quantiles sit on multiples of 1/n and seeds often agree.
    values = np.random.default_rng(7).random(300)
    assert bootstrap_ci(values, seed=3) == bootstrap_ci(values, seed=3)
    assert bootstrap_ci(values, seed=3) != bootstrap_ci(values, seed=4)


def test_bootstrap_does_not_depend_on_chunk_size(monkeypatch):
    values = np.random.default_rng(1).random(1221) < 0.6
    whole = bootstrap_ci(values, n_boot=2000)
    monkeypatch.setattr(stats, "_MAX_CHUNK_ELEMENTS", 1221 * 7)  # 7 resamples per chunk, ragged end
    assert bootstrap_ci(values, n_boot=2000) == whole


def test_bootstrap_confidence_widens_interval():
    values = np.random.default_rng(2).random(200) < 0.5
    narrow, wide = bootstrap_ci(values, confidence=0.5), bootstrap_ci(values, confidence=0.99)
    assert wide.low < narrow.low < narrow.high < wide.high
    assert wide.confidence == 0.99


def test_paired_identical_vectors():
    a = list(np.random.default_rng(3).random(100) < 0.5)
    interval = paired_bootstrap_diff(a, a)
    assert (interval.estimate, interval.low, interval.high) == (0.0, 0.0, 0.0)


def test_paired_difference_estimate_is_exact():
    b = list(np.random.default_rng(4).random(300) < 0.5)
    a = list(b)
    wrong_in_b = [i for i, x in enumerate(b) if not x][:30]
    for i in wrong_in_b:
        a[i] = True
    interval = paired_bootstrap_diff(a, b)
    assert interval.estimate == 0.1
    assert 0 < interval.low < 0.1 < interval.high
    assert paired_bootstrap_diff(a, b, seed=9) == paired_bootstrap_diff(a, b, seed=9)


# ---------------------------------------------------------------- errors

@pytest.mark.parametrize("call, message", [
    (lambda: bootstrap_ci([]), "values is empty"),
    (lambda: bootstrap_ci([0.1, float("nan")]), "non-finite values at positions \\[1\\]"),
    (lambda: bootstrap_ci([1, 0], confidence=1.0), "confidence must be strictly between 0 and 1"),
    (lambda: bootstrap_ci([1, 0], confidence=0), "confidence"),
    (lambda: bootstrap_ci([1, 0], n_boot=0), "n_boot must be a positive int"),
    (lambda: paired_bootstrap_diff([1, 0], [1]), "a has 2, b has 1"),
    (lambda: paired_bootstrap_diff([], []), "a is empty"),
    (lambda: mcnemar_exact([True], [True, False]), "same length"),
    (lambda: mcnemar_exact([True, 0.5], [True, False]), "True/False or 1/0.*positions \\[1\\]"),
    (lambda: mean_ci([]), "values is empty"),
    (lambda: mean_ci([0.5, 0.6], confidence=95), "confidence"),
    (lambda: accuracy([]), "correct is empty"),
    (lambda: accuracy([2, 1]), "correctness values"),
])
def test_errors_name_the_problem(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_bootstrap_of_few_values_matches_index_resampling(monkeypatch):
    """The multinomial shortcut for 0/1 (and -1/0/1) values draws from the same distribution as
    resampling items: the two intervals agree to within Monte-Carlo noise."""
    rng = np.random.default_rng(0)
    a, b = rng.random(800) < 0.6, rng.random(800) < 0.5
    fast = paired_bootstrap_diff(a, b, n_boot=20_000)
    monkeypatch.setattr("cotdistill.stats.inference._FEW_VALUES", 0)
    slow = paired_bootstrap_diff(a, b, n_boot=20_000)
    assert fast.estimate == slow.estimate
    assert abs(fast.low - slow.low) < 0.006 and abs(fast.high - slow.high) < 0.006


# ---------------------------------------------------------------- across seeds

def fixes_and_breaks(n: int = 300, fixes: int = 30, breaks: int = 15, both: int = 150) -> tuple[list, list]:
    """One seed pair: arm A fixes `fixes` items and breaks `breaks` (issue 11's constructed case)."""
    a = [True] * fixes + [False] * breaks + [True] * both + [False] * (n - fixes - breaks - both)
    b = [False] * fixes + [True] * breaks + [True] * both + [False] * (n - fixes - breaks - both)
    return a, b


def test_one_seed_pair_is_the_paired_bootstrap_and_mcnemar():
    a, b = fixes_and_breaks()
    result = stats.seed_paired_diff([a], [b])
    assert result.interval.estimate == pytest.approx(0.05)
    assert result.interval.low == pytest.approx(0.007, abs=0.002)
    assert result.interval.high == pytest.approx(0.093, abs=0.002)
    # 2 * P(Bin(45, 1/2) <= 15), and the combined test with one pair is exactly McNemar's.
    assert result.p_value == pytest.approx(0.0356978, rel=1e-5)
    assert result.per_pair == (McNemarResult(30, 15, result.p_value),)
    assert result.p_value == mcnemar_exact(a, b).p_value
    assert result.n_items == 300 and not result.resampled_seeds


def test_five_identical_seed_pairs_are_no_more_certain_than_one():
    a, b = fixes_and_breaks()
    one = stats.seed_paired_diff([a], [b])
    five = stats.seed_paired_diff([a] * 5, [b] * 5)
    assert five.resampled_seeds and "two-stage" in five.interval_method
    assert five.interval.estimate == pytest.approx(0.05)
    # Pooling (seed, item) pairs gave [0.031, 0.069] and p = 6.4e-7; copies of evidence add nothing.
    assert (five.interval.high - five.interval.low) >= (one.interval.high - one.interval.low) - 0.004
    assert five.p_value >= one.p_value * (1 - 1e-9)
    assert [r.p_value for r in five.per_pair] == [one.p_value] * 5


def test_varying_seeds_estimate_is_the_mean_of_per_seed_differences():
    rng = np.random.default_rng(3)
    a = rng.random((3, 50)) < 0.7
    b = rng.random((3, 50)) < 0.5
    result = stats.seed_paired_diff(a, b, n_boot=500)
    per_seed = [a[s].mean() - b[s].mean() for s in range(3)]
    assert result.per_pair_diff == pytest.approx(per_seed, abs=1e-15)
    assert result.interval.estimate == pytest.approx(sum(per_seed) / 3, abs=1e-15)
    assert [r.a_only for r in result.per_pair] == [int(np.sum(a[s] & ~b[s])) for s in range(3)]


def test_sign_flip_exact_hand_value():
    # Per-item mean differences over 2 seeds (0, 1/2, 1, 1/2): k = (0, 1, 2, 1), T = 4; of the 8 sign
    # patterns of the nonzero items, T = +4 and T = -4 occur once each.
    assert stats.sign_flip_p(np.array([0, 0.5, 1, 0.5]), 2) == pytest.approx(0.25)
    assert stats.sign_flip_p(np.array([0.0, 0.0]), 3) == 1.0


def test_seed_paired_errors_name_the_problem():
    with pytest.raises(ValueError, match="same \\(seed pairs x items\\) table"):
        stats.seed_paired_diff([[1, 0]], [[1, 0], [0, 1]])
    with pytest.raises(ValueError, match="correctness values.*\\(seed pair, item\\) \\[\\[0, 1\\]\\]"):
        stats.seed_paired_diff([[1, 0.5]], [[1, 0]])
    with pytest.raises(ValueError, match="one row per seed pair"):
        stats.seed_paired_diff([[1, 0], [1]], [[1, 0], [1]])


def test_two_stage_pattern_shortcut_matches_item_resampling(monkeypatch):
    """Drawing item counts per pattern of differences gives the same intervals as drawing items."""
    rng = np.random.default_rng(0)
    base = rng.random(600) < 0.6
    a = np.array([base ^ (rng.random(600) < 0.1) for _ in range(5)])
    b = np.array([base ^ (rng.random(600) < 0.15) for _ in range(5)])
    fast = stats.seed_paired_diff(a, b, n_boot=20_000)
    monkeypatch.setattr("cotdistill.stats.inference._FEW_PATTERNS", 0)
    slow = stats.seed_paired_diff(a, b, n_boot=20_000)
    assert fast.interval.estimate == slow.interval.estimate and fast.p_value == slow.p_value
    assert abs(fast.interval.low - slow.interval.low) < 0.004
    assert abs(fast.interval.high - slow.interval.high) < 0.004


# ---------------------------------------------------------------- the procedure: seeds as the unit

def test_procedure_diff_is_scipys_paired_t_test():
    from scipy import stats as st
    diffs = [0.14, 0.04, 0.20]
    r = stats.procedure_diff(diffs)
    t = st.ttest_1samp(diffs, 0.0)
    assert r.p_value == pytest.approx(float(t.pvalue), rel=1e-12)
    half = st.t.ppf(0.975, 2) * np.std(diffs, ddof=1) / math.sqrt(3)
    assert (r.low, r.high) == (pytest.approx(0.38 / 3 - half), pytest.approx(0.38 / 3 + half))
    assert r.estimate == pytest.approx(0.38 / 3) and r.n_pairs == 3 and r.verdict == "not significant"
    # the same seeds against paired samples: ttest_rel on the per-seed accuracies gives the same p
    a, b = [0.54, 0.44, 0.60], [0.40, 0.40, 0.40]
    assert stats.procedure_diff(np.subtract(a, b)).p_value == pytest.approx(float(st.ttest_rel(a, b).pvalue))


def test_procedure_diff_with_one_seed_pair_needs_two_seeds():
    r = stats.procedure_diff([0.12])
    assert (r.estimate, r.low, r.high, r.p_value, r.sd) == (0.12, None, None, None, None)
    assert r.verdict == "needs ≥ 2 seeds" == stats.NEEDS_SEEDS
    assert r.to_dict()["verdict"] == "needs ≥ 2 seeds"


def test_procedure_diff_without_spread():
    assert stats.procedure_diff([0.0, 0.0, 0.0]).p_value == 1.0
    same = stats.procedure_diff([0.1, 0.1])
    assert (same.p_value, same.low, same.high, same.verdict) == (0.0, 0.1, 0.1, "significant")


def test_t_test_power_against_a_hand_value():
    # k = 10, sd = 1, difference 1: the noncentral t with df 9 and ncp sqrt(10); R's power.t.test
    # (type = "one.sample") gives 0.8030962.
    assert stats.t_test_power(1.0, 1.0, 10) == pytest.approx(0.8030962, abs=1e-6)
    assert stats.t_test_power(0.0, 1.0, 10) == pytest.approx(0.05)
    assert stats.t_test_power(1.0, 1.0, 1) == 0.0


def test_seed_budget():
    b = stats.seed_budget([0.14, 0.04, 0.20])
    assert b.n_pairs == 3 and b.sign_flip_floor == 0.25
    assert stats.t_test_power(b.detectable, b.sd, 3) == pytest.approx(0.8, abs=1e-9)
    assert b.target == pytest.approx(0.38 / 3)
    k = b.seeds_for_target          # the smallest k with power >= 0.8 for the observed difference
    assert stats.t_test_power(b.target, b.sd, k) >= 0.8 > stats.t_test_power(b.target, b.sd, k - 1)
    assert stats.seed_budget([0.1, 0.3], target=0.05).target == 0.05
    one = stats.seed_budget([0.2])
    assert (one.sd, one.detectable, one.seeds_for_target, one.sign_flip_floor) == (None, None, None, 1.0)
    assert stats.seed_budget([0.1] * 6).sign_flip_floor == pytest.approx(2 / 64)
