"""Token attribution: how much each rationale token matters for the gold label.

    student = load_scoring_model("runs/key-before")      # a `before` run, a StudentConfig, or a model id/path
    results = attribute(student.model, student.tokenizer, examples, method="ig", steps=32, device="cuda")
    write_scores("scores.jsonl", results, level="word")  # perturbation.scores_file for key_tokens

What is attributed: f = log p(label tokens | prompt, rationale, answer marker), the sequence exactly as
the `before` placement builds it (`SequenceBuilder`), seen as a function of the input embeddings of the
rationale tokens; every other position keeps its real embedding.

Methods (`METHODS`):
- ``ig``: integrated gradients along the straight line from the baseline to the real embeddings,
  integrated with `steps`-node Gauss-Legendre quadrature (exact for polynomials of degree 2*steps-1,
  so far closer to completeness than a Riemann sum of the same cost). Completeness: the scores sum to
  f(x) - f(baseline); `completeness_error` is |sum(scores) - (f(x) - f(baseline))| in nats, per
  example. A confident model can have a sharp path that 32 nodes do not resolve: read the error, and
  raise `steps` or pass `tolerance` (examples above it are redone with doubled steps).
- ``grad_x_input``: (x - baseline) . grad f(x); with the zero baseline, the usual gradient x input.
  Its sign is unreliable in transformers whose blocks normalise their input (LayerNorm, RMSNorm):
  f hardly changes when a token's embedding is scaled, so x . grad f ~ -(position part) . grad f.
  The magnitude still finds the tokens that matter; write |scores| (`write_scores(absolute=True)`)
  before feeding them to key_tokens.
- ``occlusion``: f(x) - f(x with token i replaced by the baseline), for each token i: exact
  leave-one-out, one forward per token. Replacing rather than deleting keeps every other token at
  its position, so the score change is due to the token alone.

Baseline (`baseline=`): ``zero`` (default), the zero token embedding: "no token here" while the
position (embedding or rotary) stays. It is not neutral for the model (no training input looks
like it), so f(baseline) can be confident either way; IG's scores then explain f(x) - f(baseline),
which may be near 0 for some examples. ``pad`` uses the pad token's embedding instead (for the tiny
student it is never trained, so random rather than neutral; pretrained models often pad with eos).

Batching: the unit of work is a row, one sequence with its rationale embeddings set (an IG
interpolation step, the real input, the baseline, or one occluded token); `batch_size` rows go through
the model per pass, across examples and steps. The prompt before the rationale is the same in every
row of an example and, under causal attention, never depends on the rationale: it runs once per
example and pass, and its KV cache is copied to the example's rows (2x faster IG on CommonsenseQA,
whose prompts are half the sequence). Examples are taken longest first; rows are right-padded, and
a real token never sees the padding after it, so results do not depend on the batching beyond float
rounding. The model is put in eval mode (no dropout) and sums avoid atomic adds: the same inputs
give the same scores (on GPU, up to the attention kernels' own summation order).

Each result (one dict per example, in the input order): example_id, method, baseline, steps (IG),
token_ids, tokens (each rationale token decoded), scores (one per token), words (the rationale
split on whitespace, the units of `level: word`), word_scores (sum over each word's tokens),
word_of_token, label_logprob (f(x)), baseline_logprob and completeness_error (IG only, else None).
"""

from __future__ import annotations

import inspect
import json
import os
import re
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import torch

from cotdistill.config import StudentConfig
from cotdistill.examples import Example
from cotdistill.students.logits import logits_at
from cotdistill.sequences.placements import SequenceBuilder
from cotdistill.students.loading import Student, load_pretrained, load_student

METHODS = ("ig", "grad_x_input", "occlusion")
BASELINES = ("zero", "pad")
LEVELS = ("word", "token")


@dataclass
class _Item:
    """One example made ready for scoring."""

    example_id: str
    ids: list[int]                  # prompt + rationale + answer marker + label (no eos)
    rationale: tuple[int, int]      # token span of the rationale in ids
    label: tuple[int, int]          # token span of the label in ids
    words: list[str]
    word_of_token: list[int]

    @property
    def split(self) -> int:
        """Where each row starts: ids before it (the prompt) are the same in every row."""
        return min(self.rationale[0], self.label[0] - 1)


@dataclass(frozen=True)
class _Row:
    """One sequence to run: item `item` with rationale = baseline + alpha (x - baseline), and token
    `occlude` (an index into the rationale) set to the baseline; `weight` scales its gradient."""

    item: int
    alpha: float
    weight: float = 0.0
    occlude: int = -1
    role: str = "step"              # step | input | baseline | occluded


