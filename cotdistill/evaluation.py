"""Evaluation: one record per test example, in two modes.

    records = evaluate(model, builder, examples, mode="score", batch_size=32, device="cpu")
    summary = summarize(records)      # accuracy with its 95% bootstrap interval

- `score`: rank the candidate labels by the log-likelihood of the label continuation right after the
  prompt (for `before`, of "So the answer is (x)", skipping the rationale). All candidates of a batch
  of examples go through the model in one forward pass; the output layer runs only on the
  continuation positions.
- `generate`: greedy decoding with the KV cache, stopping each example as soon as its label is
  complete (after the rationale for `before`), then parsing the label from the text.

Records: example_id, gold, predicted (None when no label could be parsed), correct, scores
({label: log-likelihood} in score mode) and generated (the text, in generate mode).
"""

from __future__ import annotations

import inspect
from typing import Sequence

import torch

from cotdistill.examples import Example, labels_equal
from cotdistill.placements import SequenceBuilder, parse_label
from cotdistill.stats import bootstrap_ci


def evaluate(model, builder: SequenceBuilder, examples: Sequence[Example], *, mode: str,
             batch_size: int = 32, max_new_tokens: int = 128, device="cpu", progress=None) -> list[dict]:
    if mode not in ("score", "generate"):
        raise ValueError(f"evaluation mode must be 'score' or 'generate', not {mode!r}")
    if mode == "score":
        missing = next((ex for ex in examples if ex.label_options is None), None)
        if missing is not None:
            raise ValueError(f"score evaluation needs candidate labels, but example {missing.id!r} "
                             f"is {missing.kind}: use eval.mode=generate")
    model.to(device).eval()
    pad = builder.tok.pad_token_id if builder.tok.pad_token_id is not None else builder.tok.eos_token_id
    records = []
    with torch.inference_mode():
        for start in range(0, len(examples), batch_size):
            batch = examples[start:start + batch_size]
            if mode == "score":
                records += score_batch(model, builder, batch, pad, device)
            else:
                records += generate_batch(model, builder, batch, pad, max_new_tokens, device)
            if progress is not None:
                progress(min(start + batch_size, len(examples)), len(examples))
    return records


def _record(ex: Example, predicted: str | None, **extra) -> dict:
    return {"example_id": ex.id, "gold": ex.label, "predicted": predicted,
            "correct": labels_equal(ex.kind, predicted, ex.label), **extra}


def score_batch(model, builder: SequenceBuilder, batch: Sequence[Example], pad: int, device) -> list[dict]:
    rows = []  # (example index, candidate, ids, start of the continuation)
    for i, ex in enumerate(batch):
        for option in ex.label_options:
            cont = builder.continuation_ids(option, ex.kind)
            prompt = builder.prompt_ids(ex)[-(builder.max_length - len(cont)):]   # as in training
            rows.append((i, option, prompt + cont, len(prompt)))
    width = max(len(r[2]) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros_like(ids)
    target = torch.zeros((len(rows), width), dtype=torch.bool)   # positions whose NEXT token is scored
    for r, (_, _, seq, cont) in enumerate(rows):
        ids[r, :len(seq)] = torch.tensor(seq)
        mask[r, :len(seq)] = 1
        target[r, cont - 1:len(seq) - 1] = True
    ids, mask, target = ids.to(device), mask.to(device), target.to(device)
    hidden = model.base_model(input_ids=ids, attention_mask=mask).last_hidden_state
    logp = torch.log_softmax(model.get_output_embeddings()(hidden[target]).float(), dim=-1)
    next_tokens = torch.roll(ids, -1, dims=1)[target]
    token_lp = logp.gather(1, next_tokens[:, None]).squeeze(1)
    row_of = torch.arange(len(rows), device=device)[:, None].expand_as(target)[target]
    totals = torch.zeros(len(rows), device=device).index_add_(0, row_of, token_lp).tolist()
    scores: list[dict[str, float]] = [{} for _ in batch]
    for (i, option, _, _), total in zip(rows, totals):
        scores[i][option] = total
    return [_record(ex, max(s, key=s.get), scores=s, generated=None) for ex, s in zip(batch, scores)]


def generate_batch(model, builder: SequenceBuilder, batch: Sequence[Example], pad: int,
                   max_new_tokens: int, device) -> list[dict]:
    tok, eos = builder.tok, builder.tok.eos_token_id
    prompts = [builder.prompt_ids(ex)[-builder.max_length:] for ex in batch]   # cut like training does
    width = max(len(p) for p in prompts)
    ids = torch.full((len(batch), width), pad, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for r, p in enumerate(prompts):                     # left padding: every row ends at the same column
        ids[r, width - len(p):] = torch.tensor(p)
        mask[r, width - len(p):] = 1
    ids, mask = ids.to(device), mask.to(device)
    out_tokens: list[list[int]] = [[] for _ in batch]
    labels: list[str | None] = [None] * len(batch)
    done = [False] * len(batch)
    cache, step_ids = None, ids
    for _ in range(max_new_tokens):
        positions = (mask.cumsum(1) - 1).clamp(min=0)[:, -step_ids.shape[1]:]
        out = model(input_ids=step_ids, attention_mask=mask, position_ids=positions,
                    use_cache=True, **{_cache_arg(model): cache})
        cache = out.cache if getattr(out, "cache", None) is not None else out.past_key_values
        nxt = out.logits[:, -1].argmax(-1)               # greedy
        for r, t in enumerate(nxt.tolist()):
            if done[r]:
                continue
            if t == eos:
                done[r] = True
                labels[r] = parse_label(tok.decode(out_tokens[r]), batch[r].kind, builder.placement, True)
                continue
            out_tokens[r].append(t)
            labels[r] = parse_label(tok.decode(out_tokens[r]), batch[r].kind, builder.placement, False)
            done[r] = labels[r] is not None
        if all(done):
            break
        step_ids = nxt[:, None]
        mask = torch.cat([mask, torch.ones_like(step_ids)], dim=1)
    for r, ex in enumerate(batch):                      # out of budget: parse what there is
        if labels[r] is None:
            labels[r] = parse_label(tok.decode(out_tokens[r]), ex.kind, builder.placement, True)
    return [_record(ex, labels[r], scores=None, generated=tok.decode(out_tokens[r]))
            for r, ex in enumerate(batch)]


def _cache_arg(model) -> str:
    """transformers renamed `past_key_values` to `cache` during v5; accept both."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def summarize(records: Sequence[dict], *, n_boot: int = 10_000, seed: int = 0) -> dict:
    """Accuracy with its 95% bootstrap interval, and how many predictions could not be parsed."""
    if not records:
        raise ValueError("no evaluation records")
    interval = bootstrap_ci([r["correct"] for r in records], n_boot=n_boot, seed=seed)
    return {"n": len(records), "accuracy": interval.estimate, "accuracy_low": interval.low,
            "accuracy_high": interval.high, "unparsed": sum(r["predicted"] is None for r in records)}
