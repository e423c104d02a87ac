import pytest

from cotdistill.config import StudentConfig
from cotdistill.errors import StudentError
from cotdistill.students.loading import check_tokenizer, load_student, train_tokenizer

TEXTS = ["Question: Start at 3. Add 4. What number do you get?", "3 + 4 = 7.", " (a)", " (b)"] * 20


def test_tiny_student_has_a_working_cached_tokenizer(tmp_path, monkeypatch):
    monkeypatch.setenv("COTDISTILL_HOME", str(tmp_path))
    s = load_student(StudentConfig(name="tiny", size="tiny", vocab_size=300), train_texts=TEXTS)
    assert s.tokenizer.decode(s.tokenizer.encode("3 + 4 = 7.")) == "3 + 4 = 7."
    assert s.model.config.n_layer == 2 and s.model.config.n_embd == 128
    assert s.model.config.vocab_size == len(s.tokenizer)
    cached = list((tmp_path / "tokenizers").glob("*.json"))
    assert len(cached) == 1
    again = train_tokenizer(TEXTS, 300)                  # same text: served from the cache
    assert again.get_vocab() == s.tokenizer.get_vocab()
    assert len(list((tmp_path / "tokenizers").glob("*.json"))) == 1


def test_unknown_size_and_missing_text():
    with pytest.raises(StudentError, match="student.size 'huge' is unknown"):
        load_student(StudentConfig(name="tiny", size="huge"), train_texts=TEXTS)
    with pytest.raises(StudentError, match="pass train_texts"):
        load_student(StudentConfig(name="tiny"))


def test_empty_tokenizer_is_refused():
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast
    empty = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.BPE()))
    with pytest.raises(StudentError, match="empty or broken"):
        check_tokenizer(empty, "gpt2")


def test_hub_id_offline_fails_fast_with_advice():
    with pytest.raises(StudentError, match="HF_HUB_OFFLINE=1 is set.*tiny"):
        load_student(StudentConfig(name="nobody/not-a-model-xyz"))
