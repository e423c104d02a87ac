"""Mask and filler units mean the same for every student and are never a special token: over the
tokenizer layouts users meet (GPT-2/Phi: bos = eos = unk; SmolLM2: unk is id 0, pad = eos; Llama: a BOS
added by default; the tiny student's word tokenizer with a <mask>)."""

import pytest
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

from cotdistill.examples import Example
from cotdistill.sequences.perturbations import PERTURBATIONS, validate_params
from cotdistill.sequences.placements import SequenceBuilder

TEXT = ["what colour is the sky ? the sky scatters blue light , so it looks blue . _ ...",
        "the answer is (a) red (b) blue (c) green", "facts recalled . so the answer is"] * 20


def _bpe(specials, **kw):
    tok = Tokenizer(models.BPE(unk_token=kw.get("unk_token")))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(TEXT, trainers.BpeTrainer(vocab_size=300, special_tokens=specials,
                                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return tok


def gpt2_style():
    return PreTrainedTokenizerFast(tokenizer_object=_bpe(["<|endoftext|>"]), bos_token="<|endoftext|>",
                                   eos_token="<|endoftext|>", unk_token="<|endoftext|>")


def smollm2_style():
    return PreTrainedTokenizerFast(tokenizer_object=_bpe(["<|endoftext|>", "<|im_start|>", "<|im_end|>"]),
                                   unk_token="<|endoftext|>", eos_token="<|im_end|>", pad_token="<|im_end|>",
                                   bos_token="<|im_start|>")


def llama_style():
    tok = _bpe(["<unk>", "<s>", "</s>"], unk_token="<unk>")
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>")


def tiny_style():
    from tests.conftest import make_word_tokenizer
    return make_word_tokenizer()


LAYOUTS = {"gpt2": gpt2_style, "smollm2": smollm2_style, "llama": llama_style, "tiny": tiny_style}
EX = [Example(id=f"q{i}", question="what colour sky ?", choices=("red", "blue", "green"), label="b",
              rationale="the sky scatters blue light <|endoftext|> so the answer is blue ." if i == 0 else
              "the sky scatters blue light .") for i in range(3)]


def test_smollm2_style_layout_is_what_it_claims():
    t = smollm2_style()
    assert t.unk_token_id == 0 and t.pad_token_id == t.eos_token_id


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("kind", [k for k in PERTURBATIONS if k != "key_tokens"] + ["key_tokens"])
@pytest.mark.parametrize("level", ["token", "word", "sentence"])
def test_no_special_token_inside_a_perturbed_rationale(layout, kind, level):
    tok = LAYOUTS[layout]()
    params = {"mask": {"p": 1.0, "mode": "replace"}, "truncate": {"k": 3}, "random_subset": {"k": 3},
              "key_tokens": {"k": 3}}.get(kind, {})
    scores = None
    if kind == "key_tokens":
        probe = SequenceBuilder(tok, "after", level=level)
        scores = {ex.id: [float(i % 5) for i in range(len(probe.rationale_units(ex)))] for ex in EX}
    b = SequenceBuilder(tok, "before", perturbation=kind, perturbation_params=validate_params(kind, params),
                        level=level, pool=EX, scores=scores)
    special = set(tok.all_special_ids)
    for ex in EX:
        ids = b.rationale_ids(ex)
        assert not special & set(ids), (layout, kind, level, tok.convert_ids_to_tokens(ids))


@pytest.mark.parametrize("layout", LAYOUTS)
def test_token_level_placeholders_are_the_same_text_for_every_student(layout):
    tok = LAYOUTS[layout]()
    mask, filler = SequenceBuilder(tok, "after").placeholder_ids()
    assert tok.decode([mask]).strip() == "_" and tok.decode([filler]).strip() == "."
    assert mask not in tok.all_special_ids and filler not in tok.all_special_ids
