"""The data report: what to know about a dataset or rationale set before training on it.

    report = data_report({"train": train, "test": test})     # plain dict, JSON-ready
    print(format_report(report))                             # `cotdistill data check`
    clean = strip_leaks(example)                             # the rationale minus leaking sentences
    check = run_data_check(train, test)                      # a run's summary: overlap, leak, warnings

Sections: label distribution and rationale lengths (words, or tokens of a tokenizer) per split;
choices listed twice in one row; answer leakage (rationales that state the gold answer: "the answer is (c)" / "the answer is 42",
its letter in brackets, an opening "Yes," / "No." / "(b)." naming the gold answer, or the gold
choice's text verbatim while no other choice is quoted); placeholders (by content at any rate:
cotdistill.data.placeholders; by repetition only when one text is shared by distinct questions
that are not near-duplicates of each other) and empty rationales; several rationales per question;
train/test overlap (exact and normalized questions); teacher answers that disagree with gold; and
what the import counted (`notes`, from import_notes(): rationale-cut misses, placeholders dropped
or kept, duplicate test rows dropped). A question is its stem with its choices
(cotdistill.examples.question_id). `warnings` lists, in one sentence each, what should stop a
careful researcher. A leak rate warns from leak_warn_rate() (LEAK_WARN_RATE, or
$COTDISTILL_LEAK_WARN_RATE: a share between 0 and 1).
"""

from __future__ import annotations

import difflib
import re
import statistics
from collections import Counter
from typing import Any, Callable, Mapping, Sequence

from cotdistill.data.placeholders import placeholder_reason
from cotdistill.examples import LETTERS, Example, labels_equal, normalize_text, question_id
from cotdistill.errors import DataError

PLACEHOLDER_MIN_ROWS = 3   # one rationale text in this many rows of distinct questions …
NEAR_DUPLICATE = 0.8       # … that are not near-duplicates (difflib ratio of stems or choices below this)
LEAK_WARN_RATE = 0.10     # a split whose rationales name the gold answer this often is warned of
LEAK_WARN_ENV = "COTDISTILL_LEAK_WARN_RATE"
N_SHOWN = 3


def leak_warn_rate() -> float:
    """The leak rate from which reports and run summaries warn: $COTDISTILL_LEAK_WARN_RATE, else
    LEAK_WARN_RATE (0.10)."""
    import os
    value = os.environ.get(LEAK_WARN_ENV)
    if value is None or not value.strip():
        return LEAK_WARN_RATE
    try:
        rate = float(value)
    except ValueError:
        rate = -1.0
    if not 0 < rate <= 1:
        raise DataError(f"${LEAK_WARN_ENV} must be a share above 0 and at most 1 (e.g. 0.1), "
                        f"found {value!r}", field=LEAK_WARN_ENV)
    return rate


def normalize(text: str) -> str:
    """Question text for overlap: lowercase, punctuation dropped, whitespace collapsed."""
    return normalize_text(text)


def _answer_texts(example: Example) -> tuple[str | None, str | None]:
    """(gold letter or word, gold choice text) of an example."""
    if example.kind == "multiple_choice" and example.choices:
        return example.label, example.choices[LETTERS.index(example.label)]
    return example.label, None


_NUMBER_STATEMENT = re.compile(r"answer\s+(?:is|:)\s*:?\s*\$?\s*(-?\d[\d,]*(?:\.\d+)?)",
                               re.IGNORECASE)


def leak_kinds(example: Example) -> list[str]:
    """How the rationale names the gold answer: 'statement' ("answer is (c)" / "(c)" / "the
    answer is 42", numbers compared by value), 'opener' (it opens with the answer: "Yes," /
    "No." for yes/no, "42." for numbers, "(b)." / "B." for multiple choice), 'text' (the gold
    choice's text verbatim, whole words, and no other choice's); empty if it does not."""
    if not example.rationale:
        return []
    text, (letter, choice) = example.rationale, _answer_texts(example)
    found = []
    statement = rf"answer\s+(?:is|:)\s*:?\s*\(?{re.escape(letter)}\)?(?![\w])"
    bracketed = rf"\({re.escape(letter)}\)" if example.kind == "multiple_choice" else None
    numbers = [m.group(1).replace(",", "") for m in _NUMBER_STATEMENT.finditer(text)] \
        if example.kind == "numeric" else []
    if re.search(statement, text, re.IGNORECASE) or (bracketed and re.search(bracketed, text,
                                                                              re.IGNORECASE)) \
            or any(labels_equal("numeric", n, letter) for n in numbers):
        found.append("statement")
    opener = _opener(example.kind, text)
    if opener is not None and labels_equal(example.kind, opener, letter):
        found.append("opener")
    if choice and _quotes(text, choice) and not any(
            _quotes(text, other) for other in example.choices if other != choice):
        found.append("text")  # the gold choice alone: quoting every choice names none
    return found


