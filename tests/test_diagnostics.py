"""Label-bias diagnostics: exact values on hand-made evaluation records."""

import pytest

from cotdistill.evaluate.diagnostics import (accuracy_by_mode, collapse_check, diagnose, label_shares,
                                             majority_baseline, paired_basis, per_label_accuracy)

GOLD = ["a", "b", "c", "a", "b", "c", "a", "b"]          # a: 3, b: 3, c: 2


def records(predicted, gold=GOLD, prefix="e"):
    return [{"example_id": f"{prefix}{i}", "gold": g, "predicted": p, "correct": p == g}
            for i, (g, p) in enumerate(zip(gold, predicted))]


CONSTANT = records(["b"] * 8)                             # always answers (b)
CORRECT = records(GOLD)


def test_shares_of_labels_with_unparsed_and_pooled_labels():
    assert label_shares(["a", "b", None, "a"]) == {"a": 0.5, "b": 0.25, "(unparsed)": 0.25}
    assert label_shares(["2", "1", "2", "3"], max_labels=1) == {"2": 0.5, "(other)": 0.5}
    with pytest.raises(ValueError, match="no labels"):
        label_shares([])


def test_majority_baseline_and_per_label_accuracy_are_exact():
    assert majority_baseline(CONSTANT) == ("a", 0.375)               # a and b tie at 3/8: label order
    assert per_label_accuracy(CONSTANT) == {"a": 0.0, "b": 1.0, "c": 0.0}
    assert per_label_accuracy(CORRECT) == {"a": 1.0, "b": 1.0, "c": 1.0}
    assert per_label_accuracy(records(["a", "a", "c", "b", "b", "a", "a", "b"])) == \
        {"a": pytest.approx(2 / 3), "b": pytest.approx(2 / 3), "c": 0.5}


def test_a_constant_answer_is_flagged_with_both_reasons():
    d = diagnose(CONSTANT, accuracy_low=0.125, accuracy_high=0.75)
    assert d["prediction_distribution"] == {"b": 1.0}
    assert d["gold_distribution"] == {"a": 0.375, "b": 0.375, "c": 0.25}
    assert (d["majority_label"], d["majority_baseline"]) == ("a", 0.375)
    assert (d["top_prediction"], d["top_prediction_share"]) == ("b", 1.0)
    assert d["collapsed"] is True
    assert d["collapse_reason"].startswith("not distinguishable from a constant answer: ")
    assert "'b' covers 100% of 8 items (threshold 60%)" in d["collapse_reason"]
    assert "[0.125, 0.750] includes the majority baseline 0.375 (always answering 'a')" in d["collapse_reason"]


def test_a_correct_model_is_not_flagged():
    d = diagnose(CORRECT, accuracy_low=1.0, accuracy_high=1.0)
    assert d["collapsed"] is False and d["collapse_reason"] is None
    assert d["prediction_distribution"] == d["gold_distribution"] == {"a": 0.375, "b": 0.375, "c": 0.25}
    assert d["per_label_accuracy"] == {"a": 1.0, "b": 1.0, "c": 1.0} and d["accuracy_by_mode"] is None


def test_each_collapse_criterion_alone():
    varied = records(["a", "c", "b", "b", "a", "c", "c", "b"])       # top share 3/8: below the threshold
    assert collapse_check(varied, accuracy_low=0.4, accuracy_high=0.9) == (False, None)
    collapsed, reason = collapse_check(varied, accuracy_low=0.1, accuracy_high=0.4)
    assert collapsed and "includes the majority baseline" in reason and "covers" not in reason
    mostly_b = records(["b", "b", "b", "b", "b", "c", "a", "b"])      # 6/8 > 0.6, interval above baseline
    collapsed, reason = collapse_check(mostly_b, accuracy_low=0.5, accuracy_high=0.6)
    assert collapsed and "covers 75%" in reason and "baseline" not in reason
    assert collapse_check(mostly_b, accuracy_low=0.5, accuracy_high=0.6, threshold=0.8) == (False, None)


def test_accuracy_by_mode_reads_every_scoring():
    rows = records(["a", "b"], gold=["a", "c"])
    for row, (letter, calibrated) in zip(rows, [(True, True), (False, True)]):
        row["by_mode"] = {"letter": {"correct": letter}, "calibrated": {"correct": calibrated}}
    assert accuracy_by_mode(rows) == {"letter": 0.5, "calibrated": 1.0}


