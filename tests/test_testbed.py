"""The testbed with known answers (cotdistill/studies/testbed.py) and its knobs in the counting task."""

from __future__ import annotations

import json
import shutil

import pytest

from cotdistill.studies import testbed
from cotdistill.config import RunConfig, from_dict
from cotdistill.data import load_examples
from cotdistill.errors import DataError
from cotdistill.sequences.placements import SequenceBuilder


# --- the counting task's rationale knobs ---------------------------------------------------------

def test_the_rationale_knobs_at_their_defaults_change_no_item():
    plain = load_examples("synthetic-count", "train", n_train=50)
    explicit = load_examples("synthetic-count", "train", n_train=50, fact_share=1.0, leak_rate=0.0)
    assert [(e.question, e.rationale, e.label) for e in plain] == [(e.question, e.rationale, e.label) for e in explicit]
    assert plain[0].rationale.count(" is ") == 4 and "answer" not in plain[0].rationale


def test_leak_rate_states_the_teachers_answer_and_fact_share_drops_facts():
    leaky = load_examples("synthetic-count", "train", n_train=400, leak_rate=1.0, teacher_accuracy=0.5)
    assert all(e.rationale.endswith(f" So the answer is ({e.teacher_label}).") for e in leaky)
    assert any(e.teacher_label != e.label for e in leaky)          # the teacher's answer, right or wrong
    noisy = load_examples("synthetic-count", "train", n_train=400, n_items=3, n_colours=2, fact_noise=1.0)
    clean = load_examples("synthetic-count", "train", n_train=400, n_items=3, n_colours=2)
    agree = [a == b for x, y in zip(noisy, clean) for a, b in zip(x.rationale.split(), y.rationale.split())]
    assert 0.75 < sum(agree) / len(agree) < 0.9       # names and "is" kept; colours right half the time
    assert [(e.question, e.label) for e in noisy] == [(e.question, e.label) for e in clean]
    none = load_examples("synthetic-count", "test", n_test=20, fact_share=0.0)
    assert {e.rationale for e in none} == {"Nothing recalled."}
    half = load_examples("synthetic-count", "train", n_train=400, fact_share=0.5)
    stated = sum(e.meta["facts_stated"] for e in half) / (4 * len(half))
    assert 0.45 < stated < 0.55
    # The questions and labels stay those of the plain task: only the rationale changes.
    plain = load_examples("synthetic-count", "train", n_train=400)
    assert [(e.question, e.label) for e in half] == [(e.question, e.label) for e in plain]


@pytest.mark.parametrize("option", ["fact_share", "fact_noise", "leak_rate"])
def test_a_rationale_knob_outside_zero_to_one_is_refused(option):
    with pytest.raises(DataError, match=rf"option '{option}' must be between 0 and 1, found 1.5"):
        load_examples("synthetic-count", "train", **{option: 1.5})


def test_fact_form_pair_states_each_colour_right_after_its_name_and_changes_nothing_else():
    pair = load_examples("synthetic-count", "train", n_train=30, n_items=3, n_colours=2, fact_form="pair")
    plain = load_examples("synthetic-count", "train", n_train=30, n_items=3, n_colours=2)
    assert pair[0].rationale == plain[0].rationale.replace(" is ", " ")
    assert pair[0].rationale.count(".") == 3 and " is " not in pair[0].rationale
    assert [(e.question, e.label) for e in pair] == [(e.question, e.label) for e in plain]
    with pytest.raises(DataError, match="option 'fact_form' must be one of sentence, pair, found 'list'"):
        load_examples("synthetic-count", "train", fact_form="list")


def test_asked_colours_one_asks_every_question_about_the_first_colour():
    one = load_examples("synthetic-count", "train", n_train=200, n_items=3, n_colours=2, n_objects=30, asked_colours=1)
    assert {e.meta["colour"] for e in one} == {"red"}
    assert all(e.meta["count"] == e.rationale.count(" red.") + e.rationale.startswith("red.") for e in one)
    both = load_examples("synthetic-count", "train", n_train=200, n_items=3, n_colours=2, n_objects=30)
    assert {e.meta["colour"] for e in both} == {"red", "blue"}
    explicit = load_examples("synthetic-count", "train", n_train=200, n_items=3, n_colours=2, n_objects=30, asked_colours=0)
    assert [e.question for e in explicit] == [e.question for e in both]          # 0, the default: all colours
    with pytest.raises(DataError, match="option 'asked_colours' must be an integer from 0 \\(all\\) to n_colours=2, found 3"):
        load_examples("synthetic-count", "train", n_colours=2, asked_colours=3)
    from cotdistill.data.counting import room_for      # one colour asked: a third of the 3-colour pool
    assert room_for({"n_objects": 20, "n_items": 3, "n_colours": 3, "asked_colours": 1}) == {"train": 456, "test": 114}


