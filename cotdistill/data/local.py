"""Loaders for the five local releases under `data_dir()`, each read as its SOURCE.md describes.

Call them through `cotdistill.data.load_examples(name, split, **options)`; directly:

    load_commonsenseqa(data_dir() / "commonsenseqa-dsbs", "train")
    load_openbookqa(folder, "valid", teacher="llama")
    load_quarel(folder, "train", dedupe=False, source="gpt3")
    load_strategyqa(folder, "test")
    load_svamp(folder, "train")

Distilling-Step-by-Step releases (CommonsenseQA, SVAMP) and TinyLLM's OpenBookQA keep items in
JSON Lines and raw teacher completions in position-aligned shards `llm/<split>_CoT_<i>.json`.
MaRio releases (QuaRel, StrategyQA) are read from their unquoted `raw/<split>.tsv` files.
`meta` keeps provenance: the item's row, the teacher's raw answer text, the equation (SVAMP).

Parsing the completions: cut at the first 'Q:' (the model's next few-shot question), rationale =
the text before the answer marker, teacher_label = the one '(x)' letter after it (a hedge such as
'either (a) aquarium or (e) pond' gives None). A completion that never reaches the marker (SVAMP:
11 train, 2 test, truncated loops) gets no rationale, as Distilling Step-by-Step does.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Iterable, NamedTuple

from cotdistill.data.arithmetic import try_evaluate
from cotdistill.data.readers import (Where, answer_letter, cut_cot, read_jsonl,
                                     read_keyed_object, read_shards, read_table)
from cotdistill.examples import LETTERS, YES_NO, Example, format_number
from cotdistill.errors import DataError

MARIO_COLUMNS = ("Question", "Rationale", "Label")
QUAREL_QUESTION = re.compile(r"(?s)\s*(.*?)\s*\(A\)\s*(.*?)\s*\(B\)\s*(.*?)\s*")


# --- Distilling-Step-by-Step / TinyLLM layout: items + aligned CoT shards -------------------

def _items_with_cots(folder: Path, items_file: str, split: str) -> list[tuple[Where, dict, str]]:
    items = read_jsonl(folder / items_file)
    cots = read_shards(folder, split, len(items), items_file)
    return [(where, record, cot) for (where, record), cot in zip(items, cots)]


def _choices(where: Where, record: dict, n: int, field: str = "choices") -> tuple[str, ...]:
    if field not in record:
        raise where.error("missing field", field)
    choices = record[field]
    if not isinstance(choices, list) or len(choices) != n:
        raise where.error(f"expected a list of {n} choices, found {choices!r}", field)
    if any(not isinstance(c, str) or not c.strip() for c in choices):
        raise where.error("empty value: a choice is empty or not text", field)
    return tuple(c.strip() for c in choices)


def _letter_of_answer(where: Where, record: dict, choices: tuple[str, ...]) -> str:
    """The letter of the answer text among the choices (the first, if a choice repeats)."""
    answer = where.text(record, "answer")
    if answer not in choices:
        raise where.error(f"label not among the choices: answer {answer!r} is not one of "
                          f"{list(choices)}", "answer")
    return LETTERS[choices.index(answer)]


def load_commonsenseqa(folder: Path, split: str) -> list[Example]:
    """CommonsenseQA + PaLM-540B rationales; teacher_label from '(x)' after 'So the answer is'."""
    examples = []
    for where, record, cot in _items_with_cots(folder, f"cqa_{split}.json", split):
        choices = _choices(where, record, 5)
        rationale, answer = cut_cot(cot, "So the answer is")
        examples.append(Example(
            id=where.text(record, "id"), question=where.text(record, "question"),
            choices=choices, label=_letter_of_answer(where, record, choices),
            rationale=rationale, teacher_label=answer_letter(answer, len(choices)),
            meta={"row": where.row, "teacher_answer": answer}))
    return examples


TEACHERS = ("flan", "llama")
LLAMA_SEPARATOR = " llama rationale:"
LLAMA_ANSWER = re.compile(r"answer is:?\s*\(([a-zA-Z])\)")


def _obqa_teacher(cot: str, teacher: str, n: int) -> tuple[str | None, str | None, str | None]:
    """(rationale, teacher_label, answer text) of one teacher in the two-teacher string."""
    flan, _, llama = cot.partition(LLAMA_SEPARATOR)
    if teacher == "flan":
        rationale, answer = cut_cot(flan, "Thus, the answer is", stop="\n\nQ:")
        return rationale, answer_letter(answer, n), answer
    match = LLAMA_ANSWER.search(llama)
    letter = match.group(1).lower() if match else ""
    return llama.strip() or None, letter if letter and letter in LETTERS[:n] else None, None


def load_openbookqa(folder: Path, split: str, teacher: str = "flan") -> list[Example]:
    """OpenBookQA with the FLAN-T5 (default; told the gold answer) or the LLaMA-2 rationale."""
    if teacher not in TEACHERS:
        raise DataError(f"unknown teacher {teacher!r}; expected one of {', '.join(TEACHERS)}",
                        field="teacher")
    examples = []
    for where, record, cot in _items_with_cots(folder, f"obqa_{split}.json", split):
        choices = _choices(where, record, 4)
        rationale, teacher_label, answer = _obqa_teacher(cot, teacher, len(choices))
        examples.append(Example(
            id=where.text(record, "id"), question=where.text(record, "question"),
            choices=choices, label=_letter_of_answer(where, record, choices),
            rationale=rationale, teacher_label=teacher_label,
            meta={"row": where.row, "teacher": teacher, "teacher_answer": answer}))
    return examples


def _svamp_teacher(answer: str | None) -> str | None:
    """The value of the teacher's final expression '(84 / 2).', or None if it is not arithmetic."""
    if not answer:
        return None
    expression = answer[:-1] if answer.endswith(".") else answer
    value = try_evaluate(expression)
    return None if value is None else format_number(value)