def test_paired_basis_warns_when_both_arms_are_constant():
    other_constant = list(reversed(records(["b"] * 7 + ["a"])))      # same items, another order
    basis = paired_basis(CONSTANT, other_constant)
    assert basis["constant"] is True and basis["n_paired"] == 8
    assert (basis["a_top_label"], basis["a_top_share"], basis["b_top_label"], basis["b_top_share"]) == \
        ("b", 1.0, "b", 0.875)
    assert basis["agreement"] == 0.875
    assert "both arms answer one constant label" in basis["warning"] and "not evidence of no difference" \
        in basis["warning"]


def test_paired_basis_is_quiet_unless_both_arms_are_constant():
    assert paired_basis(CONSTANT, CORRECT)["warning"] is None         # one arm constant only
    basis = paired_basis(CORRECT, records(["a", "b", "c", "a", "b", "c", "b", "a"]))
    assert basis["warning"] is None and basis["constant"] is False and basis["agreement"] == 0.75
    with pytest.raises(ValueError, match="share no example_id"):
        paired_basis(CONSTANT, records(GOLD, prefix="x"))


def test_a_correct_model_on_a_skewed_test_set_is_not_flagged():
    """Gold is 'a' on 7 of 10 items: a perfect model answers 'a' 70% of the time, no more than gold."""
    gold = ["a"] * 7 + ["b"] * 3
    assert collapse_check(records(gold, gold), accuracy_low=1.0, accuracy_high=1.0) == (False, None)
    collapsed, reason = collapse_check(records(["a"] * 10, gold), accuracy_low=0.9, accuracy_high=0.9)
    assert collapsed and "covers 100% of 10 items" in reason       # over-predicting the majority label


def yes_no(pairs):
    """Records from (gold, predicted, count) runs."""
    out = []
    for gold, predicted, count in pairs:
        out += [{"example_id": f"q{len(out) + i}", "gold": gold, "predicted": predicted,
                 "correct": gold == predicted} for i in range(count)]
    return out


def test_a_good_model_that_favours_the_majority_label_is_not_flagged():
    """Issue 11's case: 458 items, gold 53.3% 'no'; the model says 'no' on 62% and scores 0.825."""
    rows = yes_no([("no", "no", 224), ("no", "yes", 20), ("yes", "no", 60), ("yes", "yes", 154)])
    assert len(rows) == 458 and sum(r["correct"] for r in rows) == 378
    d = diagnose(rows, accuracy_low=0.790, accuracy_high=0.858)
    assert d["majority_label"] == "no" and d["majority_baseline"] == pytest.approx(244 / 458)
    assert d["top_prediction_share"] == pytest.approx(284 / 458)       # 62% > 60%: the old flag fired
    assert d["above_baseline_p"] < 1e-20
    assert d["collapsed"] is False and d["below_baseline"] is False and d["high_unparsed"] is False
    assert d["flags"] == [] and d["unparsed_rate"] == 0.0


def test_a_model_significantly_below_the_majority_baseline_is_flagged():
    rows = yes_no([("a", "b", 60), ("b", "b", 40)])                    # always 'b'; gold 60% 'a'
    d = diagnose(rows, accuracy_low=0.30, accuracy_high=0.50)
    assert d["below_baseline"] is True and d["below_baseline_p"] < 1e-4
    assert "accuracy 0.400 is significantly below the majority baseline 0.600 (always answering 'a'" \
        in d["below_baseline_reason"]
    assert d["collapsed"] is True and d["flags"] == [d["collapse_reason"], d["below_baseline_reason"]]
    # Just below the baseline by chance is not "significantly below".
    near = yes_no([("a", "a", 28), ("a", "b", 2), ("b", "b", 18), ("b", "a", 2)])
    assert diagnose(near, accuracy_low=0.8, accuracy_high=0.98)["below_baseline"] is False


def test_high_unparsed_rate_is_flagged_above_the_threshold():
    rows = yes_no([("a", "b", 60), ("b", "b", 40)])
    for r in rows[:21]:
        r["forced"] = True
    d = diagnose(rows, accuracy_low=0.3, accuracy_high=0.5)
    assert d["unparsed_rate"] == 0.21 and d["high_unparsed"] is True
    assert "no label parsed from the generation on 21% of 100 items (threshold 20%)" in d["unparsed_reason"]
    for r in rows[20:21]:
        r["forced"] = False
    assert diagnose(rows, accuracy_low=0.3, accuracy_high=0.5)["high_unparsed"] is False    # 20%: not above
    rows[0]["predicted"], rows[0]["forced"] = None, False                  # open answer, nothing to force
    assert diagnose(rows, accuracy_low=0.3, accuracy_high=0.5)["unparsed_rate"] == 0.20
