"""A BOS token wherever the tokenizer adds one by default, exactly once, on every path the student
sees: training sequences (also cut ones), scoring, generation, forced answers, attribution, previews
and a local teacher's prompts; and never where the tokenizer adds none (GPT-2, SmolLM2, tiny)."""

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

from cotdistill import attribution
from cotdistill.evaluate import evaluation
from cotdistill.students import logits
from cotdistill.examples import Example
from cotdistill.sequences.placements import SequenceBuilder, default_prefix
from tests.test_placeholders import LAYOUTS, llama_style

EXAMPLES = [Example(id=f"q{i}", question="what colour is the sky ?", choices=("red", "blue", "green"),
                    label="b", rationale="the sky scatters blue light , so it looks blue .") for i in range(3)]


def _tok(layout):
    tok = LAYOUTS[layout]()
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return tok


def _bos_count(ids, tok) -> int:
    return sum(t == tok.bos_token_id for t in ids) if tok.bos_token_id is not None else 0


def test_default_prefix_per_layout():
    assert default_prefix(llama_style()) == [llama_style().bos_token_id]
    for layout in ("gpt2", "smollm2", "tiny"):
        assert default_prefix(LAYOUTS[layout]()) == [], layout


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("placement", ["none", "before", "after"])
@pytest.mark.parametrize("max_length", [256, 24])
def test_training_sequences_start_with_bos_exactly_when_the_tokenizer_adds_one(layout, placement, max_length):
    tok = _tok(layout)
    seq = SequenceBuilder(tok, placement, max_length=max_length).build(EXAMPLES[0])
    if layout == "llama":
        assert seq.input_ids[0] == tok.bos_token_id and _bos_count(seq.input_ids, tok) == 1
        assert seq.spans["bos"] == (0, 1) and seq.weights[0] == 0.0 and seq.labels[0] == -100
    else:
        assert "bos" not in seq.spans
        # GPT-2's bos is its eos: it appears once, at the end, as the eos; SmolLM2's bos never
        assert seq.input_ids[:-1].count(tok.bos_token_id) == 0 if tok.bos_token_id is not None else True
    assert (max_length == 24) == seq.truncated and len(seq) <= max_length


def test_cut_prompt_keeps_the_bos():
    b = SequenceBuilder(_tok("llama"), "after")
    ids = b.prompt_ids(EXAMPLES[0])
    cut = b.cut_prompt(ids, 5)
    assert len(cut) == 5 and cut[0] == b.tok.bos_token_id and cut[1:] == ids[-4:]
    assert b.cut_prompt(ids, len(ids)) == ids
    plain = SequenceBuilder(_tok("gpt2"), "after")
    ids = plain.prompt_ids(EXAMPLES[0])
    assert plain.cut_prompt(ids, 5) == ids[-5:]


def _model(layout, tok):
    torch.manual_seed(0)
    if layout == "llama":
        cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                          num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                          bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                          pad_token_id=tok.pad_token_id)
        return LlamaForCausalLM(cfg).eval()
    cfg = GPT2Config(vocab_size=len(tok), n_embd=32, n_layer=2, n_head=4, n_positions=256,
                     bos_token_id=tok.eos_token_id, eos_token_id=tok.eos_token_id)
    return GPT2LMHeadModel(cfg).eval()


class _Seen:
    """The first-position tokens of every prompt the model is run on (rows' first attended token)."""

    def __init__(self, model):
        logits.resolve(model)                 # its load-time check runs on random ids: not a prompt
        self.rows = []
        for module in {model, model.base_model}:        # the scoring path calls the base model alone
            module.register_forward_pre_hook(self, with_kwargs=True)

    def __call__(self, module, args, kwargs):
        ids, mask = kwargs.get("input_ids"), kwargs.get("attention_mask")
        cached = kwargs.get("past_key_values") is not None or kwargs.get("cache") is not None
        if not cached and ids is not None and mask is not None \
                and mask.shape[1] == ids.shape[1]:                 # a prompt pass, not a cached step
            for row, m in zip(ids.tolist(), mask.tolist()):
                kept = [t for t, a in zip(row, m) if a]
                self.rows.append(kept)
        return None


