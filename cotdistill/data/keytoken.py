"""The built-in key-token task: one word of the rationale decides the label, the others are noise.

    load_examples("synthetic-key", "train")                     # 2,000 items, 6 rationale words
    load_examples("synthetic-key", "test", n_words=10)

A yes/no task. The question never says the answer; the rationale holds exactly one key word among
made-up distractor words, and the key word alone decides the label (lit, bright, glowing: yes;
dark, unlit, dim: no):

    question:  "Do the notes say the lamp shines?"
    rationale: "kavo lupe dim situ mora dabe"          label "no"

It is the ground truth for token attribution: a scoring model trained with the rationale before the
label must draw the label from that one word, so a sound attribution method ranks it first
(`meta["key_index"]` is its word position). The key words never occur in the prompt, so the model
cannot find them anywhere else.

A share `blank_share` of the training examples has no key word and a label that alternates yes/no,
so a trained model learns that without a key word the answer is a coin flip. Without them it may
learn "no unless a yes-word is present": then the no-words decide nothing, for that model. Test
examples always hold a key word. Knobs: n_train, n_test, n_words (rationale length), blank_share,
seed. Labels are balanced; train and test never share a rationale; everything is a pure function
of the options.
"""

from __future__ import annotations

import hashlib
import random
from typing import Any

from cotdistill.examples import YES_NO, Example
from cotdistill.errors import DataError

SPLITS = ("train", "test")
KEYS = {"yes": ("lit", "bright", "glowing"), "no": ("dark", "unlit", "dim")}
DISTRACTORS = ("kavo", "lupe", "situ", "mora", "dabe", "niko", "fela", "rasu", "tomi", "gilo",
               "pane", "vuro")
QUESTION = "Do the notes say the lamp shines?"
DEFAULTS: dict[str, Any] = {"n_train": 2000, "n_test": 300, "n_words": 6, "blank_share": 0.2, "seed": 0}


def in_test_pool(words: tuple[str, ...], seed: int) -> bool:
    digest = hashlib.blake2b(f"key:{seed}:{' '.join(words)}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % 5 == 0          # one rationale in five is a test one


def make_example(split: str, number: int, words: tuple[str, ...], key_index: int | None,
                 label: str) -> Example:
    # every example asks the same question about its own notes: each is its own item (question_id)
    example_id = f"key-{split}-{number:05d}"
    return Example(id=example_id, question=QUESTION, choices=YES_NO, label=label,
                   rationale=" ".join(words), teacher_label=label, kind="yes_no",
                   meta={"key_index": key_index, "key": None if key_index is None else words[key_index],
                         "question_id": example_id})


def validate(opts: dict) -> dict:
    """The options, checked: DataError naming the first bad one."""
    unknown = sorted(set(opts) - set(DEFAULTS))
    if unknown:
        raise DataError(f"unknown option {unknown[0]!r} for dataset 'synthetic-key'; accepted: "
                        f"{', '.join(DEFAULTS)}", field=unknown[0])
    bounds = {"n_train": (1, None), "n_test": (1, None), "n_words": (2, 64), "seed": (-(2 ** 63), None)}
    for name, (low, high) in bounds.items():
        value = opts[name]
        if isinstance(value, bool) or not isinstance(value, int) or value < low or (high and value > high):
            raise DataError(f"option {name!r} must be an integer >= {low}"
                            + (f" and <= {high}" if high else "") + f", found {value!r}", field=name)
    share = opts["blank_share"]
    if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 <= share < 1:
        raise DataError(f"option 'blank_share' must be a number in [0, 1), found {share!r}",
                        field="blank_share")
    room = len(DISTRACTORS) ** (opts["n_words"] - 1) * opts["n_words"] * 6 // 10
    if opts["n_train"] + opts["n_test"] > room:
        raise DataError(f"{opts['n_train'] + opts['n_test']} examples asked, but n_words="
                        f"{opts['n_words']} allows about {room}: raise n_words", field="n_words")
    return opts


def load_keytoken(split: str, **options: Any) -> list[Example]:
    """The examples of one split; options as in DEFAULTS."""
    opts = validate({**DEFAULTS, **options})                # the registry has checked the split
    n = opts[f"n_{split}"]
    rng = random.Random(f"key:{opts['seed']}:{split}")
    seen: set = set()
    examples: list[Example] = []
    while len(examples) < n:
        label = YES_NO[len(examples) % 2]                   # balanced labels
        blank = split == "train" and rng.random() < opts["blank_share"]
        key_index = None if blank else rng.randrange(opts["n_words"])
        words = [rng.choice(DISTRACTORS) for _ in range(opts["n_words"] - (not blank))]
        if not blank:
            words.insert(key_index, rng.choice(KEYS[label]))
        words = tuple(words)
        if words in seen or in_test_pool(words, opts["seed"]) != (split == "test"):
            continue
        seen.add(words)
        examples.append(make_example(split, len(examples) + 1, words, key_index, label))
    return examples