# ---------------------------------------------------------------- preparing examples

def _word_of_token(tokenizer, text: str, ids: list[int]) -> list[int]:
    """The word (index into text.split()) each token of " " + text belongs to.

    A token belongs to the word of its first non-space character; a token of spaces only goes to
    the next word. Offsets come from a fast tokenizer, else from decoding growing prefixes."""
    spaced = " " + text
    offsets = None
    if getattr(tokenizer, "is_fast", False):
        enc = tokenizer(spaced, add_special_tokens=False, return_offsets_mapping=True)
        if enc["input_ids"] == ids:
            offsets = enc["offset_mapping"]
    if offsets is None:
        spaced = tokenizer.decode(ids)
        ends = [len(tokenizer.decode(ids[:i + 1])) for i in range(len(ids))]
        offsets = list(zip([0] + ends[:-1], ends))
    char_word = np.full(len(spaced) + 1, -1)
    for w, m in enumerate(re.finditer(r"\S+", spaced)):
        char_word[m.start():m.end()] = w
    last = len(text.split()) - 1            # a decoded text may split differently: stay in range
    out = []
    for a, b in offsets:
        inside = char_word[a:b][char_word[a:b] >= 0]
        after = char_word[b:][char_word[b:] >= 0]
        out.append(min(last, int(inside[0]) if len(inside) else int(after[0]) if len(after) else last))
    return out


def _prepare(builder: SequenceBuilder, ex: Example) -> _Item:
    """The `before` sequence up to the label's end (eos is not scored), with its spans and words."""
    seq = builder.build(ex)
    if seq.truncated:
        raise ValueError(f"example {ex.id!r}: the sequence ({sum(len(s.ids) for s in seq.segments)} "
                         f"tokens) exceeds the scoring model's {builder.max_length} positions; "
                         f"attribution needs the whole rationale: leave the example out")
    text = (ex.rationale or "").strip()
    r0, r1 = seq.spans["rationale"]
    l0, l1 = seq.spans["label"]
    ids = seq.input_ids[:l1]
    return _Item(ex.id, ids, (r0, r1), (l0, l1), text.split(),
                 _word_of_token(builder.tok, text, ids[r0:r1]) if r1 > r0 else [])


def _max_positions(model) -> int:
    cfg = model.config
    return int(getattr(cfg, "n_positions", None) or getattr(cfg, "max_position_embeddings", None) or 2048)


# ---------------------------------------------------------------- rows

