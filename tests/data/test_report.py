"""The data report on constructed data: exact leak, placeholder, overlap, several-rationales and
teacher-disagreement counts; strip_leaks; the seeded holdout."""

from pathlib import Path

import pytest

from cotdistill.data import load_examples
from cotdistill.data.report import (data_report, format_report, leak_kinds, leak_warn_rate, normalize, overlap,
                                   run_data_check, strip_leaks)
from cotdistill.errors import DataError
from cotdistill.examples import Example
from cotdistill.data.store import hold_out, import_file, open_rationale_set

FIX = Path(__file__).parent / "fixtures"
CH = ("dry palms", "wet hands", "cold feet")


def mc(i, rationale, label="a", question=None, teacher=None):
    return Example(f"q{i}", question or f"Question {i}?", label, CH, rationale,
                   teacher_label=teacher)


def test_leak_kinds():
    assert leak_kinds(mc(1, "Rub them. Thus, the answer is (a) dry palms.")) == ["statement",
                                                                                 "text"]
    assert leak_kinds(mc(2, "So the answer is: a")) == ["statement"]
    assert leak_kinds(mc(3, "People with Dry Palms rub them.")) == ["text"]
    assert leak_kinds(mc(4, "Nothing here; (b) is wrong.")) == []
    assert leak_kinds(mc(5, "Dry palms or wet hands?")) == []  # quotes two choices: names none
    assert leak_kinds(Example("y", "Q?", "yes", ("yes", "no"), "So the answer is yes.",
                              kind="yes_no")) == ["statement"]
    assert leak_kinds(Example("y", "Q?", "no", ("yes", "no"), "So the answer is yes.",
                              kind="yes_no")) == []


def test_strip_leaks_drops_only_answer_statements():
    example = mc(1, "Friction warms skin. Thus, the answer is (a). Dry palms help.")
    assert strip_leaks(example) == "Friction warms skin. Dry palms help."
    assert strip_leaks(mc(2, "The answer is (a).")) is None


def test_report_counts_on_constructed_data():
    train = [mc(1, "Thus, the answer is (a)."), mc(2, "dummy"), mc(3, "dummy"), mc(4, "dummy"),
             mc(5, "A real reason here.", label="b", teacher="c"), mc(6, None, teacher="a"),
             mc(7, "Another reason.", question="Question 1?")]
    test = [mc(10, "x", question="Question 1?"), mc(11, "y", question="question   2"),
            mc(12, "z", question="Fresh question?")]
    report = data_report({"train": train, "test": test})
    s = report["splits"]["train"]
    assert (s["n"], s["n_with_rationale"], s["n_empty_rationale"]) == (7, 6, 1)
    assert s["labels"] == {"a": 6, "b": 1}
    assert s["rationale_length"] == {"min": 1, "median": 1.5, "mean": 2.33, "max": 5}
    assert (s["leak"]["n"], s["leak"]["n_statement"], s["leak"]["examples"]) == (1, 1, ["q1"])
    assert s["repeated_rationales"] == [{"text": "dummy", "rows": 3}] and s["placeholder"]
    assert (s["n_placeholder_rationales"], s["shared_rationales"]) == (3, [])
    assert (s["n_questions"], s["n_questions_with_several"]) == (6, 1)
    assert (s["n_teacher_judged"], s["n_teacher_wrong"]) == (2, 1)
    assert report["overlap"]["test"] == {"n": 3, "exact": 1, "normalized": 2,
                                         "examples": ["q10", "q11"]}
    warnings = "\n".join(report["warnings"])
    for part in ("name the gold answer", "3 of 6 rationales are placeholders", "1 of 7 rows have no",
                 "1 questions appear in several rows", "disagrees with gold on 1 of 2",
                 "test: 2 of 3 questions also occur in train (1 exactly"):
        assert part in warnings


def test_a_clean_dataset_has_no_warnings():
    train = [mc(i, f"Reason number {i}.") for i in range(5)]
    assert data_report({"train": train, "test": [mc(9, "Other reason.", question="New?")]})[
        "warnings"] == []


