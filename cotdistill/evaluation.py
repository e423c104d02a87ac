"""Evaluation: one record per test example, in two modes.

    records = evaluate(model, builder, examples, mode="score", batch_size=32, device="cpu")
    summary = summarize(records)      # accuracy with its 95% bootstrap interval

- `score`: rank the candidate labels by the log-likelihood of the label continuation right after the
  prompt (for `before`, of "So the answer is (x)", skipping the rationale). Each prompt runs once;
  all candidates of a batch then go through the model together, on the prompts' repeated KV cache.
- `generate`: greedy decoding with the KV cache, stopping each example as soon as its label is
  complete (after the rationale for `before`), then parsing the label from the text.

Records: example_id, gold, predicted (None when no label could be parsed), correct, scores
({label: log-likelihood} in score mode) and generated (the text, in generate mode).
"""

from __future__ import annotations

import functools
import inspect
from typing import Sequence

import torch

from cotdistill.examples import Example, labels_equal
from cotdistill.placements import SequenceBuilder, parse_label
from cotdistill.stats import bootstrap_ci


def evaluate(model, builder: SequenceBuilder, examples: Sequence[Example], *, mode: str,
             batch_size: int = 32, max_new_tokens: int = 128, device="cpu", progress=None,
             stop_at_label: bool = True) -> list[dict]:
    """One record per example. `stop_at_label=False` lets generation run on to the end of sequence
    (to read the rationale an `after` student writes); the label is parsed the same way."""
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
                records += generate_batch(model, builder, batch, pad, max_new_tokens, device, stop_at_label)
            if progress is not None:
                progress(min(start + batch_size, len(examples)), len(examples))
    return records


def _record(ex: Example, predicted: str | None, **extra) -> dict:
    return {"example_id": ex.id, "gold": ex.label, "predicted": predicted,
            "correct": labels_equal(ex.kind, predicted, ex.label), **extra}


def _pad(rows: Sequence[list[int]], pad: int, device, *, left: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad to the longest row; left padding makes every row end at the same column. -> ids, mask (B, T)."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for r, row in enumerate(rows):
        cols = slice(width - len(row), width) if left else slice(0, len(row))
        ids[r, cols] = torch.tensor(row)
        mask[r, cols] = 1
    return ids.to(device), mask.to(device)


def score_batch(model, builder: SequenceBuilder, batch: Sequence[Example], pad: int, device) -> list[dict]:
    """Each prompt runs once; its KV cache is repeated for the candidates, whose continuation
    tokens then go through the model together in a second, short forward pass."""
    options = [list(ex.label_options) for ex in batch]
    n_cand = max(len(o) for o in options)
    conts = [[builder.continuation_ids(o, ex.kind) for o in opts] for ex, opts in zip(batch, options)]
    conts = [c + [c[-1]] * (n_cand - len(c)) for c in conts]          # pad with a duplicate, dropped below
    longest = max(len(c) for cs in conts for c in cs)
    prompts = [builder.prompt_ids(ex)[-(builder.max_length - longest):] for ex in batch]   # as in training
    ids, mask = _pad(prompts, pad, device, left=True)
    positions = (mask.cumsum(1) - 1).clamp(min=0)
    out = model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, logits_to_keep=1)
    first_logp = torch.log_softmax(out.logits[:, -1].float(), -1)    # (B, vocab): the first continuation token
    cache = _cache_of(out)
    cache.batch_repeat_interleave(n_cand)
    cont_ids, cont_mask = _pad([c for cs in conts for c in cs], pad, device, left=False)  # (B * n_cand, longest)
    rep_mask = mask.repeat_interleave(n_cand, 0)
    cont_pos = rep_mask.sum(1, keepdim=True) + torch.arange(longest, device=device)[None]
    logits = model(input_ids=cont_ids, attention_mask=torch.cat([rep_mask, cont_mask], 1),
                   position_ids=cont_pos, use_cache=True, **{_cache_arg(type(model)): cache}).logits
    logp = torch.log_softmax(logits[:, :-1].float(), -1)               # (B*C, longest-1, vocab)
    later = logp.gather(2, cont_ids[:, 1:, None]).squeeze(2) * cont_mask[:, 1:]
    first = first_logp.repeat_interleave(n_cand, 0).gather(1, cont_ids[:, :1]).squeeze(1)
    totals = (first + later.sum(1)).view(len(batch), n_cand).tolist()
    records = []
    for ex, opts, row in zip(batch, options, totals):
        scores = dict(zip(opts, row[:len(opts)]))
        records.append(_record(ex, max(scores, key=scores.get), scores=scores, generated=None))
    return records


def generate_batch(model, builder: SequenceBuilder, batch: Sequence[Example], pad: int,
                   max_new_tokens: int, device, stop_at_label: bool = True) -> list[dict]:
    tok, eos = builder.tok, builder.tok.eos_token_id
    prompts = [builder.prompt_ids(ex)[-builder.max_length:] for ex in batch]   # cut like training does
    ids, mask = _pad(prompts, pad, device, left=True)
    out_tokens: list[list[int]] = [[] for _ in batch]
    labels: list[str | None] = [None] * len(batch)
    done = [False] * len(batch)
    cache, step_ids = None, ids
    for _ in range(max_new_tokens):
        positions = (mask.cumsum(1) - 1).clamp(min=0)[:, -step_ids.shape[1]:]
        out = model(input_ids=step_ids, attention_mask=mask, position_ids=positions,
                    use_cache=True, **{_cache_arg(type(model)): cache})
        cache = _cache_of(out)
        nxt = out.logits[:, -1].argmax(-1)               # greedy
        for r, t in enumerate(nxt.tolist()):
            if done[r]:
                continue
            if t == eos:
                done[r] = True
                labels[r] = parse_label(tok.decode(out_tokens[r]), batch[r].kind, builder.placement, True)
                continue
            out_tokens[r].append(t)
            if stop_at_label:
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


@functools.cache
def _cache_arg(model_class) -> str:
    """transformers renamed `past_key_values` to `cache` during v5; accept both (looked up once per class)."""
    return "cache" if "cache" in inspect.signature(model_class.forward).parameters else "past_key_values"


def _cache_of(out):
    return out.cache if getattr(out, "cache", None) is not None else out.past_key_values


def summarize(records: Sequence[dict], *, n_boot: int = 10_000, seed: int = 0) -> dict:
    """Accuracy with its 95% bootstrap interval, and how many predictions could not be parsed."""
    if not records:
        raise ValueError("no evaluation records")
    interval = bootstrap_ci([r["correct"] for r in records], n_boot=n_boot, seed=seed)
    return {"n": len(records), "accuracy": interval.estimate, "accuracy_low": interval.low,
            "accuracy_high": interval.high, "unparsed": sum(r["predicted"] is None for r in records)}