_OPENERS = {
    "yes_no": re.compile(r"\W*(yes|no)\b(?=\s*[,.!:;]|\s*$)", re.IGNORECASE),
    "numeric": re.compile(r"\W*?\$?(-?\d[\d,]*(?:\.\d+)?)(?=\s*[,.!:;]\s|\s*[,.!:;]?$)"),
    "multiple_choice": re.compile(r"\s*\(?([A-Za-z])(?:\)|\.)(?=[\s,.:;]|$)"),
}


def _opener(kind: str, text: str) -> str | None:
    """The answer a rationale opens with ("Yes," / "42." / "(b)."), or None."""
    match = _OPENERS[kind].match(text)
    if match is None:
        return None
    answer = match.group(1)
    return answer.lower() if kind != "numeric" else answer.replace(",", "")


def _opener_span(kind: str, text: str) -> int:
    """Where the text after an opening answer starts (0 when it opens with none)."""
    match = _OPENERS[kind].match(text)
    if match is None:
        return 0
    rest = re.match(r"[\s,.!:;]*", text[match.end():])
    return match.end() + (rest.end() if rest else 0)


def _quotes(text: str, choice: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(choice)}(?!\w)", text, re.IGNORECASE) is not None


def strip_leaks(example: Example) -> str | None:
    """The rationale without the sentences that state the answer ('statement' leaks) and
    without an opening answer ('opener': "Yes, because …" -> "because …")."""
    if not example.rationale:
        return example.rationale
    text = example.rationale
    if "opener" in leak_kinds(example):
        text = text[_opener_span(example.kind, text):]
    sentences = re.split(r"(?<=[.!?])\s+", text)
    kept = [s for s in sentences
            if "statement" not in leak_kinds(Example(example.id, example.question, example.label,
                                                     example.choices, s, kind=example.kind))]
    return " ".join(kept).strip() or None


def data_report(splits: Mapping[str, Sequence[Example]], *,
                count: Callable[[str], int] | None = None, unit: str = "words",
                train_split: str = "train", leak_rate: float | None = None,
                notes: Mapping[str, Mapping[str, int]] | None = None) -> dict[str, Any]:
    """The report of a dataset given as {split: examples}; `count` measures a rationale's length
    (default: words); a split's leaks warn from `leak_rate` (default leak_warn_rate()); `notes`:
    what the import counted (a set's provenance `extra.import`; default: import_notes() of the
    examples themselves, empty for examples that were not just imported)."""
    count = count or (lambda text: len(text.split()))
    report: dict[str, Any] = {"unit": unit, "splits": {}, "overlap": {}, "warnings": []}
    for split, examples in splits.items():
        report["splits"][split] = _split_report(examples, count)
    train = splits.get(train_split)
    if train is not None:
        for split, examples in splits.items():
            if split != train_split:
                report["overlap"][split] = overlap(train, examples)
    report["import"] = {k: dict(v) for k, v in (import_notes(splits) if notes is None
                                                 else notes).items()}
    report["leak_warn_rate"] = leak_warn_rate() if leak_rate is None else leak_rate
    report["warnings"] = _warnings(report, train_split)
    return report


