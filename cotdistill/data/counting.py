"""The built-in counting task: facts to recall, then a count — the demo's offline testbed.

    load_examples("synthetic-count", "train")                  # 3,000 items over a 40-object world
    load_examples("synthetic-count", "test", n_items=6, n_objects=80, teacher_accuracy=0.8)

A seeded "world" gives each of `n_objects` made-up object names one colour. A question lists
`n_items` objects and asks how many have one colour; the rationale recalls each object's colour,
which the question does not say (it must be learned from the training data, like world knowledge):

    question:  "Items: bako, tiru, lemi, sova. How many are red?"
    rationale: "bako is red. tiru is blue. lemi is red. sova is green."
    choices:   ("0", "1", "2", "3", "4"), label "c"

The answer follows from the question through the intermediate facts the rationale spells out. Trained
on the label alone, a student learns each object's colour only through the count (a weak signal);
a rationale, wherever it is placed, supervises every fact. Knobs (difficulty and size): n_train,
n_test, n_items, n_objects, n_colours, seed, teacher_accuracy (with probability 1 - accuracy one
recalled fact is wrong and teacher_label is the count it implies). How much the rationale carries:
fact_share (each fact is stated with this probability; 0 leaves the rationale "Nothing recalled.",
which carries nothing), fact_noise (each stated fact's colour is replaced by a uniformly random
one with this probability: at 1.0 the rationale keeps its form and carries no fact) and leak_rate (this share of rationales end with "So the answer is (x).", the
teacher's answer stated outright: a leak the data report must flag). Train and test never share a
question; both are pure functions of the options, and the defaults of the two rationale knobs draw
no random numbers, so the items do not change when they are added.
"""

from __future__ import annotations

import hashlib
import math
import random
from typing import Any

from cotdistill.examples import LETTERS, Example
from cotdistill.errors import DataError

SPLITS = ("train", "test")
COLOURS = ("red", "blue", "green", "yellow", "white", "black")
DEFAULTS: dict[str, Any] = {"n_train": 3000, "n_test": 300, "n_items": 4, "n_objects": 40,
                            "n_colours": 3, "seed": 0, "teacher_accuracy": 1.0,
                            "fact_share": 1.0, "fact_noise": 0.0, "leak_rate": 0.0, "fact_form": "sentence", "asked_colours": 0, "shown_share": 0.0}
FACT_FORMS = {"sentence": "{item} is {colour}.", "pair": "{item} {colour}."}
"""How the rationale states one fact: "bako is red." or "bako red." (the colour right after the name)."""
CONSONANTS, VOWELS = "bdfgklmnprstvz", "aeiou"


def world(n_objects: int, n_colours: int, seed: int) -> dict[str, str]:
    """Object name -> colour; names are distinct two-syllable made-up words, colours balanced."""
    rng = random.Random(f"count:{seed}:world")
    names: dict[str, None] = {}
    while len(names) < n_objects:
        names.setdefault("".join(rng.choice(CONSONANTS) + rng.choice(VOWELS) for _ in range(2)))
    colours = [COLOURS[i % n_colours] for i in range(n_objects)]
    rng.shuffle(colours)
    return dict(zip(names, colours))


