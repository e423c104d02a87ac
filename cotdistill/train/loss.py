"""The loss of a batch: weighted next-token cross-entropy over the supervised positions, and its label
and rationale parts. One module for the single-process loop and for every rank's wrapper
(cotdistill.train.distributed), so neither imports the other for it.

    total, parts = loss_parts(model, batch)     # parts: {"label": (ce sum, tokens), "rationale": ...}
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from cotdistill.students.logits import logits_at

LABEL, RATIONALE = 1, 2
"""Role codes of collate's `roles`: the positions whose loss is reported as label and rationale loss."""
ROLE_CODES = {"label": LABEL, "rationale": RATIONALE}


def weighted_loss_sum(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Sum over supervised positions of weight x cross-entropy of the next token, with logits computed
    as model(...).logits would be (cotdistill.students.logits: the output layer only where supervised)."""
    return loss_parts(model, batch)[0]


def loss_parts(model, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, tuple[float, int]]]:
    """(weighted loss sum as weighted_loss_sum, {role: (sum of cross-entropy, tokens)}) for the label
    and rationale tokens among the supervised ones (a batch without `roles` gives no parts). A token
    that carries no weight (the rationale at rationale_weight 0) is not scored, so it is not counted."""
    w = batch["weights"][:, 1:]                         # position t predicts token t+1
    keep = w > 0
    at = torch.zeros_like(batch["weights"], dtype=torch.bool)
    at[:, :-1] = keep                                   # (B, T): positions whose next token is supervised
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "position_ids") if k in batch}
    if "position_ids" in batch:
        inputs["use_cache"] = False                     # with a cache, transformers ignores packed positions
    logits, _ = logits_at(model, at, **inputs)          # (n_supervised, vocab)
    ce = F.cross_entropy(logits, batch["input_ids"][:, 1:][keep], reduction="none")
    parts = {}
    if "roles" in batch:
        roles, plain = batch["roles"][:, 1:][keep], ce.detach().float()     # (n_supervised,)
        for role, code in ROLE_CODES.items():
            chosen = roles == code
            parts[role] = (float(plain[chosen].sum()), int(chosen.sum()))
    return (ce * w[keep]).sum(), parts