def load_svamp(folder: Path, split: str) -> list[Example]:
    """SVAMP: numeric labels computed from the gold equation, PaLM-540B rationales."""
    examples = []
    for n, (where, record, cot) in enumerate(
            _items_with_cots(folder, f"svamp_{split}.json", split), start=1):
        equation = where.text(record, "label")
        value = try_evaluate(equation)
        if value is None:
            raise where.error(f"equation {equation!r} is not plain arithmetic (numbers, + - * /, "
                              f"parentheses) or has no value", "label")
        rationale, answer = cut_cot(cot, "The answer is")
        examples.append(Example(
            id=f"svamp-{split}-{n:04d}", question=where.text(record, "input"),
            label=format_number(value), kind="numeric", rationale=rationale,
            teacher_label=_svamp_teacher(answer),
            meta={"row": where.row, "equation": equation, "teacher_answer": answer}))
    return examples


# --- MaRio layout: raw/<split>.tsv (or gpt3/<split>_gpt3_responses.jsonl) -----------------

class MarioRow(NamedTuple):
    where: Where
    question: str
    rationale: str | None
    label: str
    teacher: str | None  # the teacher's answer as written ('(b)', 'yes'); None if unknown
    fields: tuple[str, str] = ("Question", "Label")  # the file's names for question and label


def _mario_tsv(folder: Path, split: str) -> list[MarioRow]:
    # The TSVs are not quoted: cells may start with a literal '"' (QUOTE_NONE keeps it).
    _, rows = read_table(folder / "raw" / f"{split}.tsv", MARIO_COLUMNS, "\t",
                         quoting=csv.QUOTE_NONE)
    out = []
    for where, row in rows:
        rationale = where.text(row, "Rationale")
        out.append(MarioRow(where, where.text(row, "Question"),
                            None if rationale == "dummy" else rationale,
                            where.text(row, "Label"), None))
    return out


def _mario_gpt3(folder: Path, split: str) -> list[MarioRow]:
    path = folder / "gpt3" / f"{split}_gpt3_responses.jsonl"
    out = []
    for where, record in read_keyed_object(path):
        out.append(MarioRow(where, where.text(record, "question"),
                            where.text(record, "predicted_rationale", optional=True),
                            where.text(record, "gold_label"),
                            where.text(record, "predicted_label", optional=True),
                            ("question", "gold_label")))
    return out


def _mario_examples(rows: list[MarioRow], prefix: str, dedupe: bool, convert) -> list[Example]:
    """Examples numbered by first occurrence of their question: 'prefix-0001' (first row per
    question) if dedupe, else every row as 'prefix-0001-row00042'."""
    first = _first_rows(rows)
    numbers = {question: n for n, question in enumerate(first, start=1)}
    if dedupe:
        return [convert(f"{prefix}-{numbers[q]:04d}", row) for q, row in first.items()]
    return [convert(f"{prefix}-{numbers[row.question]:04d}-row{row.where.row:05d}", row)
            for row in rows]


