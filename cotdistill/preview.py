"""What the student is trained on, exactly: token by token, supervised or not.

    rows = preview_rows(cfg, n=3, placements=["before", "after"], perturbations=["none", "shuffle"])
    print(render(rows[0], color=False))

`preview_rows` returns plain data (tokens, weights, spans) so that anything, the terminal or a web
page, can show it; `render` draws one row for a terminal: supervised tokens in green (or between
« » without colour), ignored ones dimmed. Each row also says the arm's label share of the loss under
train.loss_normalization (cotdistill.sequences.placements.label_share): token, the label's weight over all
supervised weight of SHARE_SAMPLE training examples pooled as a batch pools them; segment, 1 / (1 + w).
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

from cotdistill.config import RunConfig
from cotdistill.sequences.perturbations import validate_params
from cotdistill.sequences.placements import WORD_FILLER, WORD_MASK, label_share

GREEN, DIM, BOLD, RESET = "\x1b[32m", "\x1b[2m", "\x1b[1m", "\x1b[0m"
SHARE_SAMPLE = 64
"""Training examples (the first of the run's sample) the label share is measured on."""


def preview_rows(cfg: RunConfig, *, n: int = 3, placements: Sequence[str] | None = None,
                 perturbations: Sequence[str] | None = None, split: str = "train") -> list[dict]:
    from cotdistill import data
    from cotdistill.run import load_examples, make_builder, tokenizer_texts
    from cotdistill.students.loading import load_tokenizer

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
            norm = cfg.train.loss_normalization
            sample = built(builder, train[:SHARE_SAMPLE])
            share = label_share(sample, norm)
            for ex in examples[:n]:
                seq = builder.build(ex)
                rows.append({"example_id": ex.id, "placement": placement, "perturbation": kind,
                             "tokens": [tok.decode([t]) for t in seq.input_ids], "ids": seq.input_ids,
                             "weights": seq.weights, "spans": seq.spans, "truncated": seq.truncated,
                             "placeholders": marks, "bos": tok.decode(builder.bos_ids) if builder.bos_ids else None,
                             "label_share": share, "label_share_n": len(sample),
                             "loss_normalization": norm})
    return rows


def built(builder, examples) -> list:
    """The training sequences of `examples` that build (key_tokens: those with scores)."""
    out = []
    for ex in examples:
        try:
            out.append(builder.build(ex))
        except ValueError:
            continue
    return out


PLACEHOLDER_KINDS = ("mask", "filler")


def placeholders(builder) -> dict[str, str]:
    """The text the `mask` and `filler` units stand for with this builder's level and tokenizer."""
    if builder.text_level:
        return {"mask": WORD_MASK, "filler": WORD_FILLER}
    mask, filler = builder.placeholder_ids()
    return {"mask": builder.tok.decode([mask]), "filler": builder.tok.decode([filler])}


def share_text(row: dict) -> str:
    """'label share of the loss 0.071 (token normalisation, 64 training examples)'."""
    how = ("segment normalisation: 1 / (1 + rationale_weight)" if row["loss_normalization"] == "segment"
           else f"token normalisation, {row['label_share_n']} training examples")
    return f"label share of the loss {row['label_share']:.3f} ({how})"


def render(row: dict, color: bool = True) -> str:
    head = (f"── {row['example_id']} · placement={row['placement']} · perturbation={row['perturbation']}"
            f" · {len(row['ids'])} tokens, {sum(w > 0 for w in row['weights'])} supervised"
            + (" · truncated" if row["truncated"] else "")
            + "".join(f" · {name} unit {text!r}" for name, text in row.get("placeholders", {}).items())
            + (f" · starts with {row['bos']!r}" if row.get("bos") else "")
            + (f"\n   {share_text(row)}" if row.get("label_share") is not None else ""))
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
