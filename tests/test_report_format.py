"""The pure parts of a report: Holm's correction, the tables as LaTeX, Markdown and CSV with their
flags, the verdicts as text, and the figures (matplotlib, PDF and SVG)."""

import xml.etree.ElementTree as ET

import pytest

from cotdistill.report import (bar_figure, csv_text, flag_messages, flag_names, fmt, fmt_p, holm, interval_text,
                               latex_escape, latex_table, line_figure, markdown_table, rationale_as_trained, save,
                               verdict_lines)

REF = {"dataset": "cqa", "student": "tiny", "arm": "none", "row_key": "r0", "placement": "none",
       "perturbation": "none", "protocol": "scoring (letter)", "n_seeds": 2, "seeds": [0, 1], "mean": 0.5,
       "low": 0.25, "high": 0.75, "accuracies": [0.45, 0.55], "reference": "none", "is_reference": True,
       "flagged_runs": []}
ARM = {**REF, "arm": "after/key_tokens(k=3)", "row_key": "r1", "arm_key": "abc", "placement": "after",
       "perturbation": "key_tokens", "mean": 0.625, "low": 0.5, "high": 0.75, "is_reference": False,
       "diff": 0.125, "diff_low": -0.0001, "diff_high": 0.25, "p_value": 0.0312, "p_holm": 0.0624,
       "significant": False, "verdict": "not significant", "n_items": 40, "seed_pairs": 2, "detectable": 0.3,
       "seeds_for_target": 7,
       "sign_flip_floor": 0.5, "test_low": 0.05, "test_high": 0.2, "test_p": 0.004, "test_p_holm": 0.008,
       "flagged_runs": [7, 9], "flags": ["constant answer"], "basis_warning": "both answer 'a'"}
STAR = {**ARM, "arm": "after/shuffle", "row_key": "r2", "perturbation": "shuffle", "p_value": 0.0004, "p_holm": 0.0008,
        "significant": True, "verdict": "significant", "flagged_runs": [], "flags": [], "basis_warning": None}
ONE = {**STAR, "arm": "before", "row_key": "r3", "placement": "before", "perturbation": "none",
       "protocol": "generation", "n_seeds": 1, "seeds": [0], "low": None, "high": None, "diff_low": None,
       "diff_high": None, "p_value": None, "p_holm": None, "significant": None, "verdict": "needs ≥ 2 seeds",
       "seed_pairs": 1, "detectable": None, "seeds_for_target": None, "sign_flip_floor": 1.0, "note": "evaluated by generation; scoring "
       "modes do not apply"}
TWIN = {**STAR, "row_key": "r4", "mean": 0.3}          # the same label as STAR, another arm


def test_holm_adjusts_step_down_monotone_and_capped():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.01]) == pytest.approx([0.5, 0.02])
    assert holm([0.4, 0.6, 0.9]) == pytest.approx([1.0, 1.0, 1.0])
    assert holm([0.02]) == [0.02] and holm([]) == []
    with pytest.raises(ValueError, match="p-value 1 is 1.5"):
        holm([0.1, 1.5])


def test_numbers_as_text():
    assert fmt(0.61234) == "0.612" and fmt(None) == "–" and fmt(float("nan")) == "–"
    assert fmt(0.05, signed=True) == "+0.050" and fmt(-0.0001, signed=True) == "-0.000"
    assert fmt(-0.02, signed=True) == "-0.020"
    assert fmt_p(0.0004) == "<0.001" and fmt_p(0.01234) == "0.0123" and fmt_p(None) == "–"
    assert interval_text(0.5, 0.25, 0.75) == "0.500 [0.250, 0.750]" and interval_text(0.5, None, None) == "0.500"
    assert latex_escape("key_tokens 50% & $x") == r"key\_tokens 50\% \& \$x"


def test_one_message_per_flag():
    summary = {"collapsed": True, "collapse_reason": "not distinguishable from a constant answer: 'a' on 97%",
               "below_baseline": True, "below_baseline_reason": "accuracy 0.2 is significantly below the majority "
                                                                "baseline 0.4", "high_unparsed": True,
               "unparsed_reason": "no label parsed on 40% of 30 items"}
    assert flag_messages(summary) == ["not distinguishable from a constant answer: 'a' on 97%",
                                      "accuracy 0.2 is significantly below the majority baseline 0.4",
                                      "mostly unparsed generations: no label parsed on 40% of 30 items"]
    assert flag_messages({"collapsed": True}) == ["not distinguishable from a constant answer"]
    assert flag_messages({"collapsed": False, "below_baseline": None}) == []
    assert flag_names(flag_messages(summary)) == ["constant answer", "below the majority baseline", "mostly unparsed"]


