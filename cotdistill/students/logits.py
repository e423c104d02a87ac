"""One logits path for training, evaluation and attribution: the model's own, or its full forward.

    path = resolve(model)             # "head" or "forward", checked once and remembered on the model
    logits, out = logits_at(model, index, input_ids=ids, attention_mask=mask)   # float32 (N, vocab)

Running the output layer only where a loss or a score is needed (the supervised positions, the
label tokens, the last prompt position) saves most of the output layer's cost. But several families
process the output layer's result before `model(...).logits` returns it: Gemma-2 and Gemma-3 soft-cap
it (`final_logit_softcapping`: c * tanh(z / c)), Cohere multiplies it by `logit_scale`, Granite
divides it by `logits_scaling`. `head_logits` applies these, and `resolve` checks at load time that
`head_logits(base_model(x))` equals `model(x).logits` (within `TOLERANCE`, on a short fixed random
input). A family that passes goes the cheap way ("head"); one that does not (an unknown processing
step, no separable base model) goes through the model's full forward ("forward"): slower, never
wrong. The route and the check's error are stored on the model (`describe`) and land in the run's
summary.
"""

from __future__ import annotations

import functools
import inspect

import torch

HEAD, FORWARD = "head", "forward"
TOLERANCE = 1e-5
"""Largest |difference| allowed between the two routes' logits in the load-time check."""
_ATTR = "_cotdistill_logits"


def head_logits(model, hidden: torch.Tensor) -> torch.Tensor:
    """Logits from final hidden states the way the known families' forward computes them, in float32.
    (..., d) -> (..., vocab)"""
    logits = model.get_output_embeddings()(hidden).float()
    config = model.config
    scaling = getattr(config, "logits_scaling", None)           # Granite: divide
    if scaling not in (None, 1, 1.0):
        logits = logits / scaling
    scale = getattr(model, "logit_scale", None)                 # Cohere: multiply (an attribute of the model)
    if isinstance(scale, (int, float)) and scale != 1:
        logits = logits * scale
    cap = getattr(config, "final_logit_softcapping", None)      # Gemma-2/3: soft-cap
    if cap:
        logits = torch.tanh(logits / cap) * cap
    return logits


def check_head(model, length: int = 8) -> float:
    """Max |head_logits(base_model(x)) - model(x).logits| over a fixed random input (inf when the
    model has no separable base model or output layer). Touches no global random state."""
    head = getattr(model, "get_output_embeddings", None)
    if getattr(model, "base_model", None) in (None, model) or head is None or head() is None:
        return float("inf")
    vocab = model.get_output_embeddings().weight.shape[0]
    device = next(model.parameters()).device
    ids = torch.randint(0, vocab, (2, length), generator=torch.Generator().manual_seed(0)).to(device)
    mask = torch.ones_like(ids)
    was_training = model.training
    model.eval()                                                 # no dropout: both routes see one network
    try:
        with torch.no_grad():
            full = model(input_ids=ids, attention_mask=mask).logits.float()
            hidden = model.base_model(input_ids=ids, attention_mask=mask).last_hidden_state
            return float((head_logits(model, hidden) - full).abs().max())
    except (AttributeError, TypeError, ValueError, RuntimeError):
        return float("inf")
    finally:
        model.train(was_training)


def resolve(model) -> str:
    """The route for this model, checked on first use and remembered: HEAD or FORWARD."""
    known = model.__dict__.get(_ATTR)
    if known is None:
        error = check_head(model)
        known = {"path": HEAD if error <= TOLERANCE else FORWARD, "check_error": error}
        model.__dict__[_ATTR] = known
    return known["path"]


def describe(model) -> dict:
    """{"logits_path": ..., "logits_check_error": ...} for a run summary (resolving if needed)."""
    resolve(model)
    known = model.__dict__[_ATTR]
    error = known["check_error"]
    return {"logits_path": known["path"], "logits_check_error": error if error != float("inf") else None}


@functools.cache
def cache_arg(module_class) -> str:
    """transformers renamed `past_key_values` to `cache` during v5; accept both (looked up once per class)."""
    return "cache" if "cache" in inspect.signature(module_class.forward).parameters else "past_key_values"


def cache_of(out):
    """The KV cache of a model output, under either name."""
    return out.cache if getattr(out, "cache", None) is not None else out.past_key_values


def logits_at(model, index=None, *, last_only: bool = False, cache=None, **inputs) -> tuple[torch.Tensor, object]:
    """float32 logits at positions `index` (any tensor index over (batch, seq), None: all), equal to
    model(**inputs).logits[index]; `last_only` keeps only the last position (batch, 1, vocab).
    `cache` (a KV cache) is passed under the name the called module expects. Returns (logits, the
    model output, whose KV cache `cache_of` reads)."""
    head = resolve(model) == HEAD
    module = model.base_model if head else model
    if cache is not None:
        inputs[cache_arg(type(module))] = cache
    if head:
        out = module(**inputs)
        hidden = out.last_hidden_state                          # (B, T, d)
        hidden = hidden[:, -1:] if last_only else hidden
        return head_logits(model, hidden if index is None else hidden[index]), out
    out = model(**inputs, **({"logits_to_keep": 1} if last_only else {}))
    logits = out.logits
    return (logits if index is None else logits[index]).float(), out
