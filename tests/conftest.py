"""Shared test setup: offline, the study's data from ../shared/data, caches under .state/."""

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("COTDISTILL_DATA_DIR", str((ROOT / ".." / "shared" / "data").resolve()))
os.environ.setdefault("COTDISTILL_HOME", str(ROOT / ".state"))
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"

# A fixed word-level vocabulary: token ids in tests can be written down by hand.
WORDS = ["<|endoftext|>", "<pad>", "<unk>", "<mask>", "Question", ":", "Choices", "(", ")", "a", "b",
         "c", "Answer", "Explanation", "So", "the", "answer", "is", "red", "blue", "green", "sky",
         "what", "colour", "?", "because", "it", "scatters", "light", ".", "yes", "no", "42", "_"]


def make_word_tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(),
                                                 pre_tokenizers.Punctuation()])
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<pad>",
                                   unk_token="<unk>", mask_token="<mask>")


@pytest.fixture(scope="session")
def word_tokenizer():
    return make_word_tokenizer()


@pytest.fixture
def sky_example():
    from cotdistill.examples import Example
    return Example(id="q1", question="what colour sky ?", choices=("red", "blue", "green"), label="b",
                   rationale="the sky scatters blue light .")
