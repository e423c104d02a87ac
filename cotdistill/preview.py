"""What the student is trained on, exactly: token by token, supervised or not.

    rows = preview_rows(cfg, n=3, placements=["before", "after"], perturbations=["none", "shuffle"])
    print(render(rows[0], color=False))

`preview_rows` returns plain data (tokens, weights, spans) so that anything, the terminal or a web
page, can show it; `render` draws one row for a terminal: supervised tokens in green (or between
« » without colour), ignored ones dimmed.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

from cotdistill.config import RunConfig
from cotdistill.perturbations import validate_params
from cotdistill.placements import WORD_FILLER, WORD_MASK

GREEN, DIM, BOLD, RESET = "\x1b[32m", "\x1b[2m", "\x1b[1m", "\x1b[0m"


def preview_rows(cfg: RunConfig, *, n: int = 3, placements: Sequence[str] | None = None,
                 perturbations: Sequence[str] | None = None, split: str = "train") -> list[dict]:
    from cotdistill import data
    from cotdistill.runner import load_examples, make_builder, tokenizer_texts
    from cotdistill.students import load_tokenizer

    train, _ = load_examples(cfg)
    examples = train if split == "train" else data.load_examples(cfg.data.name, split, **cfg.data.options)
    tok = load_tokenizer(cfg.student, train_texts=tokenizer_texts(train))
    rows = []
    for placement in placements or [cfg.placement]:
        for kind in perturbations or [cfg.perturbation.kind]:
            params = cfg.perturbation.params if kind == cfg.perturbation.kind else validate_params(kind, {})
            pert = dataclasses.replace(cfg.perturbation, kind=kind, params=params)
            variant = dataclasses.replace(cfg, placement=placement, perturbation=pert)
            builder = make_builder(variant, tok, train)
            marks = placeholders(builder) if kind in PLACEHOLDER_KINDS else {}
            for ex in examples[:n]:
                seq = builder.build(ex)
                rows.append({"example_id": ex.id, "placement": placement, "perturbation": kind,
                             "tokens": [tok.decode([t]) for t in seq.input_ids], "ids": seq.input_ids,
                             "weights": seq.weights, "spans": seq.spans, "truncated": seq.truncated,
                             "placeholders": marks, "bos": tok.decode(builder.bos_ids) if builder.bos_ids else None})
    return rows


PLACEHOLDER_KINDS = ("mask", "filler")


def placeholders(builder) -> dict[str, str]:
    """The text the `mask` and `filler` units stand for with this builder's level and tokenizer."""
    if builder.level == "word":
        return {"mask": WORD_MASK, "filler": WORD_FILLER}
    mask, filler = builder.placeholder_ids()
    return {"mask": builder.tok.decode([mask]), "filler": builder.tok.decode([filler])}


def render(row: dict, color: bool = True) -> str:
    head = (f"── {row['example_id']} · placement={row['placement']} · perturbation={row['perturbation']}"
            f" · {len(row['ids'])} tokens, {sum(w > 0 for w in row['weights'])} supervised"
            + (" · truncated" if row["truncated"] else "")
            + "".join(f" · {name} unit {text!r}" for name, text in row.get("placeholders", {}).items())
            + (f" · starts with {row['bos']!r}" if row.get("bos") else ""))
    parts, inside = [], False
    for token, w in zip(row["tokens"], row["weights"]):
        if color:
            parts.append((GREEN if w > 0 else DIM) + token + RESET)
        else:
            if (w > 0) != inside:
                parts.append("«" if w > 0 else "»")
                inside = w > 0
            parts.append(token)
    if inside:
        parts.append("»")
    spans = ", ".join(f"{role} {a}:{b}" for role, (a, b) in row["spans"].items())
    return f"{BOLD if color else ''}{head}{RESET if color else ''}\n{''.join(parts)}\n   spans: {spans}"
