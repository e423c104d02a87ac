"""The built-in synthetic reasoning task: chains of modular arithmetic with spelled-out rationales.

    load_examples("synthetic", "train")                         # 2,000 items, 3 steps, mod 10
    load_examples("synthetic", "test", steps=5, seed=1, teacher_accuracy=0.8)

An example:
    question:  "Start at 7. Add 5. Multiply by 3. Subtract 4. What number do you get?"
    rationale: "7 + 5 = 2. 2 * 3 = 6. 6 - 4 = 2."      (every value is taken mod `modulus`)
    choices:   ("6", "2", "7", "9"), label "b"            (distractors prefer intermediate values)

Knobs: n_train, n_test, steps (difficulty), n_choices, modulus, seed and teacher_accuracy (with
probability 1 - teacher_accuracy one step of the rationale is wrong, the later steps follow from
the wrong value, and teacher_label is the letter of the wrong final result). Everything is a pure
function of the options: same options, same examples. A keyed hash of the question sends one
question in TEST_SHARE to the test pool and the rest to the train pool, so the splits never
share a question and neither depends on the other's size. Labels are balanced across letters.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from typing import Any

from cotdistill.examples import LETTERS, Example
from cotdistill.errors import DataError

SPLITS = ("train", "test")
DEFAULTS: dict[str, Any] = {"n_train": 2000, "n_test": 300, "steps": 3, "n_choices": 4,
                            "modulus": 10, "seed": 0, "teacher_accuracy": 1.0}
TEST_SHARE = 5  # one question in five belongs to the test pool
WORDS = {"+": "Add {}.", "-": "Subtract {}.", "*": "Multiply by {}."}


def operations(modulus: int) -> list[tuple[str, int]]:
    """Every (operator, operand) a step may use; adding 0 or multiplying by 0 or 1 is excluded."""
    return ([("+", k) for k in range(1, modulus)] + [("-", k) for k in range(1, modulus)]
            + [("*", k) for k in range(2, modulus)])


def apply(op: str, value: int, operand: int, modulus: int) -> int:
    if op == "+":
        return (value + operand) % modulus
    if op == "-":
        return (value - operand) % modulus
    return (value * operand) % modulus


@dataclass(frozen=True)
class Chain:
    """One question: a start value and its steps."""

    start: int
    steps: tuple[tuple[str, int], ...]

    def values(self, modulus: int) -> list[int]:
        """The start value and the value after every step."""
        values = [self.start]
        for op, operand in self.steps:
            values.append(apply(op, values[-1], operand, modulus))
        return values

    def question(self) -> str:
        words = " ".join(WORDS[op].format(operand) for op, operand in self.steps)
        return f"Start at {self.start}. {words} What number do you get?"


def rationale(chain: Chain, values: list[int]) -> str:
    """Every step written out: '7 + 5 = 2. 2 * 3 = 6.' (values as the teacher computed them)."""
    return " ".join(f"{values[i]} {op} {operand} = {values[i + 1]}."
                    for i, (op, operand) in enumerate(chain.steps))


def question_space(steps: int, modulus: int) -> int:
    return modulus * len(operations(modulus)) ** steps


def decode(index: int, steps: int, modulus: int) -> Chain:
    """The question with this index in [0, question_space): a mixed-radix number."""
    ops = operations(modulus)
    index, start = divmod(index, modulus)
    chosen = []
    for _ in range(steps):
        index, k = divmod(index, len(ops))
        chosen.append(ops[k])
    return Chain(start, tuple(chosen))


def in_test_pool(index: int, seed: int) -> bool:
    digest = hashlib.blake2b(f"{seed}:{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % TEST_SHARE == 0


def sample_questions(split: str, n: int, steps: int, modulus: int, seed: int) -> list[int]:
    """n distinct question indices from the split's pool, in a seeded order."""
    rng = random.Random(f"synthetic:{seed}:{split}:questions")
    space, want_test = question_space(steps, modulus), split == "test"
    chosen: dict[int, None] = {}
    for _ in range(100 * n + 10_000):  # a guard; the pools are at least twice n (_check_room)
        if len(chosen) == n:
            return list(chosen)
        index = rng.randrange(space)
        if in_test_pool(index, seed) == want_test:
            chosen.setdefault(index)
    if len(chosen) == n:
        return list(chosen)
    raise DataError(f"could not find {n} distinct {split} questions for steps={steps}, "
                    f"modulus={modulus}; raise steps or modulus", field=f"n_{split}")


def teacher_error(chain: Chain, values: list[int], rng: random.Random,
                  modulus: int) -> tuple[list[int], int]:
    """(values with one wrong step whose error reaches the final value, the wrong step's index)."""
    for k in rng.sample(range(len(chain.steps)), len(chain.steps)):
        wrong_values = [v for v in range(modulus) if v != values[k + 1]]
        rng.shuffle(wrong_values)
        for wrong in wrong_values:
            shown = values[: k + 1] + [wrong]
            for op, operand in chain.steps[k + 1:]:
                shown.append(apply(op, shown[-1], operand, modulus))
            if shown[-1] != values[-1]:
                return shown, k
    raise AssertionError("unreachable: a wrong last step always changes the final value")