@pytest.mark.parametrize("layout", ["llama", "gpt2"])
@pytest.mark.parametrize("placement", ["after", "before"])
def test_scoring_generation_and_forced_answers_see_the_bos_once(layout, placement):
    tok = _tok(layout)
    model = _model(layout, tok)
    seen = _Seen(model)
    b = SequenceBuilder(tok, placement, max_length=64)
    with torch.no_grad():
        evaluation.score_batch(model, b, EXAMPLES, tok.pad_token_id, "cpu", scoring="letter",
                               modes=("text", "calibrated"))
        records = evaluation.generate_batch(model, b, EXAMPLES, tok.pad_token_id, 3, "cpu")
    assert any(r.get("forced") for r in records)     # a random model parses nothing: forced answers ran
    assert len(seen.rows) >= 4
    for row in seen.rows:
        if layout == "llama":
            assert row[0] == tok.bos_token_id and _bos_count(row, tok) == 1, row[:5]
        else:
            assert row[0] != tok.bos_token_id         # GPT-2: no bos (it would be the eos)


def test_attribution_items_start_with_the_bos():
    tok = _tok("llama")
    item = attribution._prepare(SequenceBuilder(tok, "before"), EXAMPLES[0])
    assert item.ids[0] == tok.bos_token_id and _bos_count(item.ids, tok) == 1
    r0, _ = item.rationale
    assert r0 > 1                                       # the rationale span moved past the bos and prompt


def test_preview_rows_state_the_bos_and_the_placeholders(tmp_path):
    from cotdistill.config import RunConfig, from_dict
    from cotdistill.preview import preview_rows, render

    tok = llama_style()
    tok.save_pretrained(tmp_path / "tok")
    cfg = from_dict(RunConfig, {"student": {"name": str(tmp_path / "tok")}, "placement": "before",
                                "perturbation": {"kind": "mask", "params": {"p": 0.5, "mode": "replace"}}})
    rows = preview_rows(cfg, n=1)
    assert rows[0]["ids"][0] == tok.bos_token_id and rows[0]["bos"] == "<s>"
    assert rows[0]["placeholders"]["mask"].strip() == "_"
    text = render(rows[0], color=False)
    assert "mask unit" in text and "starts with '<s>'" in text


@pytest.mark.parametrize("chat", [False, True])
def test_local_teacher_prompts_carry_one_bos(tmp_path, chat):
    from cotdistill.teachers.base import Decoding
    from cotdistill.teachers.local import LocalTeacher

    tok = llama_style()
    tok.pad_token = tok.eos_token
    tok.chat_template = "{{ bos_token }}{% for m in messages %}User: {{ m['content'] }}\n{% endfor %}Teacher:"
    folder = tmp_path / "teacher"
    _model("llama", tok).save_pretrained(folder)
    tok.save_pretrained(folder)
    teacher = LocalTeacher(str(folder), device="cpu", chat=chat)
    rows, generate = [], teacher.model.generate

    def spy(**kw):                                      # what generate() is given, then the real thing
        rows.extend([t for t, a in zip(r, m) if a] for r, m in zip(kw["input_ids"].tolist(),
                                                                     kw["attention_mask"].tolist()))
        return generate(**kw)

    teacher.model.generate = spy
    done = teacher.complete(["Question: what colour is the sky ?\nAnswer:", "Question: why ?\nAnswer:"],
                            Decoding(max_new_tokens=2))
    assert len(done) == 2 and len(rows) == 2
    for row in rows:
        assert row[0] == tok.bos_token_id and _bos_count(row, tok) == 1, tok.convert_ids_to_tokens(row[:4])
