"""The memory and time estimate: exact for constructed cases; shapes read from configs alone."""

import pytest

from cotdistill.config import StudentConfig, load_config
from cotdistill.estimate import GIB, ModelShape, cell_memory, cell_tokens, estimate_cell, fits, gpu_hours, model_shape

SHAPE = ModelShape(parameters=1_000_000_000, trainable=1_000_000_000, layers=10, hidden=1000, heads=10, vocab=1000)
LOGITS = 2 * (2 * 100) * 1000 * 4             # float32 logits and their gradient for N = 2 x 100 tokens


def test_full_fine_tune_in_bf16_weights():
    m = cell_memory(SHAPE, batch_size=2, max_length=100, dtype="bfloat16")
    assert m == {"weights": 2_000_000_000, "gradients": 2_000_000_000, "optimizer": 8_000_000_000,
                 "activations": 10 * 17 * 200 * 1000 * 2 + LOGITS, "total_bytes": 12_069_600_000}
    assert fits(m, gpu_gib=16) and not fits(m, gpu_gib=12)       # 0.9 x 12 GiB = 11.6e9 bytes


def test_float32_weights_under_bf16_autocast_keep_16_bit_activations():
    m = cell_memory(SHAPE, batch_size=2, max_length=100, dtype="float32", autocast_bf16=True)
    assert (m["weights"], m["gradients"], m["optimizer"]) == (4e9, 4e9, 8e9)
    assert m["activations"] == 68_000_000 + LOGITS
    assert cell_memory(SHAPE, batch_size=2, max_length=100)["activations"] == 136_000_000 + LOGITS


def test_eager_attention_keeps_the_probabilities_and_checkpointing_only_layer_inputs():
    eager = cell_memory(SHAPE, batch_size=2, max_length=100, dtype="bfloat16", attn_implementation="eager")
    assert eager["activations"] == 10 * (17 * 200 * 1000 + 2.5 * 200 * 10 * 100) * 2 + LOGITS
    ckpt = cell_memory(SHAPE, batch_size=2, max_length=100, dtype="bfloat16", gradient_checkpointing=True)
    assert ckpt["activations"] == (10 * 200 * 1000 + 17 * 200 * 1000) * 2 + LOGITS == 12_400_000


def test_lora_trains_and_keeps_optimizer_state_for_the_adapters_only():
    lora = ModelShape(**{**SHAPE.as_dict(), "trainable": 1_000_000})
    m = cell_memory(lora, batch_size=2, max_length=100, dtype="bfloat16", lora=True)
    assert (m["weights"], m["gradients"], m["optimizer"]) == (2_000_000_000, 4_000_000, 8_000_000)


def test_on_two_devices_ddp_halves_the_rows_and_fsdp_also_the_state():
    ddp = cell_memory(SHAPE, batch_size=3, max_length=100, dtype="bfloat16", devices=2)
    rows2 = 10 * 17 * 200 * 1000 * 2 + LOGITS             # ceil(3 / 2) = 2 rows of 100 tokens per device
    assert ddp == {"weights": 2_000_000_000, "gradients": 2_000_000_000, "optimizer": 8_000_000_000,
                   "activations": rows2, "total_bytes": 12_000_000_000 + rows2}
    fsdp = cell_memory(SHAPE, batch_size=3, max_length=100, dtype="bfloat16", devices=2, sharded=True)
    block = (1_000_000_000 - 1000 * 1000) // 10             # 99,900,000 parameters per block
    assert fsdp == {"weights": 1_000_000_000, "gradients": 1_000_000_000, "optimizer": 4_000_000_000,
                    "activations": rows2, "gathered": 2 * block * 2,
                    "total_bytes": 6_000_000_000 + rows2 + 399_600_000}
    odd = cell_memory(ModelShape(**{**SHAPE.as_dict(), "parameters": 7, "trainable": 7}), batch_size=1,
                      max_length=1, devices=2, sharded=True)
    assert (odd["weights"], odd["gradients"], odd["optimizer"]) == (14, 14, 28)   # ceil of 28/2, 28/2, 56/2


def test_gpu_hours_from_tokens_per_second():
    assert cell_tokens(steps=100, batch_size=2, grad_accum=4, max_length=100) == 80_000
    assert gpu_hours([80_000, 100_000], tokens_per_s=50) == 1.0
    with pytest.raises(ValueError, match="tokens per second must be > 0"):
        gpu_hours([1], tokens_per_s=0)


def test_shapes_of_the_tiny_student_full_and_with_lora():
    h, v, pos, layers = 128, 2048, 512, 2
    per_layer = 2 * h + (3 * h * h + 3 * h) + (h * h + h) + 2 * h + (4 * h * h + 4 * h) + (4 * h * h + h)
    full = model_shape(StudentConfig(name="tiny", size="tiny", vocab_size=v))
    assert full == ModelShape(parameters=v * h + pos * h + layers * per_layer + 2 * h, trainable=full.parameters,
                              layers=2, hidden=128, heads=4, vocab=v)
    lora = model_shape(StudentConfig(name="tiny", vocab_size=v, lora={"r": 8}))
    assert lora.trainable == layers * 8 * (h + 3 * h)               # peft's default for GPT-2: c_attn


def test_estimate_of_a_cell_resolves_precision_per_device():
    cfg = load_config(None, ["student.dtype=float32", "train.batch_size=4", "student.max_length=64", "train.steps=10"])
    shape = ModelShape(parameters=100, trainable=100, layers=1, hidden=8, heads=2, vocab=16)
    gpu, cpu = estimate_cell(cfg, shape, device="cuda", gpu_gib=1), estimate_cell(cfg, shape, device="cpu")
    assert gpu["memory"]["activations"] == 17 * 256 * 8 * 2 + 2 * 256 * 16 * 4      # bf16 autocast on CUDA
    assert cpu["memory"]["activations"] == 17 * 256 * 8 * 4 + 2 * 256 * 16 * 4
    assert gpu["fits"] is True and cpu["fits"] is None and gpu["tokens"] == 10 * 4 * 64
    assert GIB == 1 << 30