def _first_rows(rows: Iterable[MarioRow]) -> dict[str, MarioRow]:
    """The first row of every question; DataError if a repeat disagrees on the gold label."""
    first: dict[str, MarioRow] = {}
    for row in rows:
        seen = first.setdefault(row.question, row)
        if seen.label != row.label:
            raise row.where.error(f"the same question has label {row.label!r} here but "
                                  f"{seen.label!r} at row {seen.where.row}", row.fields[1])
    return first


def _quarel_example(example_id: str, row: MarioRow, source: str) -> Example:
    match = QUAREL_QUESTION.fullmatch(row.question)
    if not match or not all(match.groups()):
        raise row.where.error("expected a question 'stem (A) option (B) option'", row.fields[0])
    stem, *choices = match.groups()
    return Example(id=example_id, question=stem, choices=tuple(choices),
                   label=_quarel_letter(row.where, row.label, row.fields[1]),
                   rationale=row.rationale,
                   teacher_label=_quarel_letter(row.where, row.teacher, None),
                   meta={"row": row.where.row, "source": source})


def _quarel_letter(where: Where, text: str | None, field: str | None) -> str | None:
    """'(B)' -> 'b'. A bad gold label (field given) is an error; a bad teacher label is None."""
    match = re.fullmatch(r"\(?([A-Za-z])\)?", (text or "").strip())
    letter = match.group(1).lower() if match else None
    if letter in ("a", "b"):
        return letter
    if field is None:
        return None
    raise where.error(f"label not among the choices: {text!r} is not (A) or (B)", field)


QUAREL_SOURCES = ("raw", "gpt3")


def load_quarel(folder: Path, split: str, dedupe: bool = True,
                source: str = "raw") -> list[Example]:
    """QuaRel; choices parsed from the question text ('stem (A) x (B) y').

    source='raw' reads raw/<split>.tsv: train holds only the GPT-3 samples whose answer was right
    (teacher_label stays None: the file does not record it); dev/test have no rationales.
    source='gpt3' reads all GPT-3 samples (train, test) with the teacher's own labels, wrong ones
    included. dedupe keeps the first row of every question.
    """
    if source not in QUAREL_SOURCES:
        raise DataError(f"unknown source {source!r}; expected one of {', '.join(QUAREL_SOURCES)}",
                        field="source")
    _check_bool(dedupe, "dedupe")
    if source == "gpt3" and split not in ("train", "test"):
        raise DataError(f"source 'gpt3' has no {split!r} split: GPT-3 responses exist for train "
                        f"and test only", field="source")
    rows = _mario_tsv(folder, split) if source == "raw" else _mario_gpt3(folder, split)
    prefix = f"quarel-{split}" if source == "raw" else f"quarel-gpt3-{split}"
    return _mario_examples(rows, prefix, dedupe,
                           lambda example_id, row: _quarel_example(example_id, row, source))


def _strategyqa_example(example_id: str, row: MarioRow, split: str) -> Example:
    label = row.label.strip().lower()
    if label not in YES_NO:
        raise row.where.error(f"label not among the choices: {row.label!r} is not yes or no",
                              row.fields[1])
    # train rationales are GPT-3's; dev/test carry StrategyQA's human-written facts instead.
    source = "gpt3" if split == "train" else "strategyqa facts (human)"
    return Example(id=example_id, question=row.question, choices=YES_NO, label=label,
                   kind="yes_no", rationale=row.rationale,
                   meta={"row": row.where.row, "rationale_source": source})


def load_strategyqa(folder: Path, split: str, dedupe: bool = True) -> list[Example]:
    """StrategyQA (yes/no) from raw/<split>.tsv.

    train: the GPT-3 samples whose answer was right, up to 5 per question (dedupe keeps the
    first). dev/test: the rationale column holds StrategyQA's human-written facts, not 'dummy'.
    """
    _check_bool(dedupe, "dedupe")
    return _mario_examples(_mario_tsv(folder, split), f"strategyqa-{split}", dedupe,
                           lambda example_id, row: _strategyqa_example(example_id, row, split))


def _check_bool(value, name: str) -> None:
    if not isinstance(value, bool):
        raise DataError(f"option {name!r} must be true or false, found {value!r}", field=name)
