"""The app's pure pieces with exact expected values: the token heatmap, the accuracy chart, the launch
matrix, the run progress and the example filters."""

import pytest

from app import charts, matrix, tables
from app.components import collapse_note, format_duration, token_heatmap_html
from tests.app.apptest import decode

ARMS = [
    {"arm_key": "k1", "arm": "after/none", "dataset": "d", "student": "tiny", "placement": "after",
     "perturbation": "none", "runs": [1, 2], "seeds": [0, 1], "accuracies": [0.5, 0.7], "collapsed": [False, False],
     "mean": 0.6, "low": 0.45, "high": 0.75, "n_seeds": 2},
    {"arm_key": "k2", "arm": "none/none", "dataset": "d", "student": "tiny", "placement": "none",
     "perturbation": "none", "runs": [3], "seeds": [0], "accuracies": [0.25], "collapsed": [True],
     "mean": 0.25, "low": None, "high": None, "n_seeds": 1},
    {"arm_key": "k3", "arm": "after/mask(mode=drop,p=0.5)", "dataset": "d", "student": "tiny",
     "placement": "after", "perturbation": "mask", "runs": [4, 5], "seeds": [0, 1], "accuracies": [0.4, 0.6],
     "mean": 0.5, "low": 0.3, "high": 0.7, "n_seeds": 2},          # no `collapsed`: an older API
]


# ------------------------------------------------------------------------------------------ heatmap

def test_token_heatmap_escapes_text_and_shades_by_score():
    body = token_heatmap_html(["<script>", " a&b", "\n", "ok"], [1.0, 0.5, 0.0, -1.0])
    assert "<script>" not in body and "&lt;script&gt;" in body and " a&amp;b" in body
    spans = body.split("<span")[1:]
    assert len(spans) == 4
    assert "rgba(34,139,34,0.550)" in spans[0]           # the top score: full shade (0.55 opacity)
    assert "rgba(34,139,34,0.275)" in spans[1]           # half the top score: half the shade
    assert "rgba(34,139,34,0.000)" in spans[2]           # zero: no shade
    assert "rgba(200,40,40,0.550)" in spans[3]           # negative scores shade red
    assert 'title="0.5"' in spans[1] and "white-space: pre-wrap" in body


def test_token_heatmap_rejects_misaligned_scores():
    with pytest.raises(ValueError, match="3 tokens but 2 scores"):
        token_heatmap_html(["a", "b", "c"], [1, 0])


# ------------------------------------------------------------------------------------------ chart

def test_accuracy_bars_carry_means_intervals_and_seed_dots():
    spec = charts.accuracy_bars(ARMS, {3: "always answers 'b'"}).to_plotly_json()
    bars = [t for t in spec["data"] if t["type"] == "bar"]
    by_name = {(tuple(decode(b["x"][0])), tuple(decode(b["x"][1]))): b for b in bars}
    after_none = by_name[(("after",), ("none",))]
    assert decode(after_none["y"]) == [0.6]
    assert decode(after_none["error_y"]["array"]) == pytest.approx([0.15])
    assert decode(after_none["error_y"]["arrayminus"]) == pytest.approx([0.15])
    assert by_name[(("none",), ("none",))].get("error_y") is None          # one seed: no interval
    dots = [t for t in spec["data"] if t["type"] == "scatter" and t["mode"] == "markers"]
    assert sorted(decode(v) for d in dots for v in decode(d["y"])) == [0.25, 0.4, 0.5, 0.6, 0.7]


def test_accuracy_bars_mark_only_arms_with_a_collapsed_run():
    spec = charts.accuracy_bars(ARMS, {3: "always answers 'b'"}).to_plotly_json()
    markers = [t for t in spec["data"] if t.get("mode") == "text"]
    assert len(markers) == 1
    assert decode(markers[0]["x"][0]) == ["none"] and markers[0]["text"] == ["⚠"]
    assert "always answers 'b'" in markers[0]["hovertext"][0]
    assert markers[0]["name"] == charts.COLLAPSED


def test_accuracy_bars_one_panel_per_dataset_and_student():
    other = dict(ARMS[0], dataset="e", arm_key="k9")
    layout = charts.accuracy_bars([ARMS[0], other]).to_plotly_json()["layout"]
    assert [a["text"] for a in layout["annotations"]] == ["d · tiny", "e · tiny"]


# ------------------------------------------------------------------------------------------ matrix

