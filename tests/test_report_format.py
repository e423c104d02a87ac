"""The pure parts of a report: Holm's correction and the tables as LaTeX, Markdown, CSV and SVG."""

import xml.etree.ElementTree as ET

import pytest

from cotdistill.report import (csv_text, fmt, fmt_p, holm, interval_text, latex_escape, latex_table,
                               markdown_table, rationale_as_trained, svg_bars, svg_lines)

REF = {"dataset": "cqa", "student": "tiny", "arm": "none/none", "placement": "none", "perturbation": "none",
       "n_seeds": 2, "seeds": [0, 1], "mean": 0.5, "low": 0.25, "high": 0.75, "reference": "none/none",
       "is_reference": True, "flagged_runs": []}
ARM = {"dataset": "cqa", "student": "tiny", "arm": "after/key_tokens(k=3)", "placement": "after",
       "perturbation": "key_tokens", "n_seeds": 2, "seeds": [0, 1], "mean": 0.625, "low": 0.5, "high": 0.75,
       "reference": "none/none", "is_reference": False, "diff": 0.125, "diff_low": -0.0001, "diff_high": 0.25,
       "p_value": 0.0312, "p_holm": 0.0624, "significant": False, "n_items": 40, "seed_pairs": 2,
       "flagged_runs": [7, 9]}
STAR = {**ARM, "arm": "after/shuffle", "perturbation": "shuffle", "p_value": 0.0004, "p_holm": 0.0008,
        "significant": True, "flagged_runs": []}


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


def test_latex_table_is_booktabs_with_exact_cells():
    assert latex_table([REF, ARM, STAR], caption_note="Holm-corrected;\nreference none/none") == "\n".join([
        "% Holm-corrected; reference none/none",
        r"\begin{tabular}{lll}",
        r"\toprule",
        r"Arm & \multicolumn{2}{c}{cqa / tiny} \\",
        r"\cmidrule(lr){2-3}",
        r" & Accuracy [95\% CI] & $\Delta$ vs ref. [95\% CI] \\",
        r"\midrule",
        r"none/none & 0.500 [0.250, 0.750] & ref. \\",
        r"after/key\_tokens(k=3) & 0.625 [0.500, 0.750] & +0.125 [-0.000, +0.250] ($p=0.0312$) \\",
        r"after/shuffle & 0.625 [0.500, 0.750] & +0.125 [-0.000, +0.250] ($p<0.001$)$^{*}$ \\",
        r"\bottomrule",
        r"\end{tabular}", ""])


def test_latex_table_has_two_columns_per_panel_and_dashes_for_missing_arms():
    other = {**ARM, "student": "smollm2", "arm": "none/none", "is_reference": True, "diff": None}
    tex = latex_table([REF, ARM, other])
    assert r"\begin{tabular}{lllll}" in tex and r"\cmidrule(lr){2-3} \cmidrule(lr){4-5}" in tex
    assert r"after/key\_tokens(k=3) & 0.625 [0.500, 0.750] & +0.125 [-0.000, +0.250] ($p=0.0312$) & -- & -- \\" in tex


def test_markdown_and_csv_hold_the_same_numbers():
    assert markdown_table([REF, STAR]).splitlines() == [
        "| arm | cqa / tiny: accuracy [95% CI] | cqa / tiny: Δ vs ref. [95% CI] |",
        "|---|---|---|",
        "| none/none | 0.500 [0.250, 0.750] | ref. |",
        "| after/shuffle | 0.625 [0.500, 0.750] | +0.125 [-0.000, +0.250] p<0.001* |"]
    lines = csv_text([REF, ARM]).splitlines()
    assert lines[0].startswith("dataset,student,arm,placement,perturbation,n_seeds,seeds,mean,low,high,reference,diff")
    assert lines[1] == "cqa,tiny,none/none,none,none,2,0 1,0.5,0.25,0.75,none/none,,,,,,,,,"
    assert lines[2] == ("cqa,tiny,after/key_tokens(k=3),after,key_tokens,2,0 1,0.625,0.5,0.75,none/none,0.125,"
                        "-0.0001,0.25,0.0312,0.0624,False,40,2,7 9")


def test_svg_figures_are_well_formed_and_carry_the_data():
    bars = ET.fromstring(svg_bars([REF, ARM]))
    rects = [r for r in bars.iter("{http://www.w3.org/2000/svg}rect") if r.find("{http://www.w3.org/2000/svg}title") is not None]
    assert [r.find("{http://www.w3.org/2000/svg}title").text for r in rects] == ["none/none: 0.500",
                                                                              "after/key_tokens(k=3): 0.625"]
    assert float(rects[0].get("height")) == pytest.approx(130.0)            # 0.5 of the 260-pixel axis
    lines = ET.fromstring(svg_lines([{"name": "run <1>", "x": [0, 10], "y": [2.0, 1.0]}], title="loss",
                                    x_label="step", y_label="loss"))
    polyline = next(lines.iter("{http://www.w3.org/2000/svg}polyline"))
    assert polyline.get("points") == "60.0,30.0 540.0,290.0"
    assert polyline.find("{http://www.w3.org/2000/svg}title").text == "run <1>"


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