def test_normalize_and_overlap():
    assert normalize("  What's  THE sky?") == "what s the sky"
    assert overlap([mc(1, None)], [mc(2, None, question="question 1")])["normalized"] == 1


def test_placeholder_rationales_of_a_file_are_flagged():
    """Why: the literal word "dummy" in every row counted as real rationales."""
    examples = load_examples("file", "train", path=str(FIX / "placeholder.jsonl"))
    assert [e.rationale for e in examples] == [None, None, None, "a real reason"]   # dropped
    report = data_report({"train": examples})
    assert report["import"] == {"train": {"n_cut": 0, "n_cut_missed": 0, "n_placeholders": 3,
                                          "n_placeholders_kept": 0, "n_duplicates_dropped": 0}}
    assert "train: 3 placeholder rationales (empty, nan, -, a single word) were dropped at " \
           "import: those rows have no rationale" in report["warnings"]
    kept = load_examples("file", "train", path=str(FIX / "placeholder.jsonl"), placeholders="keep")
    report = data_report({"train": kept})
    assert report["splits"]["train"]["placeholder"] is True
    assert report["splits"]["train"]["n_placeholder_rationales"] == 3
    assert any("3 of 4 rationales are placeholders" in w for w in report["warnings"])


def test_leaking_completions_are_reported_then_cut():
    """Why: teacher completions kept as rationales still named the answer."""
    raw = load_examples("file", "train", path=str(FIX / "completions.jsonl"),
                        columns={"rationale": "completion"})
    assert data_report({"train": raw})["splits"]["train"]["leak"]["n"] == 2
    cut = load_examples("file", "train", path=str(FIX / "completions.jsonl"),
                        columns={"rationale": "completion"},
                        rationale_cut=["Thus, the answer is", "So the answer is"])
    assert data_report({"train": cut})["splits"]["train"]["leak"]["n"] == 0


def test_holdout_is_seeded_keeps_questions_together_and_leaves_no_overlap():
    rows = [mc(i, "r", question=f"Question {i // 2}?") for i in range(20)]  # 10 questions x 2
    a, b = hold_out({"train": rows}, 0.2, seed=3), hold_out({"train": rows}, 0.2, seed=3)
    assert a == b and len(a["test"]) == 4 and len(a["train"]) == 16
    assert data_report(a)["overlap"]["test"]["normalized"] == 0
    assert hold_out({"train": rows}, 0.2, seed=4)["test"] != a["test"]
    with pytest.raises(DataError, match="between 0 and 1"):
        hold_out({"train": rows}, 1.5, seed=0)
    with pytest.raises(DataError, match="exactly one split named train"):
        hold_out({"train": rows, "test": rows}, 0.1, seed=0)


def test_import_with_holdout_writes_a_test_split_and_warnings(tmp_path):
    path = import_file(FIX / "placeholder.jsonl", tmp_path / "s", holdout=0.25, seed=0)
    rs = open_rationale_set(path)
    assert rs.provenance["splits"] == {"train": 3, "test": 1}
    assert rs.provenance["dataset"]["holdout"] == 0.25
    assert any("placeholder rationales" in w for w in rs.provenance["extra"]["warnings"])
    assert sum(n["n_placeholders"] for n in rs.provenance["extra"]["import"].values()) == 3


def test_import_strip_leaks(tmp_path):
    path = import_file(FIX / "completions.jsonl", tmp_path / "s", strip_leaks=True,
                       columns={"rationale": "completion"}, rationale_cut="\n\nQ:")
    rationales = [e.rationale for e in open_rationale_set(path).examples("train")]
    assert rationales == ["Air scatters short wavelengths.", "Chlorophyll reflects that colour."]


def test_teacher_flag_accuracy_survives_the_set(tmp_path):
    path = import_file(FIX / "teacher_flag.jsonl", tmp_path / "s", kind="yes_no",
                       columns={"label": "answer", "teacher_correct": "pred_correct"})
    rs = open_rationale_set(path)
    assert rs.provenance["teacher_accuracy"] == 2 / 3
    assert [e.teacher_correct for e in rs.examples("train")] == [True, True, False]


# --- a run's data check (its summary's data_warnings) ------------------------------------------

