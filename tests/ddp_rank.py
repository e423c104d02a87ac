"""One rank of the DDP-equals-single-process test (tests/test_distributed.py), started by torchrun:

    python -m torch.distributed.run --nproc-per-node 2 tests/ddp_rank.py OUT.json

Also `python tests/ddp_rank.py OUT.json --single` for the single-process reference. Dropout is off:
ranks draw their own dropout masks, so with dropout the curves agree in distribution only.
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cotdistill.config import TrainConfig  # noqa: E402
from cotdistill.placements import SequenceBuilder  # noqa: E402
from cotdistill.training import train  # noqa: E402
from tests.conftest import make_word_tokenizer  # noqa: E402
from tests.helpers import colour_examples, tiny_model  # noqa: E402

# 21 sequences in micro-batches of 5: the fifth batch of every epoch has one row, so one rank runs
# a zero-weight stand-in; grad_accum 2 exercises no_sync.
CFG = TrainConfig(steps=20, batch_size=5, grad_accum=2, lr=3e-3, warmup_steps=2, log_every=1)


def main(out: str, single: bool) -> None:
    from cotdistill.distributed import DDP
    tok = make_word_tokenizer()
    seqs = [SequenceBuilder(tok, "after").build(ex) for ex in colour_examples(21)]
    ctx = None if single else DDP()
    losses = []
    train(tiny_model(tok, seed=0, dropout=0.0), seqs, CFG, seed=3, pad_id=tok.pad_token_id,
          callback=lambda e: losses.append(e["loss"]), dist=ctx)
    if ctx is None or ctx.is_main:
        Path(out).write_text(json.dumps(losses))
    if ctx is not None:
        ctx.close()


if __name__ == "__main__":
    main(sys.argv[1], "--single" in sys.argv)