def import_notes(splits: Mapping[str, Sequence[Example]]) -> dict[str, dict[str, int]]:
    """What the importer noted on each split's examples (their meta): rationales cut and those
    whose cut marker was missing (kept whole), placeholder rationales (and how many were kept),
    duplicate test rows dropped. Splits with nothing noted are left out."""
    out = {}
    for split, examples in splits.items():
        cuts = [e.meta.get("cut") for e in examples if e.meta.get("cut")]
        placeholders = [e for e in examples if "placeholder" in e.meta]
        noted = {"n_cut": len(cuts), "n_cut_missed": cuts.count("missed"),
                 "n_placeholders": len(placeholders),
                 "n_placeholders_kept": sum(1 for e in placeholders if e.rationale),
                 "n_duplicates_dropped": sum(int(e.meta.get("duplicates_dropped", 0))
                                             for e in examples)}
        if any(noted.values()):
            out[split] = noted
    return out


def _split_report(examples: Sequence[Example], count: Callable[[str], int]) -> dict[str, Any]:
    with_rationale = [e for e in examples if e.rationale]
    lengths = [count(e.rationale) for e in with_rationale]
    leaks = {e.id: leak_kinds(e) for e in with_rationale}
    leaking = [i for i, kinds in leaks.items() if kinds]
    placeholders = [e for e in with_rationale if placeholder_reason(e.rationale)]
    flat = [" ".join(e.rationale.split()) for e in with_rationale]
    texts = Counter(flat)
    repeated = [(t, n) for t, n in texts.most_common() if n >= PLACEHOLDER_MIN_ROWS]
    shared = _shared(with_rationale, flat,
                     {t: n for t, n in repeated if not placeholder_reason(t)})
    questions = Counter(question_id(e) for e in examples)
    judged = [e for e in examples if e.teacher_correct is not None]
    twice = [e.id for e in examples if e.choices and len({" ".join(c.casefold().split()) for c in e.choices})
             < len(e.choices)]
    return {
        "n": len(examples), "labels": dict(sorted(Counter(e.label for e in examples).items())),
        "n_with_rationale": len(with_rationale),
        "n_empty_rationale": len(examples) - len(with_rationale),
        "rationale_length": _lengths(lengths),
        "leak": {"n": len(leaking),
                 "rate": len(leaking) / len(with_rationale) if with_rationale else 0.0,
                 "n_statement": sum("statement" in k for k in leaks.values()),
                 "n_opener": sum("opener" in k for k in leaks.values()),
                 "n_text": sum("text" in k for k in leaks.values()),
                 "examples": leaking[:N_SHOWN]},
        "repeated_rationales": [{"text": t[:80], "rows": n} for t, n in repeated[:N_SHOWN]],
        "n_rows_with_repeated_rationale": sum(n for _, n in repeated),
        "n_placeholder_rationales": len(placeholders),
        "placeholder_examples": [{"id": e.id, "text": e.rationale[:40]}
                                 for e in placeholders[:N_SHOWN]],
        "shared_rationales": shared[:N_SHOWN],
        "placeholder": bool(placeholders) or bool(shared),
        "n_questions": len(questions),
        "n_questions_with_several": sum(1 for n in questions.values() if n > 1),
        "n_teacher_judged": len(judged),
        "n_teacher_wrong": sum(1 for e in judged if not e.teacher_correct),
        "n_duplicate_choices": len(twice), "duplicate_choices_examples": twice[:N_SHOWN],
    }


def _shared(examples: Sequence[Example], flat: Sequence[str],
            texts: Mapping[str, int]) -> list[dict[str, Any]]:
    """The repeated rationale texts shared by at least PLACEHOLDER_MIN_ROWS distinct questions
    that are not near-duplicates of each other (the same rationale for 13 near-identical
    questions is a rationale; for unrelated questions it is a placeholder), most rows first."""
    by_text: dict[str, dict[str, tuple[str, str]]] = {}
    for e, text in (zip(examples, flat) if texts else ()):
        if text in texts:
            question = (normalize_text(e.question),
                        " | ".join(normalize_text(c) for c in e.choices or ()))
            by_text.setdefault(text, {}).setdefault(question_id(e), question)
    out = []
    for text, questions in by_text.items():
        kinds = _distinct(list(questions.values()), PLACEHOLDER_MIN_ROWS)
        if kinds >= PLACEHOLDER_MIN_ROWS:
            out.append({"text": text[:80], "rows": texts[text], "questions": len(questions)})
    return sorted(out, key=lambda s: -s["rows"])


