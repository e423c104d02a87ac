"""Calibration of the verdicts: simulated experiments with a known truth.

    python bench/inference_calibration.py [--quick] [--reps N] [--power-reps N]

Each simulated experiment has 300 test items of varied difficulty (item logits ~ N(0, 1.5²)) and two
arms run on k seeds each (k = 2, 3, 5, 10). Every trained model (arm, seed) has its own skill offset,
a logit ~ N(0, sd²) with sd 0, 0.3 or 0.6: what a seed changes (initialisation, data order, dropout).
A model answers item i correctly with probability sigmoid(item_i + offset [+ shift for arm A]).

Per cell (sd, k) it prints the rejection rate at α = 0.05, with its Monte-Carlo standard error, of
- the primary test, stats.procedure_diff (paired t over the k seed-pair accuracy differences), when
  the arms are the same procedure (type-I error; goal 0.03–0.07 in every cell), and its power for a
  true accuracy difference of +0.05 and +0.10 (the logit shift calibrated to give that difference
  in expectation over items and models);
- beside it, the item-level test (stats.seed_paired_diff's p: the exact sign flip over items,
  stats.sign_flip_p), which treats the trained models as fixed: it answers "do these models differ
  on these items", so under a true null its rejection rate grows with the model-to-model spread.
Its last line is `type-I max <x> min <y>` over the cells (the primary test).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cotdistill.stats.inference import procedure_diff, sign_flip_p  # noqa: E402

N_ITEMS = 300
ITEM_SD = 1.5
SDS = (0.0, 0.3, 0.6)
KS = (2, 3, 5, 10)
EFFECTS = (0.05, 0.10)
ALPHA = 0.05
CHUNK = 250                                    # replicates simulated at once


NODES, WEIGHTS = np.polynomial.hermite_e.hermegauss(80)               # quadrature for the standard normal


def mean_gain(shift: float, sd: float) -> float:
    """E[sigmoid(u + shift) - sigmoid(u)] for u ~ N(0, ITEM_SD² + sd²) (item and model logit), by
    Gauss–Hermite quadrature."""
    nodes, weights = NODES, WEIGHTS
    u = nodes * math.sqrt(ITEM_SD ** 2 + sd ** 2)
    sig = lambda x: 1 / (1 + np.exp(-x))
    return float(np.sum(weights * (sig(u + shift) - sig(u))) / math.sqrt(2 * math.pi))


def logit_shift(target: float, sd: float) -> float:
    """The logit shift that raises expected accuracy by `target` (bisection)."""
    low, high = 0.0, 5.0
    for _ in range(60):
        mid = (low + high) / 2
        low, high = (mid, high) if mean_gain(mid, sd) < target else (low, mid)
    return (low + high) / 2


def simulate(rng: np.random.Generator, reps: int, k: int, sd: float, shift: float) -> np.ndarray:
    """Correctness of `reps` experiments: (reps, arm 2, seed k, items) bools; arm 0 is A (shifted)."""
    items = rng.normal(0, ITEM_SD, size=(reps, 1, 1, N_ITEMS))
    offsets = rng.normal(0, sd, size=(reps, 2, k, 1)) if sd else np.zeros((reps, 2, k, 1))
    logits = items + offsets + np.array([shift, 0.0])[None, :, None, None]
    return rng.random((reps, 2, k, N_ITEMS)) < 1 / (1 + np.exp(-logits))


def primary_p(per_pair: np.ndarray) -> np.ndarray:
    """stats.procedure_diff's p-value for each row of per-seed-pair differences (replicates, k), computed
    for all rows at once (the same paired t; `rejections` checks rows against procedure_diff itself)."""
    from scipy import stats
    k = per_pair.shape[1]
    mean, sd = per_pair.mean(axis=1), per_pair.std(axis=1, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.minimum(1.0, 2 * stats.t.sf(np.abs(mean) / (sd / math.sqrt(k)), k - 1))
    return np.where(sd == 0, np.where(mean == 0, 1.0, 0.0), p)


def rejections(rng: np.random.Generator, reps: int, k: int, sd: float, shift: float,
               item_reps: int = 0) -> tuple[int, int]:
    """(primary rejections over `reps` simulated experiments, item-level rejections over the first
    `item_reps` of them)."""
    primary = item = 0
    for start in range(0, reps, CHUNK):
        correct = simulate(rng, min(CHUNK, reps - start), k, sd, shift).astype(np.int8)
        diffs = correct[:, 0] - correct[:, 1]                          # (reps, seed pairs, items)
        per_pair = diffs.mean(axis=2)
        p = primary_p(per_pair)
        for row in range(3):                                           # the real function, to the last bit
            assert math.isclose(procedure_diff(per_pair[row]).p_value, p[row], rel_tol=1e-9, abs_tol=1e-15)
        primary += int(np.sum(p < ALPHA))
        for d in diffs[:max(0, item_reps - start)]:
            item += sign_flip_p(d.mean(axis=0), k) < ALPHA
    return primary, item


def rate(hits: int, n: int) -> tuple[float, float]:
    r = hits / n
    return r, math.sqrt(r * (1 - r) / n)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer replicates: under a minute on 2 cores")
    ap.add_argument("--reps", type=int, default=None, help="null replicates per cell (default 20000; quick 2000)")
    ap.add_argument("--power-reps", type=int, default=None, help="replicates per effect (default 4000; quick 500)")
    ap.add_argument("--item-reps", type=int, default=None,
                    help="null replicates of the (slower) item-level test (default 2000; quick 150)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    reps = args.reps or (2000 if args.quick else 20000)
    power_reps = args.power_reps or (500 if args.quick else 4000)
    item_reps = min(reps, args.item_reps or (150 if args.quick else 2000))
    t0 = time.perf_counter()
    print(f"{N_ITEMS} items (logit sd {ITEM_SD}), alpha {ALPHA}; per cell {reps} null and {power_reps} power "
          f"replicates of the primary test, paired t over seed pairs (stats.procedure_diff), and {item_reps} null "
          f"replicates of the item-level test, exact sign flip over items (stats.seed_paired_diff's p)")
    print(f"{'model sd':>8} {'k':>3}  {'type-I primary ± MC se':>23}  {'type-I item-level':>17}  "
          f"{'power +0.05':>11}  {'power +0.10':>11}")
    type_one = []
    shifts = {sd: {e: logit_shift(e, sd) for e in EFFECTS} for sd in SDS}
    for sd in SDS:
        for k in KS:
            rng = np.random.default_rng([args.seed, int(sd * 10), k])
            primary, item = rejections(rng, reps, k, sd, 0.0, item_reps)
            r, se = rate(primary, reps)
            type_one.append(r)
            powers = [rate(rejections(rng, power_reps, k, sd, shifts[sd][e])[0], power_reps)[0] for e in EFFECTS]
            print(f"{sd:>8.1f} {k:>3}  {r:>14.3f} ± {se:.3f}  {item / item_reps:>17.3f}  "
                  f"{powers[0]:>11.3f}  {powers[1]:>11.3f}", flush=True)
    print("logit shifts: " + "; ".join(f"sd {sd}: " + ", ".join(f"+{e:.2f} -> {shifts[sd][e]:.3f}" for e in EFFECTS)
                                       for sd in SDS))
    print(f"{time.perf_counter() - t0:.0f} s")
    print(f"type-I max {max(type_one):.3f} min {min(type_one):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
