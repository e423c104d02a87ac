"""Shared set-up of the benchmarks: environment, the CQA `after` sequences, matmul peak."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("COTDISTILL_DATA_DIR", str((ROOT / ".." / "shared" / "data").resolve()))
os.environ.setdefault("COTDISTILL_HOME", str(ROOT / ".state"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import torch  # noqa: E402

from cotdistill.config import load_config  # noqa: E402
from cotdistill.run import load_examples, make_builder, seed_everything, tokenizer_texts  # noqa: E402
from cotdistill.students.loading import load_student  # noqa: E402


def device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def machine() -> str:
    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"CPU, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads"


def cqa_setup(overrides: list[str]):
    """Config, student (seeded init), builder, train and test examples for CQA `after`."""
    cfg = load_config(ROOT / "configs" / "cqa-after.yaml", overrides)
    seed_everything(cfg.seed)
    train, test = load_examples(cfg)
    student = load_student(cfg.student, train_texts=tokenizer_texts(train))
    return cfg, student, make_builder(cfg, student.tokenizer, train), train, test


def matmul_peak(dev: str, n: int = 2048, repeats: int = 10) -> float:
    """Measured dense matmul FLOP/s (bf16 on CUDA, fp32 on CPU)."""
    dtype = torch.bfloat16 if dev == "cuda" else torch.float32
    a, b = torch.randn(n, n, device=dev, dtype=dtype), torch.randn(n, n, device=dev, dtype=dtype)
    for _ in range(2):
        a @ b
    sync(dev)
    t0 = time.perf_counter()
    for _ in range(repeats):
        a @ b
    sync(dev)
    return 2 * n ** 3 * repeats / (time.perf_counter() - t0)


def sync(dev: str) -> None:
    if dev == "cuda":
        torch.cuda.synchronize()


def train_flops_per_token(model, seq_len: float, supervised_fraction: float) -> float:
    """Training FLOPs per token actually computed: 6 x the non-embedding weights, the attention
    scores (6 x layers x seq x width), and the output layer only on supervised positions."""
    cfg = model.config
    layers = getattr(cfg, "n_layer", None) or cfg.num_hidden_layers
    width = getattr(cfg, "n_embd", None) or cfg.hidden_size
    embeddings = {id(p) for m in (model.get_input_embeddings(), model.get_output_embeddings()) for p in m.parameters()}
    wpe = getattr(getattr(model, "transformer", None), "wpe", None)
    embeddings |= {id(p) for p in wpe.parameters()} if wpe is not None else set()
    body = sum(p.numel() for p in model.parameters() if id(p) not in embeddings)
    head = width * cfg.vocab_size
    return 6 * body + 6 * layers * seq_len * width + 6 * head * supervised_fraction