def check_data():
    """8 training rows, 3 of whose rationales state the answer; 4 test rows, 2 of them copies of
    training questions and 1 the same question in other case and punctuation."""
    train = [mc(i, f"Rub them {i} times. So the answer is (a)." if i < 3 else f"Rub them {i} times.") for i in range(8)]
    test = [mc(10, "x", question="Question 1?"), mc(11, "x", question="Question 2?"),
            mc(12, "x", question="question 3"), mc(13, "x", question="Something new?")]
    return train, test


def test_run_data_check_counts_overlap_and_leaks_exactly(monkeypatch):
    monkeypatch.delenv("COTDISTILL_LEAK_WARN_RATE", raising=False)
    check = run_data_check(*check_data())
    assert check["overlap"] == {"n": 4, "exact": 2, "normalized": 3, "examples": ["q10", "q11", "q12"]}
    assert check["leak"] == {"n": 3, "n_with_rationale": 8, "rate": 0.375, "threshold": 0.1,
                             "rationales_trained": True, "examples": ["q0", "q1", "q2"]}
    assert check["warnings"] == [
        "train/test overlap: 3 of 4 test questions also occur among the training questions "
        "(2 exactly; e.g. q10, q11, q12): their accuracy measures recall of training items",
        "answer leak: 3 of 8 training rationales (38%, warned from 10%) name the gold answer "
        "(e.g. q0, q1, q2): the student can learn the label from the rationale; cut or strip the "
        "answer statements at import"]


def test_run_data_check_threshold_and_label_only_runs(monkeypatch):
    train, test = check_data()
    assert len(run_data_check(train, test, leak_rate=0.375)["warnings"]) == 2     # at the rate: warns
    assert len(run_data_check(train, test, leak_rate=0.4)["warnings"]) == 1       # overlap only
    monkeypatch.setenv("COTDISTILL_LEAK_WARN_RATE", "0.5")
    assert leak_warn_rate() == 0.5
    assert run_data_check(train, test)["leak"]["threshold"] == 0.5
    assert [w.split(":")[0] for w in run_data_check(train, test)["warnings"]] == ["train/test overlap"]
    monkeypatch.delenv("COTDISTILL_LEAK_WARN_RATE")
    unused = run_data_check(train, test[3:], rationales_trained=False)            # placement none
    assert unused["warnings"] == [] and unused["leak"]["n"] == 3
    assert data_report({"train": train}, leak_rate=0.4)["warnings"] == []
    assert len(data_report({"train": train})["warnings"]) == 1


@pytest.mark.parametrize("value", ["0", "1.5", "ten", "-0.1"])
def test_leak_warn_rate_that_is_not_a_share_is_refused(monkeypatch, value):
    monkeypatch.setenv("COTDISTILL_LEAK_WARN_RATE", value)
    with pytest.raises(DataError, match=r"\$COTDISTILL_LEAK_WARN_RATE must be a share above 0 and "
                                        r"at most 1 \(e.g. 0.1\), found"):
        leak_warn_rate()


# --- issue 23: openers, placeholders by content and by repetition, cut misses, question identity --

def yn(i, rationale, label="yes"):
    return Example(f"y{i}", f"Question {i}?", label, ("yes", "no"), rationale, kind="yes_no")


def num(i, rationale, label="1200"):
    return Example(f"n{i}", f"Sum {i}?", label, None, rationale, kind="numeric")


def test_answer_openers_and_numeric_statements_are_leaks():
    assert leak_kinds(yn(1, "Yes, the sun is a star.")) == ["opener"]
    assert leak_kinds(yn(2, "No. Penguins cannot fly.", label="no")) == ["opener"]
    assert leak_kinds(yn(3, "No one knows; it is a star.")) == []         # "No one": no opener
    assert leak_kinds(yn(4, "Yes, but the answer is no.", label="no")) == ["statement"]
    assert leak_kinds(num(1, "Add them. The answer is 1,200.")) == ["statement"]
    assert leak_kinds(num(2, "The answer is $1200.00")) == ["statement"]
    assert leak_kinds(num(3, "1200. Six hundred twice.")) == ["opener"]
    assert leak_kinds(num(4, "600 and 600 more. The answer is 1201.")) == []
    assert leak_kinds(mc(1, "(a). Rub them.")) == ["statement", "opener"]
    assert leak_kinds(mc(2, "A. Rubbing warms them.")) == ["opener"]
    assert leak_kinds(mc(3, "A person rubs them.")) == []