def gauss_legendre(steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes in (0, 1) and weights (summing to 1) of the `steps`-point Gauss-Legendre rule."""
    x, w = np.polynomial.legendre.leggauss(steps)
    return (x + 1) / 2, w / 2


def _rows(items: list[_Item], order: list[int], method: str, steps: int) -> list[_Row]:
    """Every row the method needs, grouped by item, items in `order`."""
    rows: list[_Row] = []
    nodes, weights = gauss_legendre(steps) if method == "ig" else ((), ())
    for i in order:
        rows.append(_Row(i, 1.0, 1.0 if method == "grad_x_input" else 0.0, role="input"))
        if method == "ig":
            rows.append(_Row(i, 0.0, role="baseline"))
            rows += [_Row(i, float(a), float(w)) for a, w in zip(nodes, weights)]
        elif method == "occlusion":
            r0, r1 = items[i].rationale
            rows += [_Row(i, 1.0, occlude=j, role="occluded") for j in range(r1 - r0)]
    return rows


# ---------------------------------------------------------------- model passes

@contextmanager
def _frozen(model) -> Iterator[None]:
    """Parameters need no gradient here: skipping the weight gradients makes backward cheaper."""
    flags = [p.requires_grad for p in model.parameters()]
    try:
        for p in model.parameters():
            p.requires_grad_(False)
        yield
    finally:
        for p, flag in zip(model.parameters(), flags):
            p.requires_grad_(flag)


def _baseline_vector(model, tokenizer, baseline: str, device) -> torch.Tensor:
    emb = model.get_input_embeddings()
    if baseline == "zero":
        return torch.zeros(emb.weight.shape[1], dtype=emb.weight.dtype, device=device)   # (d,)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    return emb.weight[pad].detach().to(device)                                          # (d,)


def _cache_arg(model) -> str:
    """transformers renamed `past_key_values` to `cache` during v5; accept both."""
    return "cache" if "cache" in inspect.signature(type(model).forward).parameters else "past_key_values"


def _prompt_cache(model, items: list[_Item], local: list[int], device):
    """Run each item's prompt (the tokens before its rationale) once, left-padded, without gradient:
    the prompt is the same in every row of an item and, under causal attention, never depends on
    the rationale. -> KV cache, mask (L, P), prompt lengths (L,)"""
    prompts = [items[i].ids[:items[i].split] for i in local]
    width = max(len(p) for p in prompts)
    ids = torch.zeros((len(local), width), dtype=torch.long)
    mask = torch.zeros_like(ids)
    for k, p in enumerate(prompts):
        ids[k, width - len(p):] = torch.tensor(p)
        mask[k, width - len(p):] = 1
    ids, mask = ids.to(device), mask.to(device)
    with torch.no_grad():
        out = model.base_model(input_ids=ids, attention_mask=mask, use_cache=True,
                               position_ids=(mask.cumsum(1) - 1).clamp(min=0))
    cache = out.cache if getattr(out, "cache", None) is not None else out.past_key_values
    return cache, mask, mask.sum(1)


def _suffix_embeds(model, items: list[_Item], rows: list[_Row], local: list[int], base: torch.Tensor,
                   device) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row's embeddings from its item's split on (rationale, answer marker, label), with the
    rationale interpolated and a token occluded as the row says; right-padded. -> (B, S, d), (B, S)"""
    where = {i: k for k, i in enumerate(local)}
    width = max(len(items[i].ids) - items[i].split for i in local)
    ids = torch.zeros((len(local), width), dtype=torch.long)
    rationale = torch.zeros((len(local), width), dtype=torch.bool)
    for k, i in enumerate(local):
        it = items[i]
        ids[k, :len(it.ids) - it.split] = torch.tensor(it.ids[it.split:])
        rationale[k, it.rationale[0] - it.split:it.rationale[1] - it.split] = True
    row_item = torch.tensor([where[r.item] for r in rows], device=device)              # (B,)
    alpha = torch.tensor([r.alpha for r in rows], dtype=base.dtype, device=device)     # (B,)
    occlude = torch.tensor([items[r.item].rationale[0] - items[r.item].split + r.occlude
                            if r.occlude >= 0 else -1 for r in rows], device=device)   # (B,)
    ids, rationale = ids.to(device), rationale.to(device)
    with torch.no_grad():
        x = model.get_input_embeddings()(ids)[row_item]                                # (B, S, d)
        interp = base + alpha[:, None, None] * (x - base)
        embeds = torch.where(rationale[row_item][..., None], interp, x)
        hit = torch.arange(width, device=device)[None, :] == occlude[:, None]          # (B, S)
        embeds = torch.where(hit[..., None], base, embeds)
    return embeds, ids[row_item]


def label_logprob(model, embeds: torch.Tensor, ids: torch.Tensor, label_spans: Sequence[tuple[int, int]],
                  **context) -> torch.Tensor:
    """Sum of log p(label token | everything before it) for each row. -> (B,)

    `embeds` (B, S, d) are the inputs after `context` (the prompt's cache, attention mask and
    positions); `label_spans` index into them. Rows are right-padded: under causal attention a
    real token never sees the padding after it. The output layer runs only on the positions that
    predict a label token, as in training."""
    row = torch.tensor([r for r, (a, b) in enumerate(label_spans) for _ in range(a, b)], device=embeds.device)
    pos = torch.tensor([t for a, b in label_spans for t in range(a, b)], device=embeds.device)
    logits, _ = logits_at(model, (row, pos - 1), inputs_embeds=embeds, **context)           # (N, vocab)
    logp = torch.log_softmax(logits, dim=-1).gather(1, ids[row, pos][:, None])[:, 0]         # (N,)
    return _group_sum(row, len(label_spans), logp)


def _group_sum(group: torch.Tensor, n_groups: int, values: torch.Tensor,
               weights: torch.Tensor | None = None) -> torch.Tensor:
    """Sum (weighted) rows of `values` by group: a one-hot matmul, deterministic on GPU too
    (index_add uses atomic adds there). (N, ...) -> (n_groups, ...)"""
    onehot = torch.zeros((n_groups, len(group)), dtype=values.dtype, device=values.device)   # (G, N)
    onehot[group, torch.arange(len(group), device=values.device)] = 1 if weights is None else weights
    return (onehot @ values.reshape(len(group), -1)).reshape((n_groups,) + values.shape[1:])


def _run_chunk(model, items: list[_Item], rows: list[_Row], base: torch.Tensor, device,
               need_grad: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Scores (B,) of a chunk of rows and, when needed, their gradients on the embeddings from each
    item's split on (B, S, d). The prompts run once per item, their cache is copied to its rows."""
    local = list(dict.fromkeys(r.item for r in rows))                  # items of this chunk
    where = {i: k for k, i in enumerate(local)}
    row_item = torch.tensor([where[r.item] for r in rows], device=device)              # (B,)
    cache, prompt_mask, prompt_len = _prompt_cache(model, items, local, device)
    cache.batch_select_indices(row_item)                               # (L, ...) -> (B, ...)
    embeds, ids = _suffix_embeds(model, items, rows, local, base, device)
    width = ids.shape[1]
    context = {"cache": cache, "use_cache": True,
               "attention_mask": torch.cat([prompt_mask[row_item], torch.ones_like(ids)], 1),
               "position_ids": prompt_len[row_item, None] + torch.arange(width, device=device)[None]}
    spans = [(items[r.item].label[0] - items[r.item].split, items[r.item].label[1] - items[r.item].split)
             for r in rows]
    if not need_grad:
        with torch.no_grad():
            return label_logprob(model, embeds, ids, spans, **context), None
    embeds.requires_grad_(True)
    scores = label_logprob(model, embeds, ids, spans, **context)
    (grad,) = torch.autograd.grad(scores.sum(), embeds)   # rows are independent: per-row gradients
    return scores.detach(), grad


# ---------------------------------------------------------------- the method

class _Accumulator:
    """Per item: weighted gradient sums over the rationale, and the scores of its special rows."""

    def __init__(self, items: list[_Item], d: int, device, dtype):
        self.items = items
        self.grad = [torch.zeros((it.rationale[1] - it.rationale[0], d), device=device, dtype=dtype)
                     for it in items]                                               # (n_r, d) each
        self.input = [0.0] * len(items)
        self.baseline = [0.0] * len(items)
        self.occluded = [dict() for _ in items]

    def add(self, rows: list[_Row], scores: torch.Tensor, grad: torch.Tensor | None) -> None:
        for r, v in zip(rows, scores.tolist()):
            if r.role == "input":
                self.input[r.item] = v
            elif r.role == "baseline":
                self.baseline[r.item] = v
            elif r.role == "occluded":
                self.occluded[r.item][r.occlude] = v
        if grad is None:
            return
        local = list(dict.fromkeys(r.item for r in rows))               # items of this chunk
        where = {i: k for k, i in enumerate(local)}
        group = torch.tensor([where[r.item] for r in rows], device=grad.device)
        weights = torch.tensor([r.weight for r in rows], dtype=grad.dtype, device=grad.device)
        summed = _group_sum(group, len(local), grad, weights)              # (B, T, d) -> (items, T, d)
        for k, i in enumerate(local):
            r0, r1, split = *self.items[i].rationale, self.items[i].split
            self.grad[i] += summed[k, r0 - split:r1 - split]


def _result(tokenizer, item: _Item, acc: _Accumulator, i: int, method: str, x: torch.Tensor,
            base: torch.Tensor, baseline: str) -> dict:
    r0, r1 = item.rationale
    if method == "occlusion":
        scores = [acc.input[i] - acc.occluded[i][j] for j in range(r1 - r0)]
    else:
        scores = ((x[r0:r1] - base) * acc.grad[i]).sum(-1).tolist()                 # (n_r, d) -> (n_r,)
    word_scores = [0.0] * len(item.words)
    for s, w in zip(scores, item.word_of_token):
        word_scores[w] += s
    token_ids = item.ids[r0:r1]
    out = {"example_id": item.example_id, "method": method, "baseline": baseline,
           "token_ids": token_ids, "tokens": [tokenizer.decode([t]) for t in token_ids],
           "scores": scores, "words": item.words, "word_scores": word_scores,
           "word_of_token": item.word_of_token, "label_logprob": acc.input[i],
           "baseline_logprob": None, "completeness_error": None}
    if method == "ig":
        delta = acc.input[i] - acc.baseline[i]
        out.update(baseline_logprob=acc.baseline[i], completeness_error=abs(sum(scores) - delta))
    return out


def _one_pass(model, tokenizer, items: list[_Item], method: str, steps: int, batch_size: int, device,
              baseline: str, progress: Callable[[int, int], None] | None) -> list[dict]:
    """Attribute every item once with this many steps: all rows, `batch_size` per forward pass."""
    order = sorted(range(len(items)), key=lambda i: -len(items[i].ids))   # longest first: less padding
    rows = _rows(items, order, method, steps)
    base = _baseline_vector(model, tokenizer, baseline, device)
    acc = _Accumulator(items, base.shape[0], device, base.dtype)
    last_row = {r.item: k for k, r in enumerate(rows)}
    with _frozen(model):
        for start in range(0, len(rows), batch_size):
            chunk = rows[start:start + batch_size]
            acc.add(chunk, *_run_chunk(model, items, chunk, base, device, method != "occlusion"))
            if progress is not None:
                progress(sum(k < start + len(chunk) for k in last_row.values()), len(items))
        emb = model.get_input_embeddings()
        with torch.no_grad():
            results = [_result(tokenizer, it, acc, i, method, emb(torch.tensor(it.ids, device=device)),
                               base, baseline) for i, it in enumerate(items)]
    for r in results:
        r["steps"] = steps if method == "ig" else None
    return results


def attribute(model, tokenizer, examples: Sequence[Example], *, method: str = "ig", steps: int = 32,
              batch_size: int = 64, device: str | torch.device | None = None, baseline: str = "zero",
              tolerance: float | None = None, max_steps: int = 256,
              progress: Callable[[int, int], None] | None = None) -> list[dict]:
    """Per-token importance of each example's rationale for its gold label (see the module doc).

    `batch_size` is rows (sequences) per forward pass; `steps` the IG quadrature nodes. With
    `tolerance` (nats), IG redoes the examples whose completeness error exceeds it with twice the
    steps, up to `max_steps` (a sharp path needs more nodes; most examples do not). `progress` is
    called with (examples done, total) after each forward pass of each pass over the examples.
    Results come in the order of `examples`."""
    if method not in METHODS:
        raise ValueError(f"unknown attribution method {method!r}; choose one of {', '.join(METHODS)}")
    if baseline not in BASELINES:
        raise ValueError(f"unknown baseline {baseline!r}; choose one of {', '.join(BASELINES)}")
    if steps < 1 or batch_size < 1:
        raise ValueError(f"steps and batch_size must be >= 1 (got steps={steps}, batch_size={batch_size})")
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model.to(device).eval()
    builder = SequenceBuilder(tokenizer, "before", max_length=_max_positions(model))
    items = [_prepare(builder, ex) for ex in examples]
    results = _one_pass(model, tokenizer, items, method, steps, batch_size, device, baseline, progress)
    while method == "ig" and tolerance is not None and steps < max_steps:
        redo = [i for i, r in enumerate(results) if r["completeness_error"] > tolerance]
        if not redo:
            break
        steps = min(2 * steps, max_steps)
        again = _one_pass(model, tokenizer, [items[i] for i in redo], method, steps, batch_size, device,
                          baseline, progress)
        for i, r in zip(redo, again):
            results[i] = r
    return results


def summarize(results: Sequence[dict], seconds: float | None = None) -> dict:
    """n, examples per second (when `seconds` is given) and the completeness error (IG)."""
    errors = [r["completeness_error"] for r in results if r["completeness_error"] is not None]
    out = {"n": len(results), "method": results[0]["method"] if results else None,
           "examples_per_s": len(results) / seconds if seconds else None,
           "mean_completeness_error": float(np.mean(errors)) if errors else None,
           "max_completeness_error": float(np.max(errors)) if errors else None}
    return out


def key_positions(example: Example) -> list[int] | None:
    """The word positions of an example's known key words (`meta["key_indices"]`, or the single
    `meta["key_index"]` of synthetic-key), or None where the example has no ground truth."""
    meta = example.meta or {}
    if meta.get("key_indices") is not None:
        return [int(i) for i in meta["key_indices"]]
    if meta.get("key_index") is not None:
        return [int(meta["key_index"])]
    return None


def word_ranking(scores: Sequence[float], *, absolute: bool = False) -> list[int]:
    """Word positions from the highest score down, ties to the earlier word: the order in which the
    key_tokens perturbation keeps them (by |score| with `absolute`)."""
    values = [abs(v) for v in scores] if absolute else list(scores)
    return sorted(range(len(values)), key=lambda i: (-values[i], i))


def key_agreement(word_scores: dict[str, Sequence[float]], keys: dict[str, Sequence[int]], *,
                  absolute: bool = False) -> dict | None:
    """How well word scores find the known key words, over the examples that have both
    ({example_id: word scores}, {example_id: key word positions}); None when none has both.

    n: examples compared; first: share whose highest-scoring word is a key word; mean_rank: mean
    1-based rank of each example's best-ranked key word (1 is perfect); recall: share of all key
    words found among their example's top m words, m its number of key words (1.0 is perfect; what
    key_tokens with k = m keeps)."""
    first = ranks = found = wanted = n = 0
    for example_id, positions in keys.items():
        scores = word_scores.get(example_id)
        if scores is None or not positions:
            continue
        if max(positions) >= len(scores):
            raise ValueError(f"example {example_id!r}: key word position {max(positions)} is beyond its "
                             f"{len(scores)} scored words")
        order = word_ranking(scores, absolute=absolute)
        rank = {position: r for r, position in enumerate(order, start=1)}
        best = min(rank[p] for p in positions)
        n += 1
        first += best == 1
        ranks += best
        found += sum(rank[p] <= len(positions) for p in positions)
        wanted += len(positions)
    if not n:
        return None
    return {"n": n, "first": first / n, "mean_rank": ranks / n, "recall": found / wanted}


def agreement(results: Sequence[dict], examples: Sequence[Example]) -> dict | None:
    """key_agreement of attribute()'s results against the examples' known key words, ranked as the
    key_tokens perturbation ranks a scores file (grad_x_input by magnitude, see runner.load_scores)."""
    keys = {ex.id: positions for ex in examples if (positions := key_positions(ex)) is not None}
    scores = {r["example_id"]: r["word_scores"] for r in results}
    return key_agreement(scores, keys, absolute=bool(results) and results[0]["method"] == "grad_x_input")


def agreement_text(agreement: dict | None) -> str:
    """One line for the CLI and the app: the agreement with the known key words, or why there is none."""
    if not agreement:
        return "no known key words in these examples: agreement with the ground truth not measured"
    return (f"agreement with the known key words ({agreement['n']} example(s)): a key word ranked first in "
            f"{agreement['first']:.0%}, mean rank of the best key word {agreement['mean_rank']:.2f} (1 is perfect), "
            f"{agreement['recall']:.0%} of key words within their example's top m (m = its number of key words)")


# ---------------------------------------------------------------- scoring model and scores file

def load_scoring_model(source: str | Path | StudentConfig, *, train_texts: Sequence[str] | None = None,
                       seed: int = 0) -> Student:
    """The model whose label probability is attributed.

    `source`: a run folder (its trained `model/`; the run must have used the `before` placement),
    a StudentConfig (the untrained student; the tiny one needs `train_texts` for its tokenizer and
    is initialised from `seed` without touching the global generator), or a model id / path."""
    if isinstance(source, StudentConfig):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return load_student(source, train_texts=train_texts)
    path = Path(source)
    if (path / "model" / "config.json").exists():
        _check_run_placement(path)
        return load_pretrained(str(path / "model"), f"run {path.name}")
    return load_pretrained(str(source), str(source))


def _check_run_placement(run_dir: Path) -> None:
    from cotdistill.config import read_config_file

    saved = run_dir / "config.yaml"
    data = read_config_file(saved, "the run's config") if saved.exists() else None
    placement = data.get("placement") if isinstance(data, dict) else None
    if placement not in (None, "before"):
        raise ValueError(f"{run_dir} was trained with placement {placement!r}, but attribution scores "
                         f"the label after the rationale (placement 'before'): use a `before` run, or "
                         f"pass {run_dir / 'model'} as the model path to score it anyway")


def write_scores(path: str | Path, results: Sequence[dict], level: str = "word", *,
                 absolute: bool = False) -> None:
    """The JSONL scores file of the key_tokens perturbation (runner.load_scores):
    {example_id, scores, tokens, level, method, sign} per line (plus token_ids at token level), units of
    `level` ('word' or 'token'); `absolute` writes |score| (sign 'absolute', else 'signed'). Signed
    grad_x_input scores are ranked by magnitude by key_tokens anyway, unless `params: {signed: true}`.

    Token-level scores align with a student's rationale units only if it shares the scoring
    tokenizer; word-level scores work for any student."""
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, not {level!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for r in results:
            units, scores = (r["words"], r["word_scores"]) if level == "word" else (r["tokens"], r["scores"])
            scores = [abs(v) for v in scores] if absolute else scores
            row = {"example_id": r["example_id"], "scores": scores, "tokens": units, "level": level,
                   "method": r["method"], "sign": "absolute" if absolute else "signed"}
            if level == "token":
                row["token_ids"] = r["token_ids"]
            f.write(json.dumps(row) + "\n")
    os.replace(tmp, path)