def test_perturbation_variants_sweep_the_listed_values():
    variants = matrix.perturbation_variants("mask", level="word", values={"p": [0.25, 0.5]}, fixed={"mode": "drop"})
    assert variants == [{"kind": "mask", "level": "word", "params": {"mode": "drop", "p": 0.25}},
                        {"kind": "mask", "level": "word", "params": {"mode": "drop", "p": 0.5}}]
    assert matrix.parse_list("same, 4", matrix.int_or_same, "length") == ["same", 4]
    with pytest.raises(ValueError, match="seeds: 'x' is not a valid value"):
        matrix.parse_list("0, x", int, "seeds")


def test_build_matrix_makes_every_multiple_choice_a_factor():
    students = matrix.student_entries(["tiny:small", "smollm2-135m"], " org/model ", vocab_size=512, max_length=128)
    assert students == [{"name": "tiny", "size": "small", "vocab_size": 512, "max_length": 128},
                        {"name": "smollm2-135m", "max_length": 128}, {"name": "org/model", "max_length": 128}]
    m = matrix.build_matrix(" e1 ", datasets=["synthetic"], students=students[:1], placements=["after"],
                            perturbations=[{"kind": "none"}], seeds=[0, 1], data={"n_train": 10}, train={"steps": 5})
    assert m["name"] == "e1" and m["factors"]["seed"] == [0, 1] and m["factors"]["data.name"] == ["synthetic"]
    assert m["base"] == {"data": {"n_train": 10}, "train": {"steps": 5}, "eval": {}}
    with pytest.raises(ValueError, match="placement"):
        matrix.build_matrix("e1", datasets=["synthetic"], students=students, placements=[],
                            perturbations=[{"kind": "none"}], seeds=[0])


def test_students_at_size_keys_are_added_only_where_they_differ_from_the_defaults():
    assert matrix.size_options() == {}
    at_size = matrix.size_options(lora_r=8, gradient_checkpointing=True, attn_implementation="eager", dtype="bfloat16")
    assert at_size == {"lora": {"r": 8, "alpha": 16}, "gradient_checkpointing": True,
                       "attn_implementation": "eager", "dtype": "bfloat16"}
    students = matrix.student_entries(["tiny:tiny"], "org/m", vocab_size=300, max_length=64,
                                      at_size=matrix.size_options(lora_r=4))
    assert students == [{"name": "tiny", "size": "tiny", "vocab_size": 300, "max_length": 64, "lora": {"r": 4, "alpha": 8}},
                        {"name": "org/m", "max_length": 64, "lora": {"r": 4, "alpha": 8}}]


def test_conditions_pair_every_placement_with_every_perturbation():
    conds = matrix.conditions(["none", "after"], [{"kind": "none"}, {"kind": "truncate", "params": {"k": 3, "fraction": None}}])
    assert [c["label"] for c in conds] == ["none · none", "none · truncate(k=3)", "after · none", "after · truncate(k=3)"]


# ------------------------------------------------------------------------------------------ tables

def run(**kw):
    base = {"id": 1, "status": "running", "attempt": 0, "step": 0, "total_steps": 10, "progress": {}, "summary": {}}
    return {**base, **kw}


def test_progress_follows_training_then_evaluation():
    assert tables.progress_of(run(step=4, progress={"phase": "train", "step": 4, "total": 10})) == (0.4, "train 4/10")
    evaluating = {"phase": "evaluate", "phase_done": 3, "phase_total": 12, "step": 10, "total": 10}
    assert tables.progress_of(run(progress=evaluating)) == (0.25, "evaluate 3/12")
    validating = {"phase": "validate", "phase_done": 2, "phase_total": 8, "step": 4, "total": 10}
    assert tables.progress_of(run(step=4, progress=validating)) == (0.25, "validate 2/8")
    assert tables.progress_of(run(progress={"phase": "load", "phase_done": 1, "phase_total": 2})) == (0.5, "load 1/2")
    assert tables.progress_of(run(status="failed", step=10, progress=evaluating)) == (1.0, "failed at train 10/10")
    assert tables.progress_of(run(status="queued", attempt=2)) == (0.0, "queued (retry 2)")
    assert tables.progress_of(run(status="succeeded")) == (1.0, "done")
    assert tables.progress_of(run(status="failed", step=3)) == (0.3, "failed at train 3/10")


def test_example_filters():
    preds = {1: {"q1": {"correct": False}, "q2": {"correct": True}}, 2: {"q1": {"correct": False}, "q2": {"correct": False}}}
    q1 = {"id": "q1", "teacher_correct": True}
    q2 = {"id": "q2", "teacher_correct": False}
    wrong = [ex["id"] for ex in (q1, q2) if tables.keep_example(ex, preds, outcome="wrong in every run", teacher="any")]
    assert wrong == ["q1"]
    differ = [ex["id"] for ex in (q1, q2)
              if tables.keep_example(ex, preds, outcome="the two runs disagree", teacher="any", pair=(1, 2))]
    assert differ == ["q2"]
    assert not tables.keep_example(q2, preds, outcome="all examples", teacher="teacher correct")
    assert tables.keep_example(q2, preds, outcome="all examples", teacher="teacher incorrect")