def _distinct(questions: list[tuple[str, str]], enough: int) -> int:
    """How many of `questions` (stem, choices) are not near-duplicates of an earlier one: a
    near-duplicate has a near-equal stem and near-equal choices (counting stops at `enough`)."""
    kept: list[tuple[str, str]] = []
    for q in questions:
        if not any(all(difflib.SequenceMatcher(None, a, b).ratio() >= NEAR_DUPLICATE
                       for a, b in zip(q, k)) for k in kept):
            kept.append(q)
            if len(kept) >= enough:
                break
    return len(kept)


def _lengths(lengths: list[int]) -> dict[str, Any] | None:
    if not lengths:
        return None
    return {"min": min(lengths), "median": statistics.median(lengths),
            "mean": round(statistics.fmean(lengths), 2), "max": max(lengths)}


def overlap(train: Sequence[Example], other: Sequence[Example]) -> dict[str, Any]:
    """Items of `other` whose question (stem and choices) also occurs in `train`: exactly, and
    after normalize() (question_id)."""
    exact = {(e.question, e.choices) for e in train}
    loose = {question_id(e) for e in train}
    n_exact = [e.id for e in other if (e.question, e.choices) in exact]
    n_norm = [e.id for e in other if question_id(e) in loose]
    return {"n": len(other), "exact": len(n_exact), "normalized": len(n_norm),
            "examples": n_norm[:N_SHOWN]}


def run_data_check(train: Sequence[Example], test: Sequence[Example], *,
                   rationales_trained: bool = True,
                   leak_rate: float | None = None) -> dict[str, Any]:
    """What a run's summary says about the items it trained and tested on: test questions that
    also occur among the training ones (exact and normalized text), and the share of training
    rationales that name the gold answer (warned from `leak_rate`, default leak_warn_rate(), when
    the rationales are trained on: `rationales_trained`). `warnings`: one sentence each."""
    threshold = leak_warn_rate() if leak_rate is None else leak_rate
    found = overlap(train, test)
    with_rationale = [e for e in train if e.rationale]
    leaking = [e.id for e in with_rationale if leak_kinds(e)]
    rate = len(leaking) / len(with_rationale) if with_rationale else 0.0
    warnings = []
    if found["normalized"]:
        warnings.append(f"train/test overlap: {found['normalized']} of {found['n']} test questions "
                        f"also occur among the training questions ({found['exact']} exactly; e.g. "
                        f"{', '.join(found['examples'])}): their accuracy measures recall of "
                        f"training items")
    if rationales_trained and with_rationale and rate >= threshold:
        warnings.append(f"answer leak: {len(leaking)} of {len(with_rationale)} training rationales "
                        f"({rate:.0%}, warned from {threshold:.0%}) name the gold answer (e.g. "
                        f"{', '.join(leaking[:N_SHOWN])}): the student can learn the label from "
                        f"the rationale; cut or strip the answer statements at import")
    return {"overlap": found,
            "leak": {"n": len(leaking), "n_with_rationale": len(with_rationale), "rate": rate,
                     "threshold": threshold, "rationales_trained": rationales_trained,
                     "examples": leaking[:N_SHOWN]},
            "warnings": warnings}