def test_latex_table_is_booktabs_with_exact_cells_flags_and_one_seed():
    assert latex_table([REF, ARM, STAR, ONE], caption_note="Holm-corrected;\nreference none") == "\n".join([
        "% Holm-corrected; reference none",
        r"\begin{tabular}{lllll}",
        r"\toprule",
        r"Arm & Evaluated & \multicolumn{3}{c}{cqa / tiny} \\",
        r"\cmidrule(lr){3-5}",
        r" & & Accuracy [95\% CI] & $\Delta$ vs ref. [95\% CI], seeds & Test set [95\% CI] \\",
        r"\midrule",
        r"none & scoring (letter) & 0.500 [0.250, 0.750] & ref. & ref. \\",
        r"after/key\_tokens(k=3) & scoring (letter) & 0.625 [0.500, 0.750]$^{\dagger}$ & "
        r"+0.125 [-0.000, +0.250] ($p=0.0312$)$^{\ddagger}$ & [+0.050, +0.200] ($p=0.004$) \\",
        r"after/shuffle & scoring (letter) & 0.625 [0.500, 0.750] & +0.125 [-0.000, +0.250] ($p<0.001$)$^{*}$ & "
        r"[+0.050, +0.200] ($p=0.004$) \\",
        r"before & generation & 0.625 & +0.125, needs $\geq$ 2 seeds & [+0.050, +0.200] ($p=0.004$) \\",
        r"\bottomrule",
        r"\multicolumn{5}{l}{\footnotesize $^{\dagger}$ after/key\_tokens(k=3) (cqa / tiny): 2 of 2 seed(s) flagged "
        r"(constant answer); their accuracy says little about what they learned.} \\",
        r"\multicolumn{5}{l}{\footnotesize $^{\ddagger}$ after/key\_tokens(k=3) (cqa / tiny) vs none: both arms answer a "
        r"constant label, so the interval measures the label bias, not the arms (not evidence of no difference).} \\",
        r"\multicolumn{5}{l}{\footnotesize before (cqa / tiny): evaluated by generation; scoring modes do not apply.} \\",
        r"\end{tabular}", ""])


def test_latex_table_has_three_columns_per_panel_and_dashes_for_missing_arms():
    other = {**REF, "student": "smollm2"}
    tex = latex_table([REF, ARM, other])
    assert r"\begin{tabular}{llllllll}" in tex and r"\cmidrule(lr){3-5} \cmidrule(lr){6-8}" in tex
    assert (r"after/key\_tokens(k=3) & scoring (letter) & 0.625 [0.500, 0.750]$^{\dagger}$ & +0.125 [-0.000, +0.250] "
            r"($p=0.0312$)$^{\ddagger}$ & [+0.050, +0.200] ($p=0.004$) & -- & -- & -- \\") in tex


def test_tables_are_keyed_by_arm_so_two_arms_with_one_label_are_two_lines():
    assert len([line for line in latex_table([REF, STAR, TWIN]).splitlines() if line.startswith("after/shuffle &")]) == 2
    assert len([line for line in markdown_table([REF, STAR, TWIN]).splitlines() if line.startswith("| after/shuffle |")]) == 2
    assert len(csv_text([REF, STAR, TWIN]).splitlines()) == 4


