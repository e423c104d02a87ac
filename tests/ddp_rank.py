"""One rank of the multi-process-equals-single-process tests (tests/test_distributed.py), started by
torchrun:

    python -m torch.distributed.run --nproc-per-node 2 tests/ddp_rank.py OUT.json [--fsdp] [--segment] [--family F[,F…]]

Also `python tests/ddp_rank.py OUT.json --single [--family F[,F…]]` for the single-process reference. F is
gpt2 (default, tied head), llama (untied head) or gemma2 (tied, scaled embeddings, soft-capped logits),
small random models built from configs; several families train one after the other in the same
processes (one launch, one process group) and OUT.json maps each family to its loss curve. --segment
trains with train.loss_normalization segment (rationale weight 0.5). Dropout is
off: ranks draw their own dropout masks, so with dropout the curves agree in distribution only.
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import transformers as tf  # noqa: E402

from cotdistill.config import TrainConfig  # noqa: E402
from cotdistill.sequences.placements import SequenceBuilder  # noqa: E402
from cotdistill.train.loop import train  # noqa: E402
from tests.conftest import make_word_tokenizer  # noqa: E402
from tests.helpers import colour_examples, tiny_model  # noqa: E402

# 21 sequences in micro-batches of 5: the fifth batch of every epoch has one row, so one rank runs
# a zero-weight stand-in; grad_accum 2 exercises no_sync (DDP) / gradient-sync off (FSDP); clipping on.
CFG = TrainConfig(steps=20, batch_size=5, grad_accum=2, lr=3e-3, warmup_steps=2, log_every=1, clip=1.0)
SMALL = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
             max_position_embeddings=64, attention_dropout=0.0)


def model_for(family: str, tok):
    if family == "gpt2":
        return tiny_model(tok, seed=0, dropout=0.0)
    torch.manual_seed(0)
    ids = dict(vocab_size=len(tok), pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, bos_token_id=None)
    if family == "llama":
        return tf.LlamaForCausalLM(tf.LlamaConfig(**SMALL, **ids, tie_word_embeddings=False))
    if family == "gemma2":
        return tf.Gemma2ForCausalLM(tf.Gemma2Config(**SMALL, **ids, head_dim=8, final_logit_softcapping=2.0))
    raise SystemExit(f"unknown family {family!r}")


def main(out: str, single: bool, fsdp: bool, families: list[str], segment: bool = False) -> None:
    import dataclasses
    from cotdistill.train.distributed import DDP, FSDP
    tok = make_word_tokenizer()
    cfg = dataclasses.replace(CFG, loss_normalization="segment") if segment else CFG
    seqs = [SequenceBuilder(tok, "after", rationale_weight=0.5 if segment else 1.0).build(ex)
            for ex in colour_examples(21)]
    ctx = None if single else (FSDP() if fsdp else DDP())
    curves = {}
    for family in families:
        losses = curves[family] = []
        model = model_for(family, tok)
        train(model, seqs, cfg, seed=3, pad_id=tok.pad_token_id, callback=lambda e: losses.append(e["loss"]),
              dist=ctx)
        if ctx is not None and fsdp:
            sharded = [type(p).__name__ for p in model.parameters()]
            assert set(sharded) == {"DTensor"}, (family, sharded)     # every weight is split across the ranks
            local = sum(p.to_local().numel() for p in model.parameters())
            assert local < sum(p.numel() for p in model.parameters()) * 0.6, (family, local)  # about half each
    if ctx is None or ctx.is_main:
        Path(out).write_text(json.dumps(curves))
    if ctx is not None:
        ctx.close()


if __name__ == "__main__":
    families = sys.argv[sys.argv.index("--family") + 1] if "--family" in sys.argv else "gpt2"
    main(sys.argv[1], "--single" in sys.argv, "--fsdp" in sys.argv, families.split(","), "--segment" in sys.argv)