def _warnings(report: dict[str, Any], train_split: str) -> list[str]:
    out = []
    for split, s in report["splits"].items():
        if s["n_with_rationale"] and s["leak"]["rate"] >= report["leak_warn_rate"]:
            out.append(f"{split}: {s['leak']['n']} of {s['n_with_rationale']} rationales "
                       f"({s['leak']['rate']:.0%}) name the gold answer ("
                       f"{s['leak']['n_statement']} state it, {s['leak']['n_opener']} open with "
                       f"it, {s['leak']['n_text']} quote the gold choice's text; e.g. "
                       f"{', '.join(s['leak']['examples'])}); cut answer statements "
                       f"(--rationale-cut, --strip-leaks) and check whether quoting the "
                       f"choice gives the answer away")
        if s["n_placeholder_rationales"]:
            shown = ", ".join(repr(p["text"]) for p in s["placeholder_examples"])
            out.append(f"{split}: {s['n_placeholder_rationales']} of {s['n_with_rationale']} "
                       f"rationales are placeholders, not rationales (e.g. {shown}: empty, nan, "
                       f"-, a single word); import with --placeholders drop")
        for shared in s["shared_rationales"]:
            out.append(f"{split}: the rationale {shared['text']!r} appears in {shared['rows']} "
                       f"rows of {shared['questions']} distinct questions: a placeholder, not a "
                       f"rationale")
        if s["n_empty_rationale"] and s["n_with_rationale"]:
            out.append(f"{split}: {s['n_empty_rationale']} of {s['n']} rows have no rationale")
        if s["n_questions_with_several"] and split == train_split:
            out.append(f"{split}: {s['n_questions_with_several']} questions appear in several "
                       f"rows ({s['n']} rows, {s['n_questions']} questions): n_train counts "
                       f"questions, and a drawn question trains on all its rows")
        if s.get("n_duplicate_choices"):
            out.append(f"{split}: {s['n_duplicate_choices']} rows list the same choice twice (e.g. "
                       f"{', '.join(s['duplicate_choices_examples'])}): two letters name one answer, "
                       f"so scoring splits between them; remove the repeated choice")
        if s["n_teacher_wrong"]:
            out.append(f"{split}: the teacher disagrees with gold on {s['n_teacher_wrong']} of "
                       f"{s['n_teacher_judged']} rows")
    for split, o in report["overlap"].items():
        if o["normalized"]:
            out.append(f"{split}: {o['normalized']} of {o['n']} questions also occur in "
                       f"{train_split} ({o['exact']} exactly; e.g. {', '.join(o['examples'])})")
    for split, n in report.get("import", {}).items():
        if n.get("n_cut_missed"):
            out.append(f"{split}: the rationale cut marker is missing from {n['n_cut_missed']} of "
                       f"{n['n_cut']} rationales ({n['n_cut_missed'] / n['n_cut']:.0%}), kept "
                       f"whole with whatever follows the reasoning; check --rationale-cut")
        dropped = n.get("n_placeholders", 0) - n.get("n_placeholders_kept", 0)
        if dropped:
            out.append(f"{split}: {dropped} placeholder rationales (empty, nan, -, a single "
                       f"word) were dropped at import: those rows have no rationale")
    return out


def format_report(report: Mapping[str, Any]) -> str:
    """The report as text lines for a terminal."""
    lines = []
    for split, s in report["splits"].items():
        length = s["rationale_length"]
        size = (f"{report['unit']} median {length['median']} (min {length['min']}, max "
                f"{length['max']})" if length else "no rationales")
        lines.append(f"{split}: {s['n']} rows, {s['n_with_rationale']} with a rationale, "
                     f"{size}; labels {s['labels']}; leak {s['leak']['n']} "
                     f"({s['leak']['rate']:.1%}: {s['leak']['n_statement']} state the answer, "
                     f"{s['leak']['n_opener']} open with it, {s['leak']['n_text']} quote the "
                     f"gold choice); {s['n_questions']} questions; "
                     f"{s['n_placeholder_rationales']} placeholder rationales")
    for split, o in report["overlap"].items():
        lines.append(f"overlap {split}/train: {o['exact']} exact, {o['normalized']} normalized "
                     f"of {o['n']}")
    for split, n in report.get("import", {}).items():
        parts = []
        if n.get("n_cut"):
            parts.append(f"cut marker missing in {n['n_cut_missed']} of {n['n_cut']} "
                         f"({n['n_cut_missed'] / n['n_cut']:.1%})")
        if n.get("n_placeholders"):
            parts.append(f"{n['n_placeholders']} placeholder rationales "
                         f"({n['n_placeholders_kept']} kept)")
        if n.get("n_duplicates_dropped"):
            parts.append(f"{n['n_duplicates_dropped']} duplicate rows of a question dropped "
                         f"(one row per question; --keep-duplicate-test-rows keeps them)")
        if parts:
            lines.append(f"import {split}: " + "; ".join(parts))
    lines += [f"warning: {w}" for w in report["warnings"]]
    return "\n".join(lines)
