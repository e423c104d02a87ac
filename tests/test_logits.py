"""One logits path: for small random models of every family users pick, the training loss, the
scoring path and the attribution target see exactly model(...).logits (or the family is routed through
the full forward by the load-time check, and the test says which)."""

import pytest
import torch
import torch.nn.functional as F
import transformers as tf

from cotdistill.students.logits import FORWARD, HEAD, describe, logits_at, resolve
from cotdistill.train.loss import weighted_loss_sum

SMALL = dict(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=4,
             num_key_value_heads=2, max_position_embeddings=64)
FAMILIES = {
    "gpt2": (tf.GPT2Config, tf.GPT2LMHeadModel, dict(vocab_size=128, n_embd=32, n_layer=1, n_head=4, n_positions=64)),
    "phi": (tf.PhiConfig, tf.PhiForCausalLM, SMALL),
    "llama": (tf.LlamaConfig, tf.LlamaForCausalLM, SMALL),
    "qwen2": (tf.Qwen2Config, tf.Qwen2ForCausalLM, SMALL),
    "gemma": (tf.GemmaConfig, tf.GemmaForCausalLM, {**SMALL, "head_dim": 8}),
    "gemma2": (tf.Gemma2Config, tf.Gemma2ForCausalLM, {**SMALL, "head_dim": 8, "final_logit_softcapping": 2.0}),
    "cohere": (tf.CohereConfig, tf.CohereForCausalLM, {**SMALL, "logit_scale": 0.25}),
    "granite": (tf.GraniteConfig, tf.GraniteForCausalLM, {**SMALL, "logits_scaling": 4.0}),
}


def model_of(family):
    config_cls, model_cls, kw = FAMILIES[family]
    torch.manual_seed(0)
    return model_cls(config_cls(**kw)).eval()


@pytest.mark.parametrize("family", FAMILIES)
def test_training_path_log_probs_equal_the_models_own_logits(family):
    model = model_of(family)
    ids = torch.randint(0, 128, (2, 10), generator=torch.Generator().manual_seed(1))
    mask = torch.ones_like(ids)
    weights = torch.zeros_like(ids, dtype=torch.float)
    weights[:, 4:] = 1.0
    with torch.no_grad():
        full = model(input_ids=ids, attention_mask=mask).logits.float()
        ours = weighted_loss_sum(model, {"input_ids": ids, "attention_mask": mask, "weights": weights})
        at, _ = logits_at(model, input_ids=ids, attention_mask=mask)
    w = weights[:, 1:]
    ref = (F.cross_entropy(full[:, :-1].reshape(-1, 128), ids[:, 1:].reshape(-1), reduction="none")
           * w.reshape(-1)).sum()
    assert torch.allclose(ours, ref, atol=1e-5, rtol=0), (family, float(ours), float(ref))
    assert (F.log_softmax(at, -1) - F.log_softmax(full, -1)).abs().max() < 1e-5
    # Every family here can be reproduced from its output layer (the soft-capping and scalings included).
    assert resolve(model) == HEAD and describe(model)["logits_check_error"] <= 1e-5


def test_without_the_familys_processing_the_check_routes_through_the_full_forward(monkeypatch):
    """An unknown processing step (here: Gemma-2's soft-capping hidden from head_logits) is caught at load
    time and the model goes through its full forward, which is still exact."""
    import cotdistill.students.logits as L
    model = model_of("gemma2")
    real = L.head_logits
    monkeypatch.setattr(L, "head_logits", lambda m, h: m.get_output_embeddings()(h).float())
    assert resolve(model) == FORWARD and describe(model)["logits_check_error"] > 1e-3
    ids = torch.randint(0, 128, (1, 6), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        at, _ = logits_at(model, input_ids=ids, attention_mask=torch.ones_like(ids))
        full = model(input_ids=ids).logits.float()
    assert torch.allclose(at, full, atol=1e-6)
    monkeypatch.setattr(L, "head_logits", real)


def _naive_logps(model, prompt: list[int], cont: list[int]) -> list[float]:
    ids = torch.tensor([prompt + cont])
    with torch.no_grad():
        logp = F.log_softmax(model(input_ids=ids).logits.float()[0], -1)
    return [float(logp[len(prompt) + j - 1, t]) for j, t in enumerate(cont)]


@pytest.mark.parametrize("family", FAMILIES)
def test_scoring_path_equals_a_naive_forward_of_each_candidate(family):
    """Score mode (prompt KV cache repeated per candidate, a second short pass, two continuation sets)
    gives the per-token log-probabilities of a plain forward of prompt + candidate."""
    from cotdistill.evaluate.evaluation import continuation_logps

    model = model_of(family)
    g = torch.Generator().manual_seed(3)
    prompts = [torch.randint(3, 128, (n,), generator=g).tolist() for n in (7, 4)]     # left padding differs
    letter = [[[5], [9], [11, 12]], [[5], [9], [11, 12]]]
    text = [[[20, 21, 22], [23], [24, 25]], [[26], [27, 28], [29]]]
    with torch.no_grad():
        got = continuation_logps(model, prompts, {"letter": letter, "text": text}, 0, "cpu")
    for name, conts in (("letter", letter), ("text", text)):
        for e, prompt in enumerate(prompts):
            for c, cont in enumerate(conts[e]):
                ref = _naive_logps(model, prompt, cont)
                assert max(abs(a - b) for a, b in zip(got[name][e][c], ref)) < 1e-4, (family, name, e, c)


@pytest.mark.parametrize("family", FAMILIES)
def test_attribution_target_equals_the_models_own_label_logprob(family):
    from cotdistill.attribution import label_logprob

    model = model_of(family)
    ids = torch.randint(3, 128, (2, 9), generator=torch.Generator().manual_seed(4))
    spans = [(6, 8), (5, 9)]
    with torch.no_grad():
        embeds = model.get_input_embeddings()(ids)
        got = label_logprob(model, embeds, ids, spans)
        logp = F.log_softmax(model(input_ids=ids).logits.float(), -1)
    ref = [sum(float(logp[r, t - 1, ids[r, t]]) for t in range(a, b)) for r, (a, b) in enumerate(spans)]
    assert torch.allclose(got, torch.tensor(ref), atol=1e-4), (family, got.tolist(), ref)