def distractors(values: list[int], forced: int | None, n: int, rng: random.Random,
                modulus: int) -> list[int]:
    """n wrong answers: `forced` (the teacher's wrong result) first, then intermediate values,
    then any other numbers; returned shuffled."""
    answer = values[-1]
    pool = [] if forced is None else [forced]
    intermediate = [v for v in dict.fromkeys(values[:-1]) if v != answer and v not in pool]
    rng.shuffle(intermediate)
    pool += intermediate
    others = [v for v in range(modulus) if v != answer and v not in pool]
    rng.shuffle(others)
    picked = (pool + others)[:n]
    rng.shuffle(picked)
    return picked


def make_example(split: str, number: int, index: int, position: int, opts: dict) -> Example:
    """The example for one question index, its answer placed at choice `position`."""
    modulus, seed = opts["modulus"], opts["seed"]
    chain = decode(index, opts["steps"], modulus)
    values = chain.values(modulus)
    teacher_rng = random.Random(f"synthetic:{seed}:{index}:teacher")
    shown, error_step = values, None
    if teacher_rng.random() >= opts["teacher_accuracy"]:
        shown, error_step = teacher_error(chain, values, teacher_rng, modulus)
    choice_rng = random.Random(f"synthetic:{seed}:{index}:choices")
    forced = shown[-1] if error_step is not None else None
    numbers = distractors(values, forced, opts["n_choices"] - 1, choice_rng, modulus)
    numbers.insert(position, values[-1])
    choices = tuple(str(v) for v in numbers)
    return Example(id=f"synthetic-{split}-{number:05d}", question=chain.question(),
                   choices=choices, label=LETTERS[position], rationale=rationale(chain, shown),
                   teacher_label=LETTERS[numbers.index(shown[-1])],
                   meta={"values": values, "teacher_error_step": error_step, "index": index})


def load_synthetic(split: str, **options: Any) -> list[Example]:
    """The examples of one split; options as in DEFAULTS."""
    opts = validate_options({**DEFAULTS, **options})
    if split not in SPLITS:
        raise DataError(f"dataset 'synthetic' has no split {split!r}; valid splits: "
                        f"{', '.join(SPLITS)}", field="split")
    n = opts[f"n_{split}"]
    _check_room(opts, f"n_{split}")
    indices = sample_questions(split, n, opts["steps"], opts["modulus"], opts["seed"])
    positions = [i % opts["n_choices"] for i in range(n)]  # balanced letters, then shuffled
    random.Random(f"synthetic:{opts['seed']}:{split}:positions").shuffle(positions)
    return [make_example(split, number, index, position, opts)
            for number, (index, position) in enumerate(zip(indices, positions), start=1)]


def _int_option(opts: dict, name: str, low: int, high: int | None = None) -> None:
    value = opts[name]
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (
            high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise DataError(f"option {name!r} must be an integer {bound}, found {value!r}",
                        field=name)


def validate_options(opts: dict) -> dict:
    """The options, checked: DataError naming the first bad one."""
    unknown = sorted(set(opts) - set(DEFAULTS))
    if unknown:
        raise DataError(f"unknown option {unknown[0]!r} for dataset 'synthetic'; accepted: "
                        f"{', '.join(DEFAULTS)}", field=unknown[0])
    _int_option(opts, "modulus", 3, 1000)
    _int_option(opts, "steps", 1, 50)
    _int_option(opts, "n_choices", 2, min(len(LETTERS), opts["modulus"]))
    _int_option(opts, "n_train", 1)
    _int_option(opts, "n_test", 1)
    _int_option(opts, "seed", -(2**63))
    accuracy = opts["teacher_accuracy"]
    if isinstance(accuracy, bool) or not isinstance(accuracy, (int, float)) or not (
            0.0 <= accuracy <= 1.0):
        raise DataError(f"option 'teacher_accuracy' must be a number between 0 and 1, found "
                        f"{accuracy!r}", field="teacher_accuracy")
    return opts


def _check_room(opts: dict, name: str) -> None:
    """The split's pool must be at least twice the size asked of it (so sampling stays quick)."""
    space = question_space(opts["steps"], opts["modulus"])
    share = 1 if name == "n_test" else TEST_SHARE - 1
    limit = space * share // TEST_SHARE // 2
    if opts[name] > limit:
        raise DataError(f"option {name!r} = {opts[name]} is too large for steps={opts['steps']}, "
                        f"modulus={opts['modulus']} ({space} distinct questions; at most {limit} "
                        f"for this split): raise steps or modulus, or ask for fewer", field=name)
