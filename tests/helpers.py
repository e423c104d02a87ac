"""Small builders shared by the training and evaluation tests."""

import torch
from transformers import GPT2Config, GPT2LMHeadModel

from cotdistill.examples import Example

COLOURS = ("red", "blue", "green")


def tiny_model(tokenizer, seed=0, dropout=0.1):
    torch.manual_seed(seed)
    cfg = GPT2Config(vocab_size=len(tokenizer), n_positions=64, n_embd=32, n_layer=2, n_head=2,
                     resid_pdrop=dropout, embd_pdrop=dropout, attn_pdrop=dropout,
                     eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    return GPT2LMHeadModel(cfg)


def colour_examples(n=24):
    """A learnable toy task: the answer is the choice named in the question."""
    out = []
    for i in range(n):
        gold = i % 3
        q = f"what colour {COLOURS[gold]} ?"
        out.append(Example(id=f"e{i}", question=q, choices=COLOURS, label="abc"[gold],
                           rationale=f"the answer is {COLOURS[gold]} ." + " light" * (i % 4)))
    return out
