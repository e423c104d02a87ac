"""perturbation.level sentence: the rationale's sentences or steps as units (split_sentences, a pure
function with exact values), perturbed and re-tokenised like words, over GPT-2-, Phi-, Llama- and
Gemma-2-style tokenizers built offline: every sentence kept by shuffle, loss masks from segment
boundaries, BOS exactly where the tokenizer adds one, no special token inside the rationale."""

import pytest
from tokenizers import processors
from transformers import PreTrainedTokenizerFast

from cotdistill.examples import Example
from cotdistill.sequences.perturbations import perturb, split_sentences, text_units, validate_params
from cotdistill.sequences.placements import SequenceBuilder
from tests.test_placeholders import _bpe, gpt2_style, llama_style


@pytest.mark.parametrize("text, expected", [
    ("A cat sat. A dog ran! Why? Yes.", ["A cat sat.", "A dog ran!", "Why?", "Yes."]),
    ("It costs 3.5 dollars. Then it is 7.25.", ["It costs 3.5 dollars.", "Then it is 7.25."]),
    ("Fruit, e.g. apples, is sweet. I.e. it has sugar. Cats vs. dogs.",
     ["Fruit, e.g. apples, is sweet.", "I.e. it has sugar.", "Cats vs. dogs."]),
    ("In the U.S. people drive. So do we.", ["In the U.S. people drive.", "So do we."]),
    ("1. Add 3 and 4. 2. Double it.\n3) Done", ["1. Add 3 and 4.", "2. Double it.", "3) Done"]),
    ("- first step\n- second step\n\n* third", ["- first step", "- second step", "* third"]),
    ("Step one\nStep two", ["Step one", "Step two"]),
    ('He said "go." Then he left. (It rained.) After', ['He said "go."', "Then he left.", "(It rained.)", "After"]),
    ("no sentence end at all", ["no sentence end at all"]),
    ("Wait... what?! Ok", ["Wait...", "what?!", "Ok"]),
    ("a.b.c is a path.", ["a.b.c is a path."]),
    ("", []),
    ("  \n \n", []),
])
def test_split_sentences_exact(text, expected):
    assert split_sentences(text) == expected


def test_text_units_by_level():
    assert text_units("One two. Three", "word") == ["One", "two.", "Three"]
    assert text_units("One two. Three", "sentence") == ["One two.", "Three"]
    with pytest.raises(ValueError, match="text_units: level must be 'word' or 'sentence', not 'token'"):
        text_units("x", "token")


def test_sentence_units_are_perturbed_whole():
    units = ["A b.", "C d.", "E f.", "G h."]
    assert perturb("mask", units, seed=0, example_id="q", params={"p": 1.0, "mode": "replace"},
                   context=_ctx()) == ["_", "_", "_", "_"]              # one mask unit per sentence
    assert perturb("filler", units, seed=0, example_id="q", params={}, context=_ctx()) == ["..."] * 4
    assert perturb("truncate", units, seed=0, example_id="q", params={"k": 2}) == ["A b.", "C d."]
    kept = perturb("random_subset", units, seed=0, example_id="q", params={"k": 2})
    assert len(kept) == 2 and kept == [u for u in units if u in kept]
    assert sorted(perturb("shuffle", units, seed=0, example_id="q")) == sorted(units)


def _ctx():
    from cotdistill.sequences.perturbations import PerturbContext
    return PerturbContext(mask_unit="_", filler_unit="...")


# ------------------------------------------------------------------------------------------ tokenizers

def phi_style():
    """Phi's layout: one '<|endoftext|>' that is bos, eos and unk, no BOS added (as GPT-2)."""
    tok = gpt2_style()
    assert tok.bos_token_id == tok.eos_token_id == tok.unk_token_id
    return tok