def in_test_pool(items: tuple[str, ...], colour: str, seed: int) -> bool:
    digest = hashlib.blake2b(f"{seed}:{','.join(items)}:{colour}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % 5 == 0          # one question in five is a test question


def distinct_questions(rng: random.Random, names: list[str], colours: tuple[str, ...], n_items: int,
                       seed: int, split: str):
    """(items, colour) of the split's questions, each once, in the order `rng` draws them: a question
    belongs to test when in_test_pool says so, to train otherwise (never to both). Endless: the
    caller takes as many as it needs (validate has checked there is room)."""
    seen: set = set()
    while True:
        items = tuple(rng.sample(names, n_items))
        colour = rng.choice(colours)
        key = (frozenset(items), colour)
        if key in seen or in_test_pool(tuple(sorted(items)), colour, seed) != (split == "test"):
            continue
        seen.add(key)
        yield items, colour


def make_example(split: str, number: int, items: tuple[str, ...], colour: str, facts: dict[str, str],
                 rng: random.Random, accuracy: float, fact_share: float = 1.0, leak_rate: float = 0.0,
                 knob_rng: random.Random | None = None, fact_noise: float = 0.0,
                 fact_form: str = "sentence", in_question: tuple[str, ...] = ()) -> Example:
    recalled = {item: facts[item] for item in items}
    if rng.random() >= accuracy:                            # the teacher misremembers one fact
        item = rng.choice(items)
        recalled[item] = rng.choice([c for c in dict.fromkeys(facts.values()) if c != facts[item]])
    count = sum(facts[i] == colour for i in items)
    shown = sum(recalled[i] == colour for i in items)
    stated = items if fact_share >= 1 else [i for i in items if knob_rng.random() < fact_share]
    palette = list(dict.fromkeys(facts.values()))
    said = {i: (knob_rng.choice(palette) if fact_noise > 0 and knob_rng.random() < fact_noise else recalled[i])
            for i in stated}
    rationale = " ".join(FACT_FORMS[fact_form].format(item=i, colour=said[i]) for i in stated) or "Nothing recalled."
    leaked = leak_rate > 0 and knob_rng.random() < leak_rate
    if leaked:
        rationale += f" So the answer is ({LETTERS[shown]})."
    listed = ", ".join(f"{i} {facts[i]}" if i in in_question else i for i in items)
    return Example(id=f"count-{split}-{number:05d}",
                   question=f"Items: {listed}. How many are {colour}?",
                   choices=tuple(str(k) for k in range(len(items) + 1)), label=LETTERS[count],
                   rationale=rationale, teacher_label=LETTERS[shown],
                   meta={"colour": colour, "count": count, "facts_stated": len(stated), "leaked": leaked,
                         "in_question": len(in_question)})


def validate(opts: dict) -> dict:
    unknown = sorted(set(opts) - set(DEFAULTS))
    if unknown:
        raise DataError(f"unknown option {unknown[0]!r} for dataset 'synthetic-count'; accepted: "
                        f"{', '.join(DEFAULTS)}", field=unknown[0])
    bounds = {"n_train": (1, None), "n_test": (1, None), "n_items": (1, 25),
              "n_objects": (2, 2000), "n_colours": (2, len(COLOURS)), "seed": (-(2 ** 63), None)}
    for name, (low, high) in bounds.items():
        value = opts[name]
        if isinstance(value, bool) or not isinstance(value, int) or value < low or (high and value > high):
            raise DataError(f"option {name!r} must be an integer >= {low}"
                            + (f" and <= {high}" if high else "") + f", found {value!r}", field=name)
    if opts["n_items"] > opts["n_objects"]:
        raise DataError("option 'n_items' cannot exceed 'n_objects'", field="n_items")
    asked = opts["asked_colours"]
    if isinstance(asked, bool) or not isinstance(asked, int) or not 0 <= asked <= opts["n_colours"]:
        raise DataError(f"option 'asked_colours' must be an integer from 0 (all) to n_colours="
                        f"{opts['n_colours']}, found {asked!r}", field="asked_colours")
    if opts["fact_form"] not in FACT_FORMS:
        raise DataError(f"option 'fact_form' must be one of {', '.join(FACT_FORMS)}, found {opts['fact_form']!r}",
                        field="fact_form")
    for name in ("teacher_accuracy", "fact_share", "fact_noise", "leak_rate", "shown_share"):
        value = opts[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise DataError(f"option {name!r} must be between 0 and 1, found {value!r}", field=name)
    for split, room in room_for(opts).items():
        if opts[f"n_{split}"] > room:
            raise DataError(f"{opts[f'n_{split}']} {split} questions asked, but n_objects={opts['n_objects']}, "
                            f"n_items={opts['n_items']}, n_colours={opts['n_colours']} allow about {room}: "
                            f"raise n_objects or n_items", field=f"n_{split}")
    return opts


def room_for(opts: dict) -> dict[str, int]:
    """The most questions each split may ask: half of its pool (one question in five is a test
    question), so that drawing distinct questions stays quick."""
    total = math.comb(opts["n_objects"], opts["n_items"]) * (opts.get("asked_colours") or opts["n_colours"])
    return {"train": total * 2 // 5, "test": total // 10}


def load_counting(split: str, **options: Any) -> list[Example]:
    opts = validate({**DEFAULTS, **options})
    if split not in SPLITS:
        raise DataError(f"dataset 'synthetic-count' has no split {split!r}; valid splits: "
                        f"{', '.join(SPLITS)}", field="split")
    facts = world(opts["n_objects"], opts["n_colours"], opts["seed"])
    names, colours = list(facts), COLOURS[:opts["asked_colours"] or opts["n_colours"]]
    rng = random.Random(f"count:{opts['seed']}:{split}")
    examples: list[Example] = []
    for items, colour in distinct_questions(rng, names, colours, opts["n_items"], opts["seed"], split):
        if len(examples) == opts[f"n_{split}"]:
            break
        teacher_rng = random.Random(f"count:{opts['seed']}:{split}:{len(examples)}:teacher")
        knob_rng = random.Random(f"count:{opts['seed']}:{split}:{len(examples)}:rationale")
        in_question: tuple[str, ...] = ()
        if opts["shown_share"] > 0:
            shown_rng = random.Random(f"count:{opts['seed']}:{split}:{len(examples)}:shown")
            in_question = tuple(i for i in items if shown_rng.random() < opts["shown_share"])
        examples.append(make_example(split, len(examples) + 1, items, colour, facts, teacher_rng,
                                     opts["teacher_accuracy"], opts["fact_share"], opts["leak_rate"],
                                     knob_rng, opts["fact_noise"], opts["fact_form"], in_question))
    return examples
