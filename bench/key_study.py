"""The key-token study on its built-in task with every default, end to end, on this machine.

    .venv/bin/python bench/key_study.py [--workers 2] [--steps N] [--seeds 0,1,2] [--ks 3] [--method ig]
                                        [--out DIR]    # finished runs in DIR are read back, not retrained

What a user does with the app's defaults, in one process pool: a `before` run on synthetic-keyfacts with
the Launch page's default student and evaluation (cotdistill.studies.testbed.FIRST_RUN's) and the study's own
training (testbed.KEY_STUDY["train"]: 300 steps at lr 3e-3), the attribution the Key tokens page proposes for the task (testbed.KEY_STUDY's method)
over every training rationale, then the study's arms (label only, full rationale after, key tokens top k, random
k; testbed.KEY_STUDY's ks and seeds) with the same training settings, `--workers` runs at a time with
one torch thread each (as `cotdistill up` runs two on a 2-core machine). Prints the attribution's
agreement with the known fact words, each arm's accuracy per seed, the procedure-level verdicts
(cotdistill.stats.inference.procedure_diff over seed pairs) and the wall times. Goal: the study (after the
attribution) finishes within 10 minutes on 2 idle CPU cores with full ≈ key tokens > random k ≥ label
only; the baseline printed beside it is the sum of the runs' own durations (one worker, back to back).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
GOAL_S = 600.0


def train_one(cfg_map: dict, folder: str) -> tuple[str, dict, float]:
    """Train one run in `folder`; a folder that holds a finished run of the same config is read back."""
    import torch
    torch.set_num_threads(1)
    from cotdistill.config import RunConfig, from_dict
    from cotdistill.run import run
    cfg = from_dict(RunConfig, cfg_map)
    done, took_file = Path(folder) / "summary.json", Path(folder) / "bench_seconds.txt"
    if done.exists() and json.loads(done.read_text()).get("config_hash", cfg.hash()) == cfg.hash():
        return folder, json.loads(done.read_text()), float(took_file.read_text()) if took_file.exists() else 0.0
    t0 = time.time()
    summary = run(cfg, Path(folder))
    took_file.write_text(f"{time.time() - t0:.1f}")
    return folder, summary, time.time() - t0


def base_config(steps: int | None) -> dict:
    from cotdistill.studies.testbed import FIRST_RUN, KEY_STUDY
    base = copy.deepcopy(FIRST_RUN["base"])
    base["data"] = {"name": KEY_STUDY["dataset"], "options": {}}
    base["train"] = {**base["train"], **KEY_STUDY["train"]}      # the study's own training (as measured)
    if steps:
        base["train"]["steps"] = steps
    return base


def variants(ks: list[int], scores_file: str) -> dict[str, tuple[str, dict]]:
    out = {"label only": ("none", {"kind": "none"}), "full rationale": ("after", {"kind": "none"})}
    for k in ks:
        out[f"key tokens k={k}"] = ("after", {"kind": "key_tokens", "level": "word",
                                              "params": {"k": k, "order": "original"}, "scores_file": scores_file})
        out[f"random k={k}"] = ("after", {"kind": "random_subset", "level": "word", "params": {"k": k}})
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--steps", type=int, default=None, help="training steps (default: the Launch page's)")
    parser.add_argument("--seeds", default=None, help="default: testbed.KEY_STUDY's")
    parser.add_argument("--ks", default=None, help="default: testbed.KEY_STUDY's")
    parser.add_argument("--out", default=None, help="folder of the runs; finished runs in it are read back")
    parser.add_argument("--method", default=None, help="attribution method (default: testbed.KEY_STUDY's)")
    parser.add_argument("--only", default=None, help="train only the arms whose name starts with this")
    parser.add_argument("--skip", default=None, help="leave out the arms whose name starts with this")
    args = parser.parse_args()
    import torch
    torch.set_num_threads(1)
    from cotdistill import attribution
    from cotdistill.stats import inference as stats
    from cotdistill.data import load_examples
    from cotdistill.studies.testbed import KEY_STUDY
    seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else KEY_STUDY["seeds"]
    ks = [int(k) for k in args.ks.split(",")] if args.ks else KEY_STUDY["ks"]
    out = Path(args.out or tempfile.mkdtemp(prefix="cotdistill-key-study-"))
    out.mkdir(parents=True, exist_ok=True)
    base = base_config(args.steps)
    print(f"{os.cpu_count()} CPU cores, {args.workers} worker(s) of 1 torch thread; {base['train']['steps']} steps; "
          f"ks {ks}; seeds {seeds}; out {out}", flush=True)

    t0 = time.time()
    scorer = {**copy.deepcopy(base), "placement": "before", "perturbation": {"kind": "none"}, "seed": 0,
              "name": "key-scorer"}
    folder, summary, took = train_one(scorer, str(out / "scorer"))
    losses = [json.loads(line) for line in open(Path(folder) / "metrics.jsonl") if '"label_loss"' in line]
    print(f"scorer (before): accuracy {summary['accuracy']:.3f}, label loss {losses[0]['label_loss']:.3f} -> "
          f"{losses[-1]['label_loss']:.3f}, {took:.0f} s", flush=True)

    t1 = time.time()
    train = load_examples(KEY_STUDY["dataset"], "train")
    student = attribution.load_scoring_model(folder)
    method = args.method or KEY_STUDY["method"]
    scores_file = str(out / f"scores-{method}.jsonl")
    if Path(scores_file).exists():                      # read back: the scores of an earlier pass
        results = [{**(row := json.loads(line)), "word_scores": row["scores"], "completeness_error": None}
                   for line in open(scores_file)]
    else:
        results = attribution.attribute(student.model, student.tokenizer, train, method=method, steps=32,
                                        device="cpu")
        attribution.write_scores(scores_file, results)
    s = attribution.summarize(results, time.time() - t1)
    print(f"attribution ({method}): {s['n']} examples, {time.time() - t1:.0f} s"
          + (f", completeness error mean {s['mean_completeness_error']:.2e}" if s["mean_completeness_error"] else ""),
          flush=True)
    print(attribution.agreement_text(attribution.agreement(results, train)), flush=True)

    t2 = time.time()
    arms = {arm: v for arm, v in variants(ks, scores_file).items() if (not args.only or arm.startswith(args.only))
            and not (args.skip and arm.startswith(args.skip))}
    jobs = {}
    with ProcessPoolExecutor(args.workers) as pool:
        for arm, (placement, pert) in arms.items():
            for seed in seeds:
                cfg = {**copy.deepcopy(base), "placement": placement, "perturbation": pert, "seed": seed,
                       "name": "key-study"}
                tag = arm.replace(" ", "_") + (f"-{method}" if arm.startswith("key") else "")
                jobs[(arm, seed)] = pool.submit(train_one, cfg, str(out / f"{tag}-{seed}"))
        done = {key: job.result() for key, job in jobs.items()}
    wall = time.time() - t2
    own = sum(took for _, _, took in done.values())
    accuracy = {arm: [done[(arm, s)][1]["accuracy"] for s in seeds] for arm in arms}
    collapsed = {arm: [bool(done[(arm, s)][1].get("collapsed")) for s in seeds] for arm in arms}
    print(f"\n{'arm':<18} {'mean':>6}   per seed")
    for arm, accs in accuracy.items():
        flags = " (constant answer: seeds " + ", ".join(str(s) for s, c in zip(seeds, collapsed[arm]) if c) + ")" \
            if any(collapsed[arm]) else ""
        print(f"{arm:<18} {sum(accs) / len(accs):>6.3f}   {' '.join(f'{a:.3f}' for a in accs)}{flags}")
    print(f"\n{'procedure A vs B':<36} {'diff':>7} {'95% CI':>18} {'p':>8}")
    pairs = [("full rationale", "label only")]
    for k in ks:
        pairs += [(f"key tokens k={k}", "label only"), (f"key tokens k={k}", f"random k={k}"),
                  (f"random k={k}", "label only"), (f"key tokens k={k}", "full rationale")]
    for a, b in [(a, b) for a, b in pairs if a in accuracy and b in accuracy]:
        r = stats.procedure_diff([x - y for x, y in zip(accuracy[a], accuracy[b])])
        ci = "" if r.low is None else f"[{r.low:+.3f}, {r.high:+.3f}]"
        p = "" if r.p_value is None else f"{r.p_value:.3g}"
        print(f"{a + ' vs ' + b:<36} {r.estimate:>+7.3f} {ci:>18} {p:>8}")
    print(f"\nstudy: {len(done)} runs in {wall:.0f} s wall with {args.workers} worker(s) (goal {GOAL_S:.0f} s: "
          f"{wall / GOAL_S:.2f} of it); the runs' own durations sum to {own:.0f} s (one worker back to back: "
          f"{own / wall:.2f}x the wall); scorer + attribution {t2 - t0:.0f} s before it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