def test_collapse_note_and_durations():
    assert collapse_note({}) is None
    assert collapse_note({"collapsed": True}) == "not distinguishable from a constant answer"
    assert collapse_note({"collapsed": True, "collapse_reason": "80% 'b'"}) == \
        "not distinguishable from a constant answer (80% 'b')"
    assert format_duration(75) == "1m 15s" and format_duration(3700) == "1h 01m" and format_duration(None) == ""


def test_every_flag_has_its_note_and_label():
    from app.components import flag_label
    summary = {"collapsed": True, "collapse_reason": "80% 'b'", "below_baseline": True,
               "below_baseline_reason": "accuracy 0.100 is significantly below the majority baseline 0.500",
               "high_unparsed": True, "unparsed_reason": "no label parsed from the generation on 90% of 10 items"}
    assert collapse_note(summary) == ("not distinguishable from a constant answer (80% 'b'); accuracy 0.100 is "
                                      "significantly below the majority baseline 0.500; no label parsed from "
                                      "the generation on 90% of 10 items")
    assert flag_label(summary) == "⚠ constant answer, below baseline, unparsed"
    assert collapse_note({"high_unparsed": True, "unparsed_reason": "x"}) == "x"
    assert flag_label({"collapsed": False}) == "" and collapse_note({"below_baseline": False}) is None


# ------------------------------------------------------------------------------------------ paired view

def paired_view(result):
    from app.compare_view import _paired_result
    _paired_result(result, {"arm": "after/none"}, {"arm": "none/none"})


def paired_result(**changes) -> dict:
    result = {"diff": 0.25, "low": -0.385, "high": 0.885, "p_value": 0.205, "verdict": "not significant",
              "n_items": 24, "pairs": [(1, 3), (2, 4)], "a_only": 7, "b_only": 1,
              "basis": {"warning": "both arms answer one constant label"},
              "test_set": {"low": 0.05, "high": 0.45, "p_value": 0.031, "interval_method": "cluster bootstrap over test items",
                           "test_method": "exact sign-flip test"},
              "unmatched_seeds": {"a": [7], "b": []},
              "per_pair": [{"seed": 0, "diff": 0.2, "a_only": 4, "b_only": 1, "p_value": 0.375},
                           {"seed": 1, "diff": 0.3, "a_only": 3, "b_only": 0, "p_value": 0.25}],
              "examples": [{"example_id": "q1", "fixes": 2, "breaks": 0, "pairs": 2, "consistent": True},
                           {"example_id": "q2", "fixes": 1, "breaks": 0, "pairs": 2, "consistent": False},
                           {"example_id": "q3", "fixes": 0, "breaks": 1, "pairs": 2, "consistent": False}]}
    return {**result, **changes}


def test_paired_view_leads_with_the_procedure_then_the_test_set_and_warns():
    from streamlit.testing.v1 import AppTest
    at = AppTest.from_function(paired_view, args=(paired_result(),), default_timeout=60).run()
    assert not at.exception
    assert "both arms answer one constant label" in at.error[0].value
    # The procedure first (seeds as the unit), the warning next to its interval; then the test set.
    assert {m.label: m.value for m in at.metric} == {
        "A − B accuracy": "+0.250", "95% interval over seeds": "⚠ [-0.385, +0.885]", "p over seeds": "0.205",
        "seed pairs": "2", "test-set interval": "[+0.050, +0.450]", "test-set p": "0.031", "items (seed pairs)": "24 (2)"}
    said = " ".join(m.value for m in at.markdown)
    assert "**Not significant** at α = 0.05 (paired t over 2 seed pairs, p = 0.205)" in said
    assert "**Test set: these trained models, on these items**" in said
    shown = " ".join(c.value for c in at.caption)
    assert "cluster bootstrap over test items" in shown and "exact sign-flip test" in shown
    assert "seeds [7] of A" in shown
    # The seed budget from the per-pair differences (sd 0.0707): what 2 seed pairs detect, seeds needed for
    # the observed 0.25, the sign-flip floor 2/2^2.
    from cotdistill.stats.inference import seed_budget
    budget = seed_budget([0.2, 0.3], target=0.25)
    assert at.number_input(key="budget_target").value == 0.25
    assert (f"these 2 seed pairs detect a true difference of ±{budget.detectable:.3f}; a difference of 0.250 needs "
            f"**{budget.seeds_for_target}** seed pairs") in shown
    assert "cannot go below p = 0.5" in shown
    at.number_input(key="budget_target").set_value(0.1).run()
    shown = " ".join(c.value for c in at.caption)
    assert f"a difference of 0.100 needs **{seed_budget([0.2, 0.3], target=0.1).seeds_for_target}** seed pairs" in shown
    per_pair = at.dataframe[0].value
    assert list(per_pair["seed"]) == [0, 1] and list(per_pair["McNemar p"]) == [0.375, 0.25]
    fixes, breaks = at.dataframe[1].value, at.dataframe[2].value
    assert list(fixes["example"]) == ["q1", "q2"] and list(fixes["consistent across seeds"]) == ["yes", "no"]
    assert list(breaks["example"]) == ["q3"]