def gemma2_style():
    """Gemma-2's layout: <pad> 0, <eos> 1, <bos> 2, <unk> 3, a BOS added by default."""
    tok = _bpe(["<pad>", "<eos>", "<bos>", "<unk>"], unk_token="<unk>")
    tok.post_processor = processors.TemplateProcessing(single="<bos> $A", special_tokens=[("<bos>", 2)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>", unk_token="<unk>",
                                   pad_token="<pad>")


FAMILIES = {"gpt2": gpt2_style, "phi": phi_style, "llama": llama_style, "gemma2": gemma2_style}
RATIONALE = ("the sky scatters blue light. so it looks blue!\n1. light enters the air. 2. blue scatters "
             "most, e.g. at noon. is it blue? yes <|endoftext|> it is.")
EXAMPLES = [Example(id=f"q{i}", question="what colour is the sky ?", choices=("red", "blue", "green"), label="b",
                    rationale=RATIONALE if i == 0 else f"the sky is blue. light scatters {i} times.")
            for i in range(4)]


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("placement", ["after", "before"])
def test_shuffled_sentences_keep_every_sentence_and_the_masks_come_from_segments(family, placement):
    tok = FAMILIES[family]()
    plain = SequenceBuilder(tok, placement, level="sentence", rationale_weight=0.5)
    shuffled = SequenceBuilder(tok, placement, level="sentence", perturbation="shuffle", seed=1,
                               rationale_weight=0.5)
    special = set(tok.all_special_ids)
    bos = [tok.bos_token_id] if family in ("llama", "gemma2") else []
    ex = EXAMPLES[0]
    sentences = split_sentences(RATIONALE)
    assert len(sentences) == 6 and "yes <|endoftext|> it is." in sentences
    for builder in (plain, shuffled):
        seq = builder.build(ex)
        assert seq.input_ids[:len(bos)] == bos and seq.input_ids[len(bos):].count(tok.bos_token_id) == \
            (1 if tok.bos_token_id == tok.eos_token_id else 0)           # GPT-2/Phi: the one eos is the bos id
        start, end = seq.spans["rationale"]
        ids = seq.input_ids[start:end]
        assert not special & set(ids)                                    # structure, never content
        assert ids == builder.rationale_ids(ex)
        assert seq.weights[start:end] == [0.5] * len(ids)                # the rationale's weight, from its span
        l0, l1 = seq.spans["label"]
        assert seq.weights[l0:l1] == [1.0] * (l1 - l0) and seq.input_ids[l0:l1] == builder.label_ids("b", ex.kind)
        assert all(w == 0 for w in seq.weights[:seq.spans["prompt"][1]])
        # the text trained on: the sentences joined by spaces ('<|endoftext|>' left out where it is special)
        gone = "<|endoftext|>" in tok.all_special_tokens
        expected = [" ".join(s.replace("<|endoftext|>", "" if gone else "<|endoftext|>").split()) for s in sentences]
        trained = [" ".join(s.split()) for s in split_sentences(tok.decode(ids))]
        assert sorted(trained) == sorted(expected)
    assert shuffled.build(ex).input_ids != plain.build(ex).input_ids      # the order changed


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("kind, params", [("mask", {"p": 1.0, "mode": "replace"}), ("filler", {}),
                                          ("truncate", {"k": 2}), ("random_subset", {"k": 2}), ("mismatch", {})])
def test_every_sentence_level_kind_re_tokenises_like_words(family, kind, params):
    tok = FAMILIES[family]()
    b = SequenceBuilder(tok, "after", level="sentence", perturbation=kind,
                        perturbation_params=validate_params(kind, params), seed=0, pool=EXAMPLES)
    ex = EXAMPLES[1]                                       # 'the sky is blue.' 'light scatters 1 times.'
    units = perturb(kind, split_sentences(ex.rationale), seed=0, example_id=ex.id, params=params,
                    context=b._context(ex))
    expected = {"mask": ["_", "_"], "filler": ["...", "..."],
                "truncate": ["the sky is blue.", "light scatters 1 times."]}.get(kind)
    if expected is not None:
        assert units == expected
    if kind == "mismatch":
        assert units in [split_sentences(e.rationale) for e in EXAMPLES if e.id != ex.id]
    assert b.rationale_ids(ex) == b.ordinary_ids(" " + " ".join(units))
    seq = b.build(ex)
    assert not set(tok.all_special_ids) & set(seq.input_ids[slice(*seq.spans["rationale"])])


def test_rationale_as_trained_at_sentence_level():
    from cotdistill.report import rationale_as_trained
    text, how = rationale_as_trained("One. Two. Three.", "q1", placement="after", seed=0,
                                     perturbation={"kind": "truncate", "level": "sentence", "params": {"k": 2}})
    assert (text, how) == ("One. Two.", "truncate at sentence level, seed 0")
    text, _ = rationale_as_trained("One. Two. Three.", "q1", placement="after", seed=4,
                                   perturbation={"kind": "shuffle", "level": "sentence"})
    units = perturb("shuffle", ["One.", "Two.", "Three."], seed=4, example_id="q1")
    assert text == " ".join(units) and sorted(split_sentences(text)) == ["One.", "Three.", "Two."]
    assert rationale_as_trained("One. Two.", "q1", placement="after", seed=0,
                                perturbation={"kind": "mask", "level": "sentence",
                                              "params": {"p": 1.0, "mode": "replace"}})[0] == "_ _"


def test_the_preview_names_the_sentence_placeholders():
    from cotdistill.preview import placeholders
    assert placeholders(SequenceBuilder(gpt2_style(), "after", level="sentence")) == {"mask": "_", "filler": "..."}
