"""The built-in key-token study task: facts among filler words, then a count.

    load_examples("synthetic-keyfacts", "train")                  # 2,000 questions, 3 facts + 6 fillers
    load_examples("synthetic-keyfacts", "test", n_fillers=9)

The counting world of cotdistill/data/counting.py (each made-up object has one colour) asked the same
way, with a rationale whose words are of two kinds: one *fact word* per listed object ("bako=red",
in the question's order) and *filler words*, English function words in a fixed order, which carry
nothing; the fact words sit at the same, evenly spread positions in every rationale:

    question:  "Items: lafo, kofa, kada. How many are blue?"
    rationale: "so lafo=blue we have kofa=red that and kada=blue also"      label "c" (2)

Test questions differ from each other and from the training questions, and they carry the signal: the
answer follows from the listed objects through their colours, which the question does not state. So

- label-only learns each colour only through counts (a weak, aggregated signal);
- the full rationale after the label supervises every colour directly (the fillers are trivial to predict);
- the fact words alone (the key tokens, top k = n_items) carry everything the full rationale does;
- k random words of the rationale hold n_items·k/(n_items+n_fillers) facts on average: less.

Every fact word supports the gold count (without it the count could be one more or one less), so a
sound attribution on a model that reads the rationale before the label (a `before` run) ranks the
fact words first; `meta["key_indices"]` holds their word positions (`meta["keys"]` the words).
Knobs: n_train, n_test, n_items, n_objects, n_colours, n_fillers, seed. Train and test never share a
question; everything is a pure function of the options.
"""

from __future__ import annotations

import math
import random
from typing import Any

from cotdistill.data.counting import COLOURS, distinct_questions, world
from cotdistill.examples import LETTERS, Example
from cotdistill.errors import DataError

SPLITS = ("train", "test")
FILLERS = ("so", "we", "have", "that", "and", "also", "then", "all", "of", "these", "here", "it")
DEFAULTS: dict[str, Any] = {"n_train": 2000, "n_test": 300, "n_items": 3, "n_objects": 24, "n_colours": 2,
                            "n_fillers": 6, "seed": 0}


def fact_word(item: str, colour: str) -> str:
    return f"{item}={colour}"


def fact_slots(n_items: int, n_fillers: int) -> list[int]:
    """Word positions of the fact words: spread evenly over the rationale, the same in every example."""
    total = n_items + n_fillers
    return [int((i + 0.5) * total / n_items) for i in range(n_items)]


def make_example(split: str, number: int, items: tuple[str, ...], colour: str, facts: dict[str, str],
                 n_fillers: int) -> Example:
    """One question; the facts keep the question's order, the fillers fill the other slots in order."""
    keys = [fact_word(i, facts[i]) for i in items]
    slots = fact_slots(len(keys), n_fillers)
    fact_iter, filler_iter = iter(keys), iter(FILLERS[j % len(FILLERS)] for j in range(n_fillers))
    words = [next(fact_iter) if position in slots else next(filler_iter) for position in range(len(keys) + n_fillers)]
    count = sum(facts[i] == colour for i in items)
    example_id = f"keyfacts-{split}-{number:05d}"
    return Example(id=example_id, question=f"Items: {', '.join(items)}. How many are {colour}?",
                   choices=tuple(str(k) for k in range(len(items) + 1)), label=LETTERS[count],
                   rationale=" ".join(words), teacher_label=LETTERS[count],
                   meta={"key_indices": slots, "keys": keys, "colour": colour, "count": count})


def validate(opts: dict) -> dict:
    """The options, checked: DataError naming the first bad one."""
    unknown = sorted(set(opts) - set(DEFAULTS))
    if unknown:
        raise DataError(f"unknown option {unknown[0]!r} for dataset 'synthetic-keyfacts'; accepted: "
                        f"{', '.join(DEFAULTS)}", field=unknown[0])
    bounds = {"n_train": (1, None), "n_test": (1, None), "n_items": (1, 25), "n_objects": (2, 2000),
              "n_colours": (2, len(COLOURS)), "n_fillers": (0, 64), "seed": (-(2 ** 63), None)}
    for name, (low, high) in bounds.items():
        value = opts[name]
        if isinstance(value, bool) or not isinstance(value, int) or value < low or (high and value > high):
            raise DataError(f"option {name!r} must be an integer >= {low}"
                            + (f" and <= {high}" if high else "") + f", found {value!r}", field=name)
    if opts["n_items"] > opts["n_objects"]:
        raise DataError("option 'n_items' cannot exceed 'n_objects'", field="n_items")
    questions = math.comb(opts["n_objects"], opts["n_items"]) * opts["n_colours"]
    for split, share in (("train", 0.8), ("test", 0.2)):        # in_test_pool: one question in five
        room = int(questions * share * 0.9)                     # with a margin for the hash's spread
        if opts[f"n_{split}"] > room:
            raise DataError(f"{opts[f'n_{split}']} {split} questions asked, but n_objects={opts['n_objects']}, "
                            f"n_items={opts['n_items']}, n_colours={opts['n_colours']} allow about {room}: "
                            f"raise n_objects or n_items", field=f"n_{split}")
    return opts


def load_keyfacts(split: str, **options: Any) -> list[Example]:
    """The examples of one split; options as in DEFAULTS (the registry has checked the split)."""
    opts = validate({**DEFAULTS, **options})
    facts = world(opts["n_objects"], opts["n_colours"], opts["seed"])
    names, colours = list(facts), COLOURS[:opts["n_colours"]]
    rng = random.Random(f"keyfacts:{opts['seed']}:{split}")
    questions = distinct_questions(rng, names, colours, opts["n_items"], opts["seed"], split)
    return [make_example(split, number, *next(questions), facts, opts["n_fillers"])
            for number in range(1, opts[f"n_{split}"] + 1)]