def test_markdown_and_csv_hold_the_same_numbers_and_flags():
    assert markdown_table([REF, STAR, ARM, ONE]).splitlines() == [
        "| arm | evaluated | cqa / tiny: accuracy [95% CI] | cqa / tiny: Δ vs ref. [95% CI], seeds | "
        "cqa / tiny: test set [95% CI] |",
        "|---|---|---|---|---|",
        "| none | scoring (letter) | 0.500 [0.250, 0.750] | ref. | ref. |",
        "| after/shuffle | scoring (letter) | 0.625 [0.500, 0.750] | +0.125 [-0.000, +0.250] p<0.001* | "
        "[+0.050, +0.200] p=0.004 |",
        "| after/key_tokens(k=3) | scoring (letter) | 0.625 [0.500, 0.750]† | +0.125 [-0.000, +0.250] p=0.0312‡ | "
        "[+0.050, +0.200] p=0.004 |",
        "| before | generation | 0.625 | +0.125, needs ≥ 2 seeds | [+0.050, +0.200] p=0.004 |",
        "",
        "† after/key_tokens(k=3) (cqa / tiny): 2 of 2 seed(s) flagged (constant answer); their accuracy says little "
        "about what they learned.",
        "‡ after/key_tokens(k=3) (cqa / tiny) vs none: both arms answer a constant label, so the interval measures "
        "the label bias, not the arms (not evidence of no difference).",
        "before (cqa / tiny): evaluated by generation; scoring modes do not apply."]
    lines = csv_text([REF, ARM, ONE]).splitlines()
    assert lines[0] == ("dataset,student,arm,arm_key,placement,perturbation,protocol,n_seeds,seeds,mean,low,high,"
                        "reference,diff,diff_low,diff_high,p_value,p_holm,significant,verdict,seed_pairs,detectable,"
                        "seeds_for_target,sign_flip_floor,test_low,test_high,test_p,test_p_holm,n_items,flagged_runs,flags,"
                        "basis_warning,note")
    assert lines[1] == "cqa,tiny,none,,none,none,scoring (letter),2,0 1,0.5,0.25,0.75,none" + "," * 20
    assert lines[2] == ("cqa,tiny,after/key_tokens(k=3),abc,after,key_tokens,scoring (letter),2,0 1,0.625,0.5,0.75,none,"
                        "0.125,-0.0001,0.25,0.0312,0.0624,False,not significant,2,0.3,7,0.5,0.05,0.2,0.004,0.008,40,7 9,"
                        "constant answer,both answer 'a',")
    assert lines[3] == ("cqa,tiny,before,abc,before,none,generation,1,0,0.625,,,none,0.125,,,,,,needs ≥ 2 seeds,1,,,1.0,"
                        "0.05,0.2,0.004,0.008,40,,,,evaluated by generation; scoring modes do not apply")


def test_verdict_lines_lead_with_the_procedure():
    assert verdict_lines([REF, STAR, ONE]) == [
        "after/shuffle vs none (cqa / tiny): +0.125 [-0.000, +0.250], p=<0.001 over 2 seed pairs, Holm p=<0.001: "
        "significant; test set (these models, these items): [+0.050, +0.200] p=0.004",
        "before vs none (cqa / tiny): +0.125, needs ≥ 2 seeds (1 seed pair); test set (these models, these items): "
        "[+0.050, +0.200] p=0.004"]


def test_figures_are_vector_pdf_and_svg_with_labelled_bars_and_coloured_arms():
    bars = save(bar_figure([REF, ARM, STAR]))
    assert bars["pdf"].startswith(b"%PDF") and b"/Type /Page" in bars["pdf"]
    svg = ET.fromstring(bars["svg"])
    texts = [t.text for t in svg.iter("{http://www.w3.org/2000/svg}text")]
    assert {"0.500", "0.625", "none", "after/key_tokens(k=3)†", "after/shuffle"} <= set(texts)
    assert {"0.0", "0.2", "0.4", "0.6", "0.8", "1.0"} <= set(texts)             # round ticks
    assert save(bar_figure([REF, ARM, STAR])) == bars                              # no dates: the same files
    lines = save(line_figure([{"name": "s0", "group": "none", "x": [5, 10], "y": [1.0, 0.5]},
                              {"name": "s1", "group": "none", "x": [5, 10], "y": [1.1, 0.6]},
                              {"name": "s0", "group": "after", "x": [5, 10], "y": [0.9, 0.2]}],
                             title="Label loss", x_label="step", y_label="label loss"))
    svg = lines["svg"].decode()
    colours = {c for c in ("#4c72b0", "#dd8452") if f"stroke: {c}" in svg}
    assert colours == {"#4c72b0", "#dd8452"}                                       # one colour per arm
    legend = [t.text for t in ET.fromstring(lines["svg"]).iter("{http://www.w3.org/2000/svg}text")]
    assert legend.count("none") == 1 and legend.count("after") == 1                 # one legend entry per arm


def test_rationale_as_trained_where_no_tokenizer_is_needed():
    word = {"level": "word"}
    assert rationale_as_trained("a b c d e", "q1", placement="after", seed=0,
                                perturbation={**word, "kind": "truncate", "params": {"k": 2}}) == \
        ("a b", "truncate at word level, seed 0")
    assert rationale_as_trained("a b c d e", "q1", placement="after", seed=0,
                                perturbation={**word, "kind": "shuffle", "params": {}}) == \
        ("e a b d c", "shuffle at word level, seed 0")
    assert rationale_as_trained("a b", "q1", placement="before", seed=3, perturbation={"kind": "none"}) == \
        ("a b", "unchanged")
    assert rationale_as_trained("a b", "q1", placement="none", seed=0, perturbation={"kind": "none"}) == \
        (None, "placement none: trained on the label alone")
    text, how = rationale_as_trained("a b", "q1", placement="after", seed=0, perturbation={"kind": "shuffle"})
    assert text is None and how.startswith("shuffle at token level: needs the student's tokenizer")
