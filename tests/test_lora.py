"""Students at size: a LoRA run trains, saves a merged `from_pretrained` model and predicts the same
after reloading; gradient checkpointing changes neither loss nor gradients; kernel and dtype options."""

import json

import pytest
import torch
import transformers as tf
from safetensors.torch import load_file

from cotdistill.cli import rescore_run
from cotdistill.config import StudentConfig, TrainConfig, load_config
from cotdistill.students.lora import (apply_lora, enable_gradient_checkpointing, has_lora, merged,
                                      parameter_counts)
from cotdistill.run import load_examples, make_builder, run, tokenizer_texts
from cotdistill.errors import StudentError
from cotdistill.students.loading import build_tiny, check_runtime, train_tokenizer
from cotdistill.train.loop import collate, train
from cotdistill.train.loss import weighted_loss_sum
from test_logits import model_of
from test_packing import random_seqs

WIDTH, LAYERS, RANK = 64, 2, 4
DATA = ["data.name=synthetic", "data.options={n_train: 64, n_test: 24, steps: 2, n_choices: 3, seed: 0}"]


@pytest.fixture
def llama_dir(tmp_path):
    """A small Llama-shaped student with a BPE tokenizer, saved as a local model folder: random init,
    then 8 full fine-tuning steps on the data, as a stand-in for a pretrained base (LoRA adapts a
    base; on a random one, with frozen random embeddings and output layer, it barely learns)."""
    cfg = load_config(None, DATA + ["student.max_length=96"])
    train_ex, _ = load_examples(cfg)
    tok = train_tokenizer(tokenizer_texts(train_ex), 400)
    torch.manual_seed(0)
    config = tf.LlamaConfig(vocab_size=len(tok), hidden_size=WIDTH, intermediate_size=128, num_hidden_layers=LAYERS,
                            num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=256,
                            eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, bos_token_id=None)
    path = tmp_path / "llama"
    model = tf.LlamaForCausalLM(config)
    builder = make_builder(cfg, tok, train_ex)
    train(model, [builder.build(ex) for ex in train_ex], TrainConfig(steps=8, batch_size=8, lr=0.01, warmup_steps=2),
          seed=1, pad_id=tok.pad_token_id)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def test_a_lora_run_trains_saves_merged_reloads_and_predicts_the_same(llama_dir, tmp_path):
    cfg = load_config(None, DATA + [f"student.name={llama_dir}", "student.max_length=96",
                                    f"student.lora={{r: {RANK}, alpha: 8, target_modules: all-linear}}",
                                    "train.steps=30", "train.batch_size=8", "train.lr=0.01",
                                    "train.warmup_steps=2", "train.log_every=1", "eval.all_modes=false"])
    out = tmp_path / "run"
    summary = run(cfg, out)
    losses = [json.loads(line)["loss"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3 - 0.15                    # it learns
    # A (r x in) and B (out x r) of q, k, v, o (64 -> 64), gate, up (64 -> 128) and down (128 -> 64)
    assert summary["trainable_parameters"] == LAYERS * RANK * (4 * (WIDTH + WIDTH) + 3 * (WIDTH + 128))
    assert summary["lora_merged"] is True and summary["packed"] is True
    saved = load_file(out / "model" / "model.safetensors")
    assert not [k for k in saved if "lora" in k or "base_layer" in k]           # a plain checkpoint
    before = load_file(llama_dir / "model.safetensors")
    q, frozen = "model.layers.0.self_attn.q_proj.weight", "model.embed_tokens.weight"
    assert not torch.equal(saved[q], before[q])                                 # the adapter is merged in
    assert torch.equal(saved[frozen], before[frozen])                           # frozen weights untouched
    reloaded = tf.AutoModelForCausalLM.from_pretrained(out / "model")
    assert type(reloaded) is tf.LlamaForCausalLM
    rescored = rescore_run(out, device="cpu")
    first = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    again = [json.loads(line) for line in (out / "predictions-letter.jsonl").read_text().splitlines()]
    assert [r["predicted"] for r in first] == [r["predicted"] for r in again]
    for a, b in zip(first, again):
        assert a["scores"] == pytest.approx(b["scores"], abs=1e-5)
    assert rescored["accuracy"] == summary["accuracy"]


def test_lora_freezes_the_base_and_merging_keeps_the_function():
    model = model_of("llama")
    ids = torch.randint(0, 128, (2, 7), generator=torch.Generator().manual_seed(1))
    inner = apply_lora(model, {"r": 2, "alpha": 4, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]})
    assert inner is model and has_lora(model)
    counts = parameter_counts(model)
    assert counts["trainable"] == 2 * (32 + 32) + 2 * (32 + 16)       # one layer, r 2: q 32->32, v 32->16
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_()                                                     # a trained adapter
        adapted = model(input_ids=ids).logits
        plain = merged(model)
        assert not has_lora(plain) and not any("lora" in n for n, _ in plain.named_parameters())
        assert torch.allclose(plain(input_ids=ids).logits, adapted, atol=1e-5)


@pytest.mark.parametrize("family", ["llama", "gpt2", "qwen2"])
@pytest.mark.parametrize("lora", [False, True])
def test_gradient_checkpointing_gives_the_same_loss_and_gradients(family, lora):
    seqs = random_seqs([9, 6, 4])
    results = []
    for checkpointing in (False, True):
        model = model_of(family).train()                    # train mode: checkpointing is active
        if checkpointing:
            enable_gradient_checkpointing(model)
        if lora:
            apply_lora(model, {"r": 2, "alpha": 4, "dropout": 0.1, "target_modules": "all-linear"})
        torch.manual_seed(5)                                # the same dropout draws (replayed on recompute)
        loss = weighted_loss_sum(model, collate(seqs, pad_id=0))
        loss.backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
        results.append((loss.item(), grads))
    (loss0, g0), (loss1, g1) = results
    assert model.is_gradient_checkpointing
    assert loss0 == pytest.approx(loss1, abs=1e-5)
    assert g0.keys() == g1.keys() and g0
    assert all(torch.allclose(g0[n], g1[n], atol=1e-5) for n in g0)


def test_tiny_student_takes_the_kernel_and_dtype(word_tokenizer):
    texts = ["what colour is the sky ? blue"] * 4
    student = build_tiny(StudentConfig(attn_implementation="eager", dtype="bfloat16"), texts)
    assert student.model.config._attn_implementation == "eager"
    assert {p.dtype for p in student.model.parameters()} == {torch.bfloat16}
    default = build_tiny(StudentConfig(), texts)
    assert {p.dtype for p in default.model.parameters()} == {torch.float32}


def test_flash_attention_is_refused_before_any_work_where_it_cannot_run():
    check_runtime(StudentConfig(attn_implementation="sdpa"), "cpu")
    with pytest.raises(StudentError, match="student.attn_implementation: flash_attention_2 (needs the flash-attn "
                                           "package|runs only on a CUDA GPU)"):
        check_runtime(StudentConfig(attn_implementation="flash_attention_2"), "cpu")


def test_lora_target_modules_the_student_lacks_are_named_with_what_to_do():
    from cotdistill.errors import LoraError
    with pytest.raises(LoraError, match=r"student.lora.target_modules: Target modules \{'nope'\} not found.*"
                                        r"family 'llama'.*\[q_proj, v_proj\], or use 'all-linear'"):
        apply_lora(model_of("llama"), {"r": 2, "alpha": 4, "dropout": 0.0, "target_modules": ["nope"]})