def test_shown_share_shows_some_colours_in_the_question_and_keeps_the_items():
    opts = dict(n_train=400, n_items=3, n_colours=2, n_objects=30, asked_colours=1)
    half = load_examples("synthetic-count", "train", shown_share=0.5, fact_form="pair", **opts)
    plain = load_examples("synthetic-count", "train", fact_form="pair", **opts)
    assert [(e.rationale, e.label) for e in half] == [(e.rationale, e.label) for e in plain]
    assert half[0].question == "Items: kada red, budu, mome red. How many are red?"      # seed 0's first item
    assert plain[0].question == "Items: kada, budu, mome. How many are red?"
    assert 0.45 < sum(e.meta["in_question"] for e in half) / (3 * len(half)) < 0.55
    every = load_examples("synthetic-count", "train", shown_share=1.0, fact_form="pair", **opts)
    assert all(e.question == f"Items: {e.rationale[:-1].replace('. ', ', ')}. How many are red?" for e in every)


def test_each_split_may_ask_at_most_half_of_its_pool():
    from cotdistill.data.counting import room_for
    # 20 objects, 3 items, 2 colours: C(20, 3) x 2 = 2,280 questions, one in five a test question
    assert room_for({"n_objects": 20, "n_items": 3, "n_colours": 2}) == {"train": 912, "test": 228}
    assert len(load_examples("synthetic-count", "test", n_objects=20, n_items=3, n_colours=2, n_train=900, n_test=228)) == 228
    with pytest.raises(DataError, match="229 test questions asked, but n_objects=20, n_items=3, n_colours=2 "
                                        "allow about 228: raise n_objects or n_items"):
        load_examples("synthetic-count", "test", n_objects=20, n_items=3, n_colours=2, n_train=900, n_test=229)


# --- the plan and the judging ------------------------------------------------------------------

def test_the_plan_trains_the_baseline_and_one_arm_per_control_on_the_testbed():
    plan = testbed.selftest_plan([0, 1], steps=50)
    assert [(c["placement"], c["perturbation"]["kind"], c["seed"]) for c in plan] == [
        ("none", "none", 0), ("none", "none", 1), ("after", "none", 0), ("after", "none", 1),
        ("after", "none", 0), ("after", "none", 1), ("after", "filler", 0), ("after", "filler", 1)]
    assert [c["data"]["options"].get("fact_noise") for c in plan[4:6]] == [1.0, 1.0]
    assert "fact_noise" not in plan[2]["data"]["options"]
    cfg = from_dict(RunConfig, plan[0])
    assert cfg.train.steps == 50 and cfg.data.options["n_items"] == 3 and cfg.student.name == "tiny"
    assert testbed.TESTBED_BASE["train"]["steps"] != 50          # the plan copies, never edits, the base


def test_judge_control_needs_a_significant_positive_difference_with_margin_for_better():
    positive, negative = testbed.CONTROLS[0], testbed.CONTROLS[1]
    assert testbed.judge_control(positive, 0.2, 0.001, n_pairs=3)["passed"] is True
    assert testbed.judge_control(positive, 0.2, 0.06)["found"] == "not better"
    assert testbed.judge_control(positive, -0.2, 0.001)["found"] == "not better"
    small = testbed.judge_control(positive, 0.05, 0.001, n_pairs=3)       # significant, but under the margin
    assert (small["found"], small["passed"]) == ("better, by less than +0.10", False)
    one = testbed.judge_control(positive, 0.3, None, n_pairs=1)            # one seed pair: no procedure test
    assert (one["found"], one["passed"]) == ("needs ≥ 2 seeds", False)
    assert testbed.judge_control(negative, -0.2, 0.001)["passed"] is True     # worse is "not better"
    assert testbed.judge_control(negative, 0.05, 0.01)["passed"] is False
    missing = testbed.judge_control(positive, None, None)
    assert missing["found"] == "no result" and missing["passed"] is False


def test_a_negative_control_where_both_arms_answer_a_constant_passes_marked_weak():
    negative = testbed.CONTROLS[2]
    flat = testbed.judge_control(negative, 0.0, 1.0, n_pairs=3, constant_pairs=2)
    assert flat["found"] == "not better (weak: both arms answer a constant label on 2 of 3 seed pairs)"
    assert flat["passed"] is True and flat["weak"] is True
    one = testbed.judge_control(negative, 0.0, 1.0, n_pairs=3, constant_pairs=1)
    assert one["found"] == "not better" and one["passed"] is True and one["weak"] is False
    # a gain found on constant answerers is still a failure (it cannot be: but the rule does not hide it)
    assert testbed.judge_control(negative, 0.2, 0.001, n_pairs=3, constant_pairs=3)["passed"] is False
    ok = {"control": "positive", "expected": "better", "found": "better", "passed": True}
    assert testbed.verdict([ok, flat]) == (
        "the pipeline detects what it should: every control came out as its construction implies (weak: "
        "negative: filler: label-only and the arm both answered a constant label on most seed pairs, so these "
        "show only that no gain was invented)")


