"""Padding-free packing: the sequences of a micro-batch laid end to end in as few rows as fit.

    batch = collate_packed(seqs, pad_id)      # input_ids, position_ids, weights (rows, width)
    use = resolve_packing(model, cfg.train.packing)

Rows are as wide as the longest sequence of the micro-batch (first-fit decreasing), so a packed batch
never holds longer rows than the padded one: the attention cost per row can only fall, and the rows
and padding do. Each sequence's position ids restart at 0, and neither an attention mask nor a KV cache is passed (use_cache=False): transformers 5
then finds the sequence boundaries from the position ids (`masking_utils.find_packed_sequence_indices`)
and keeps attention within each sequence, as a block-diagonal causal mask for sdpa and eager, as
variable-length segments for flash_attention_2. A row's padded tail is one more segment (positions
restart there too) with weight 0, so real tokens never see it.

The weighted loss is the padded one: the same sequences, the same supervised positions and weights.
A sequence's first position is never supervised (nothing predicts it), so the token before it in the
row, which belongs to another sequence, is never asked to predict it.

`resolve_packing` decides per student, checked once on a short random input and remembered: packing is
used when the model keeps packed sequences apart (changing one sequence leaves the other's logits
exactly as they were) and restarts their positions (the second sequence's logits match it alone).
A family whose attention ignores packed position ids (a custom model, an attention kernel transformers
cannot mask this way) fails the check: auto (train.packing null) then pads, and train.packing true is
an error.
"""

from __future__ import annotations

from typing import Sequence

import torch

from cotdistill.errors import PackingError
from cotdistill.sequences.placements import TrainingSequence

_ATTR = "_cotdistill_packing"
ROLE_CODES = {"label": 1, "rationale": 2}
"""Codes of the `roles` tensor: the positions whose loss is reported as label and rationale loss."""
LEAK_TOLERANCE = 1e-6
"""Largest change of one sequence's logits allowed when the other sequence of its row changes."""


def pack_rows(lengths: Sequence[int], capacity: int | None = None) -> list[list[int]]:
    """Indices of `lengths` grouped into rows of total length <= capacity (default: the longest),
    first-fit decreasing; ties keep the original order. Every index appears exactly once."""
    if not lengths:
        return []
    capacity = capacity or max(lengths)
    if max(lengths) > capacity:
        raise ValueError(f"a sequence of {max(lengths)} tokens does not fit rows of {capacity}")
    rows: list[list[int]] = []
    free: list[int] = []
    for i in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        for r, room in enumerate(free):
            if lengths[i] <= room:
                rows[r].append(i)
                free[r] -= lengths[i]
                break
        else:
            rows.append([i])
            free.append(capacity - lengths[i])
    return rows


def collate_packed(seqs: Sequence[TrainingSequence], pad_id: int, normalization: str = "token",
                   capacity: int | None = None) -> dict[str, torch.Tensor]:
    """Pack `seqs` (see pack_rows). -> input_ids, position_ids, weights, roles (rows, width); weights:
    TrainingSequence.loss_weights under `normalization`, as the padded collate; roles:
    ROLE_CODES on the label and rationale segments' tokens, 0 elsewhere. A padded tail restarts its
    positions too, so it forms its own segment."""
    rows = pack_rows([len(s) for s in seqs], capacity)
    width = capacity or max(len(s) for s in seqs)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    pos = torch.zeros((len(rows), width), dtype=torch.long)
    weights = torch.zeros((len(rows), width), dtype=torch.float32)
    roles = torch.zeros((len(rows), width), dtype=torch.long)
    for r, members in enumerate(rows):
        at = 0
        for i in members:
            s, n = seqs[i], len(seqs[i])
            ids[r, at:at + n] = torch.tensor(s.input_ids)
            pos[r, at:at + n] = torch.arange(n)
            weights[r, at:at + n] = torch.tensor(s.loss_weights(normalization))
            weights[r, at] = 0.0                   # nothing predicts a sequence's first token
            for role, code in ROLE_CODES.items():
                start, end = s.spans.get(role, (0, 0))
                roles[r, at + start:at + end] = code
            at += n
        pos[r, at:] = torch.arange(width - at)
    return {"input_ids": ids, "position_ids": pos, "weights": weights, "roles": roles}


def check_packing(model, length: int = 6) -> tuple[float, float]:
    """(leak, restart) on a fixed random input: leak = max |change| of sequence B's logits when the
    sequence packed before it changes; restart = max |B's packed logits - B's logits alone|. Touches no
    global random state; the model is put in eval mode for the check and restored."""
    vocab = model.get_input_embeddings().weight.shape[0]
    device = next(model.parameters()).device
    g = torch.Generator().manual_seed(0)
    a, a2, b = (torch.randint(0, vocab, (length,), generator=g) for _ in range(3))
    pos = torch.cat([torch.arange(length), torch.arange(length)]).unsqueeze(0).to(device)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            def logits(ids, position_ids=None):
                return model(input_ids=ids.unsqueeze(0).to(device), position_ids=position_ids,
                             use_cache=False).logits.float()
            one = logits(torch.cat([a, b]), pos)[0, length:]
            two = logits(torch.cat([a2, b]), pos)[0, length:]
            alone = logits(b)[0]
        return float((one - two).abs().max()), float((one - alone).abs().max())
    except (TypeError, ValueError, RuntimeError):
        return float("inf"), float("inf")
    finally:
        model.train(was_training)


def restart_tolerance(model) -> float:
    """Packed and alone differ by rounding only: 1e-4 in float32, 5e-2 in 16-bit weights."""
    dtype = next(model.parameters()).dtype
    return 1e-4 if dtype == torch.float32 else 5e-2


def resolve_packing(model, packing: bool | None) -> bool:
    """Whether training packs: False when `packing` is False; else the (remembered) check's verdict,
    and a PackingError when `packing` is True and the check fails."""
    if packing is False:
        return False
    known = model.__dict__.get(_ATTR)
    if known is None:
        leak, restart = check_packing(model)
        known = {"ok": leak <= LEAK_TOLERANCE and restart <= restart_tolerance(model),
                 "leak": leak, "restart": restart}
        model.__dict__[_ATTR] = known
    if packing and not known["ok"]:
        kernel = getattr(model.config, "_attn_implementation", "?")
        raise PackingError(f"train.packing is true, but {type(model).__name__} with attention {kernel!r} does "
                           f"not keep packed sequences apart (leak {known['leak']:.2g}, position restart error "
                           f"{known['restart']:.2g}): set train.packing to false or null")
    return known["ok"]