def test_openers_are_counted_in_the_report_and_stripped():
    train = [yn(1, "Yes, the sun is a star."), yn(2, "No. Penguins swim.", label="no"),
             yn(3, "The sun is a star in our galaxy.")]
    s = data_report({"train": train})["splits"]["train"]
    assert (s["leak"]["n"], s["leak"]["n_opener"], s["leak"]["n_statement"]) == (2, 2, 0)
    assert strip_leaks(train[0]) == "the sun is a star."
    assert strip_leaks(train[1]) == "Penguins swim."
    assert strip_leaks(train[2]) == train[2].rationale


def test_repetition_warns_only_across_distinct_questions():
    genuine = "Spiders have eight legs, two more than insects."
    near = [mc(i, genuine, question=q) for i, q in enumerate(
        ["How many legs does a spider have?", "How many legs does a spider have ?",
         "How many legs do spiders have?", "how many legs does a spider have"])]
    s = data_report({"train": near})["splits"]["train"]
    assert s["repeated_rationales"] == [{"text": genuine, "rows": 4}]
    assert (s["shared_rationales"], s["placeholder"]) == ([], False)
    shared = [mc(i, "Think about it carefully.", question=q) for i, q in enumerate(
        ["Why is the sky blue?", "What melts ice?", "Which metal rusts?"])]
    report = data_report({"train": shared})
    assert report["splits"]["train"]["shared_rationales"] == [
        {"text": "Think about it carefully.", "rows": 3, "questions": 3}]
    assert "train: the rationale 'Think about it carefully.' appears in 3 rows of 3 distinct " \
           "questions: a placeholder, not a rationale" in report["warnings"]


def test_the_cut_markers_miss_rate_is_reported():
    examples = load_examples("file", "train", path=str(FIX / "missing_cut.jsonl"),
                             columns={"rationale": "completion"}, rationale_cut="So the answer is")
    assert [e.meta["cut"] for e in examples] == ["cut", "cut", "missed", "cut", "missed"]
    report = data_report({"train": examples})
    assert report["import"]["train"]["n_cut"] == 5 and report["import"]["train"]["n_cut_missed"] == 2
    assert "train: the rationale cut marker is missing from 2 of 5 rationales (40%), kept whole " \
           "with whatever follows the reasoning; check --rationale-cut" in report["warnings"]
    assert "import train: cut marker missing in 2 of 5 (40.0%)" in format_report(report)
    assert data_report({"train": examples}, notes={})["import"] == {}    # a set's own notes win


def test_the_yes_no_openers_fixture_warns_of_its_leak():
    examples = load_examples("file", "train", path=str(FIX / "yes_no_openers.jsonl"), kind="yes_no")
    report = data_report({"train": examples})
    assert report["splits"]["train"]["leak"]["n_opener"] == 3
    assert any("3 of 5 rationales (60%) name the gold answer (0 state it, 3 open with it" in w
               for w in report["warnings"])
    numbers = load_examples("file", "train", path=str(FIX / "numeric_statements.jsonl"),
                            kind="numeric")
    assert data_report({"train": numbers})["splits"]["train"]["leak"]["examples"] == ["m1", "m3"]


def test_questions_are_stems_with_choices():
    a = Example("1", "Which sentence does not make sense?", "a", ("x y", "y x"), "r1 here.")
    b = Example("2", "Which sentence does not make sense?", "b", ("p q", "q p"), "r2 here.")
    c = Example("3", "which sentence  does not make sense", "a", ("X y", "y x!"), "r3 here.")
    s = data_report({"train": [a, b, c]})["splits"]["train"]
    assert (s["n_questions"], s["n_questions_with_several"]) == (2, 1)
    assert overlap([a], [b, c]) == {"n": 2, "exact": 0, "normalized": 1, "examples": ["3"]}