def test_paired_result_judges_the_procedure_over_seed_pairs_and_reports_the_test_set():
    import math
    base = {0: {"a": False, "b": False, "c": True}, 1: {"a": False, "b": True, "c": True}, 9: {"a": True}}
    arm = {0: {"a": True, "b": True, "c": True}, 1: {"a": True, "b": True, "c": True}}
    r = testbed.paired_result(testbed.CONTROLS[0], base, arm, n_boot=200)
    # per-pair differences 2/3 and 1/3: mean 0.5, sd sqrt(2)/6, t = 3 with 1 df
    assert r["diff"] == pytest.approx(0.5) and r["n_pairs"] == 2
    assert r["p_value"] == pytest.approx(1 - 2 * math.atan(3) / math.pi)
    assert r["low"] == pytest.approx(0.5 - 12.7062047 * math.sqrt(2) / 6 / math.sqrt(2))
    assert r["test_p"] == pytest.approx(0.5)   # items: two differ, both for A: sign flip p = 2 / 4
    assert r["found"] == "not better"
    flags = {testbed.BASELINE: {0: True, 1: True}, testbed.CONTROLS[2].arm: {0: True, 1: False}}
    filler = testbed.paired_result(testbed.CONTROLS[2], base, base, collapsed=flags, n_boot=200)
    assert filler["constant_pairs"] == 1 and filler["passed"] is True       # one pair of two: not most
    flags[testbed.CONTROLS[2].arm][1] = True
    filler = testbed.paired_result(testbed.CONTROLS[2], base, base, collapsed=flags, n_boot=200)
    assert filler["found"].startswith("not better (weak") and filler["passed"] is True and filler["weak"]


def test_verdict_names_the_failed_control():
    ok = {"control": "positive", "expected": "better", "found": "better", "passed": True}
    bad = {"control": "negative: filler", "expected": "not better", "found": "better", "passed": False}
    assert testbed.verdict([ok]).startswith("the pipeline detects what it should")
    assert testbed.verdict([ok, bad]) == ("control 'negative: filler' failed: expected not better, found better")


def test_the_leak_control_flags_the_leaking_variant_and_not_the_clean_task():
    result = testbed.leak_result(lambda split, options: load_examples("synthetic-count", split, **options))
    assert result["passed"], result
    assert result["found"].endswith("flagged; clean task not flagged")
    # A report that misses the leak (here: the clean task given twice) fails the control.
    clean = lambda split, options: load_examples("synthetic-count", split, **testbed.TESTBED_DATA["options"])
    assert testbed.leak_result(clean)["passed"] is False


# --- the suite, trained ------------------------------------------------------------------------

# The CI size: three seeds at the self-test's own steps (TESTBED_BASE), 12 runs, and 2 more for the
# dropped-rationale check (its first two seeds). Two seeds are the fewest the procedure-level test can
# judge, but a paired t with 1 degree of freedom needs the two differences within about a tenth of each
# other, and label-only's accuracy at 200 steps depends on when its seed starts reading the colours
# shown in the question (README "The first experiment, and a testbed with known answers": measurements).
SEEDS = [0, 1, 2]


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    out = tmp_path_factory.mktemp("selftest")
    lines: list[str] = []
    results = testbed.run_selftest(SEEDS, out, echo=lines.append, device="cpu", workers=2)   # two at a time, as `up` runs them
    return out, results, lines


@pytest.mark.slow
def test_the_control_suite_passes_on_the_testbed(suite):
    out, results, lines = suite
    by_name = {r["control"]: r for r in results}
    assert set(by_name) == {"positive", "negative: random facts", "negative: filler", "leak"}
    positive = by_name["positive"]
    assert positive["found"] == "better" and positive["n_pairs"] == len(SEEDS)
    assert positive["diff"] >= testbed.MIN_GAIN and positive["p_value"] < testbed.ALPHA
    for name in ("negative: random facts", "negative: filler"):
        # "not better", marked weak where label-only and the arm both answer a constant on most seeds
        assert by_name[name]["found"].startswith("not better"), testbed.format_results(results)
    assert all(r["passed"] for r in results), testbed.format_results(results)
    assert lines[-1].startswith("the pipeline detects what it should")
    assert "procedure: diff [95% CI]" in lines[-2] and "test set [95% CI]" in lines[-2]
    assert len(list(out.glob("*/summary.json"))) == 4 * len(SEEDS)


@pytest.mark.slow
def test_a_pipeline_that_drops_the_rationale_fails_the_positive_control(suite, tmp_path, monkeypatch):
    out, _, _ = suite
    for folder in out.glob("none-none-*"):           # label-only is unaffected: reuse its finished runs
        shutil.copytree(folder, tmp_path / folder.name)
    seeds = SEEDS[:2]                                 # two seed pairs: the fewest the procedure judges
    monkeypatch.setattr(SequenceBuilder, "rationale_ids", lambda self, ex: [])
    monkeypatch.setattr(testbed, "CONTROLS", testbed.CONTROLS[:1])
    lines: list[str] = []
    results = testbed.run_selftest(seeds, tmp_path, echo=lines.append, device="cpu")
    positive = results[0]
    assert positive["control"] == "positive" and positive["found"] != "better" and not positive["passed"]
    assert "control 'positive' failed: expected better, found " in lines[-1]
    trained = [json.loads(line) for line in open(next(tmp_path.glob("after-none-*")) / "predictions.jsonl")]
    assert len(trained) == testbed.TESTBED_DATA["options"]["n_test"]