def test_paired_view_with_one_seed_pair_needs_two_seeds():
    from streamlit.testing.v1 import AppTest
    one = paired_result(low=None, high=None, p_value=None, verdict="needs ≥ 2 seeds", pairs=[(1, 3)],
                        basis={"warning": None}, per_pair=[{"seed": 0, "diff": 0.25, "a_only": 7, "b_only": 1,
                                                            "p_value": 0.07}])
    at = AppTest.from_function(paired_view, args=(one,), default_timeout=60).run()
    assert not at.exception and not at.error
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["95% interval over seeds"] == "needs ≥ 2 seeds" and metrics["p over seeds"] == "–"
    assert metrics["test-set p"] == "0.031"
    assert "**Needs ≥ 2 seeds**" in " ".join(m.value for m in at.markdown)
    assert "no seed-to-seed spread to plan with (1 seed pair(s))" in " ".join(c.value for c in at.caption)


def test_verdict_table_leads_with_the_procedure():
    from app.compare_view import verdict_frame
    row = {"dataset": "d", "student": "tiny", "arm": "after · n_train=400", "protocol": "scoring (letter)",
           "is_reference": False, "seed_pairs": 3, "diff": 0.12, "diff_low": -0.07, "diff_high": 0.32, "p_value": 0.11,
           "p_holm": 0.22, "verdict": "not significant", "detectable": 0.2512, "test_low": 0.09, "test_high": 0.15,
           "test_p": 1e-14, "flagged_runs": [], "basis_warning": None, "note": None}
    one = {**row, "arm": "before", "protocol": "generation", "seed_pairs": 1, "diff_low": None, "diff_high": None,
           "p_value": None, "p_holm": None, "verdict": "needs ≥ 2 seeds", "detectable": None,
           "note": "evaluated by generation; scoring modes do not apply"}
    frame = verdict_frame({"rows": [{"is_reference": True, "diff": None}, row, one]})
    assert frame.to_dict("records") == [
        {"dataset": "d", "student": "tiny", "arm": "after · n_train=400", "evaluated": "scoring (letter)", "seeds": 3,
         "Δ vs ref.": 0.12, "95% interval (seeds)": "[-0.070, +0.320]", "p (seeds)": "0.11", "Holm p": "0.22",
         "verdict": "not significant", "detectable at 80% power": "±0.251", "test-set interval": "[+0.090, +0.150]",
         "test-set p": "<0.001", "warning": ""},
        {"dataset": "d", "student": "tiny", "arm": "before", "evaluated": "generation", "seeds": 1, "Δ vs ref.": 0.12,
         "95% interval (seeds)": "", "p (seeds)": "", "Holm p": "", "verdict": "needs ≥ 2 seeds",
         "detectable at 80% power": "", "test-set interval": "[+0.090, +0.150]", "test-set p": "<0.001",
         "warning": "evaluated by generation; scoring modes do not apply"}]


def test_arms_that_share_placement_and_perturbation_get_their_own_bars():
    arms = [dict(ARMS[0], arm="after · n_train=400", arm_key="k5"), dict(ARMS[0], arm="after · n_train=40", arm_key="k6"),
            dict(ARMS[1], arm="untouched", arm_key="k7", untouched=True, placement="after", collapsed=[False])]
    spec = charts.accuracy_bars(arms).to_plotly_json()
    positions = [(decode(b["x"][0])[0], decode(b["x"][1])[0]) for b in spec["data"] if b["type"] == "bar"]
    assert positions == [("untouched", "untouched"), ("after", "none · n_train=40"), ("after", "none · n_train=400")]
    frame = tables.compare_frame([dict(a, protocol="scoring (letter)") for a in arms])
    assert list(frame["arm"]) == ["after · n_train=400", "after · n_train=40", "untouched"]
    assert list(frame["evaluated"]) == ["scoring (letter)"] * 3 and list(frame["arm_key"]) == ["k5", "k6", "k7"]
