import dataclasses

import pytest
import torch

from cotdistill.config import SCORINGS, EvalConfig, TrainConfig
from cotdistill.errors import ConfigError
from cotdistill.evaluate.evaluation import (CONTENT_FREE, best, calibrate, evaluate, letter_scores, summarize,
                                            summarize_with_diagnostics, text_continuation_ids, text_scores)
from cotdistill.examples import Example
from cotdistill.sequences.placements import ANSWER_MARKER, SequenceBuilder, parse_label
from cotdistill.train.loop import train
from tests.helpers import colour_examples, tiny_model


@pytest.fixture(scope="module")
def trained(word_tokenizer):
    """A tiny model trained on the toy task with the rationale before the label."""
    model = tiny_model(word_tokenizer, dropout=0.0)
    builder = SequenceBuilder(word_tokenizer, "before")
    seqs = [builder.build(ex) for ex in colour_examples(30)]
    train(model, seqs, TrainConfig(steps=60, batch_size=10, lr=5e-3, warmup_steps=10), seed=0, pad_id=1)
    return model.eval()


def reference_score(model, builder, ex, option):
    """Log-likelihood of one continuation, one unpadded sequence at a time."""
    prompt = builder.prompt_ids(ex)
    ids = prompt + builder.continuation_ids(option, ex.kind)
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([ids])).logits[0].float(), -1)
    return sum(logp[i - 1, ids[i]].item() for i in range(len(prompt), len(ids)))


@pytest.mark.parametrize("placement", ["none", "after", "before"])
def test_score_equals_one_at_a_time_reference(word_tokenizer, trained, placement):
    builder = SequenceBuilder(word_tokenizer, placement)
    examples = colour_examples(7)
    records = evaluate(trained, builder, examples, mode="score", batch_size=4)
    assert [r["example_id"] for r in records] == [ex.id for ex in examples]
    for ex, rec in zip(examples, records):
        for option in ("a", "b", "c"):
            assert rec["scores"][option] == pytest.approx(reference_score(trained, builder, ex, option), abs=1e-4)
        assert rec["predicted"] == max(rec["scores"], key=rec["scores"].get)
        assert rec["correct"] == (rec["predicted"] == ex.label)


def naive_greedy(model, builder, ex, max_new_tokens):
    """Greedy decoding without a cache, recomputing everything each step."""
    ids, out = builder.prompt_ids(ex), []
    with torch.no_grad():
        for _ in range(max_new_tokens):
            t = model(torch.tensor([ids + out])).logits[0, -1].argmax().item()
            if t == builder.tok.eos_token_id:
                break
            out.append(t)
            if parse_label(builder.tok.decode(out), ex.kind, builder.placement, False):
                break
    return builder.tok.decode(out)


def test_generate_matches_uncached_greedy_and_stops_at_the_label(word_tokenizer, trained):
    builder = SequenceBuilder(word_tokenizer, "before")
    examples = colour_examples(9)
    records = evaluate(trained, builder, examples, mode="generate", batch_size=4, max_new_tokens=20)
    for ex, rec in zip(examples, records):
        assert rec["generated"] == naive_greedy(trained, builder, ex, 20)
        assert rec["generated"].rstrip().endswith(")")          # stopped as soon as the label closed
        assert rec["predicted"] == parse_label(rec["generated"], ex.kind, "before")
        assert rec["predicted"] in ("a", "b", "c")               # the trained format was followed


def test_score_mode_refuses_numeric_examples(word_tokenizer):
    from cotdistill.examples import Example
    num = [Example(id="n", question="what ?", label="42", kind="numeric")]
    with pytest.raises(ValueError, match="use eval.mode=generate"):
        evaluate(tiny_model(word_tokenizer), SequenceBuilder(word_tokenizer, "none"), num, mode="score")


def test_summary_has_accuracy_with_interval():
    records = [{"correct": i % 4 != 0, "predicted": "a"} for i in range(200)] + [{"correct": False, "predicted": None}]
    s = summarize(records, n_boot=2000)
    assert s["n"] == 201 and s["accuracy"] == pytest.approx(150 / 201)
    assert s["accuracy_low"] < s["accuracy"] < s["accuracy_high"] and s["unparsed"] == 1
    assert (s["n_questions"], s["interval_unit"]) == (201, "row")


def test_summary_interval_over_questions_when_a_question_has_several_rows():
    records = [{"correct": q % 2 == 0, "predicted": "a"} for q in range(40) for _ in range(3)]
    clusters = [q for q in range(40) for _ in range(3)]
    rows = summarize(records, n_boot=2000)
    questions = summarize(records, n_boot=2000, clusters=clusters)
    assert (questions["n"], questions["n_questions"], questions["interval_unit"]) == (120, 40, "question")
    assert questions["accuracy"] == rows["accuracy"] == 0.5
    assert questions["accuracy_high"] - questions["accuracy_low"] > \
        1.5 * (rows["accuracy_high"] - rows["accuracy_low"])
    one_each = summarize(records, n_boot=2000, clusters=list(range(120)))      # rows are questions
    assert (one_each["accuracy_low"], one_each["accuracy_high"], one_each["interval_unit"]) == \
        (rows["accuracy_low"], rows["accuracy_high"], "row")



# ---------------------------------------------------------------- scorings: pure arithmetic

def test_length_normalized_text_score_beats_the_short_choice():
    """Summed log-likelihood prefers the short wrong choice; the per-token mean prefers the right one."""
    logps = {"a": [-1.0, -1.0], "b": [-0.5, -0.5, -0.5, -0.5, -0.5]}       # gold: b, five likely tokens
    assert letter_scores(logps) == {"a": -2.0, "b": -2.5} and best(letter_scores(logps)) == "a"
    assert text_scores(logps) == {"a": -1.0, "b": -0.5} and best(text_scores(logps)) == "b"
    assert text_scores({"a": [-4.0, -1.0, -2.0]}, lead=1) == {"a": -1.5}   # the shared lead-in is not counted


def test_calibrate_subtracts_the_content_free_score():
    assert calibrate({"a": -1.0, "b": -2.0}, {"a": -0.5, "b": -3.0}) == {"a": -0.5, "b": 1.0}


UNBIASED = [{"a": -2.0, "b": -1.0, "c": -3.0}, {"a": -2.5, "b": -3.0, "c": -1.5},
            {"a": -1.0, "b": -2.0, "c": -2.5}, {"a": -3.0, "b": -2.0, "c": -1.0}]
FLAT_PRIOR = {"a": -1.0, "b": -1.0, "c": -1.0}         # the unbiased scorer without the question


def with_bonus(scores, label="a", bonus=2.5):
    """A scorer that likes one letter whatever the question: a constant bonus, also under 'N/A'."""
    return {k: v + (bonus if k == label else 0.0) for k, v in scores.items()}


def test_calibration_removes_a_planted_letter_bias():
    assert [best(s) for s in UNBIASED] == ["b", "c", "a", "c"]
    assert [best(with_bonus(s)) for s in UNBIASED] == ["a", "a", "a", "a"]          # collapsed onto (a)
    calibrated = [calibrate(with_bonus(s), with_bonus(FLAT_PRIOR)) for s in UNBIASED]
    assert calibrated[0] == {"a": -1.0, "b": 0.0, "c": -2.0}
    assert [best(s) for s in calibrated] == ["b", "c", "a", "c"]                     # ranks like the unbiased


# ---------------------------------------------------------------- scorings through a real tiny model

def token_logps(model, prompt, cont):
    """Per-token log-probabilities of `cont` after `prompt`, one unpadded sequence, no cache."""
    ids = prompt + cont
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([ids])).logits[0].float(), -1)
    return [logp[i - 1, ids[i]].item() for i in range(len(prompt), len(ids))]


def reference_by_mode(model, builder, ex, text_format, base):
    blank = dataclasses.replace(ex, question=CONTENT_FREE)
    lead = len(builder.encode(ANSWER_MARKER)) if builder.placement == "before" else 0
    conts = {o: {"letter": builder.continuation_ids(o, ex.kind),
                 "text": text_continuation_ids(builder, ex, o, text_format)} for o in ex.label_options}
    score = {"letter": lambda lps: sum(lps), "text": lambda lps: sum(lps[lead:]) / len(lps[lead:])}
    modes = {m: {o: score[m](token_logps(model, builder.prompt_ids(ex), conts[o][m])) for o in conts}
             for m in ("letter", "text")}
    blank_prompt = builder.prompt_ids(blank)
    modes["calibrated"] = {o: modes[base][o] - score[base](token_logps(model, blank_prompt, conts[o][base]))
                           for o in conts}
    return modes


@pytest.mark.parametrize("placement,text_format,base", [("none", "label_and_text", "letter"),
                                                        ("after", "text_only", "letter"),
                                                        ("before", "label_and_text", "text")])
def test_every_scoring_equals_one_at_a_time_reference(word_tokenizer, trained, placement, text_format, base):
    builder = SequenceBuilder(word_tokenizer, placement)
    examples = colour_examples(5)
    records = evaluate(trained, builder, examples, mode="score", batch_size=2, scoring="calibrated",
                       modes=SCORINGS, text_format=text_format, calibration_base=base)
    for ex, rec in zip(examples, records):
        assert list(rec["by_mode"]) == ["letter", "text", "calibrated"] and rec["scoring"] == "calibrated"
        expected = reference_by_mode(trained, builder, ex, text_format, base)
        for mode, entry in rec["by_mode"].items():
            assert entry["scores"] == pytest.approx(expected[mode], abs=1e-4), mode
            assert entry["predicted"] == best(entry["scores"]) and entry["correct"] == (entry["predicted"] == ex.label)
        top = rec["by_mode"]["calibrated"]
        assert (rec["predicted"], rec["correct"], rec["scores"]) == (top["predicted"], top["correct"], top["scores"])
        cf = top["content_free"]
        assert {o: rec["by_mode"][base]["scores"][o] - cf[o] for o in cf} == pytest.approx(top["scores"])


def test_letter_scoring_alone_is_the_default(word_tokenizer, trained):
    builder = SequenceBuilder(word_tokenizer, "after")
    alone = evaluate(trained, builder, colour_examples(4), mode="score")
    every = evaluate(trained, builder, colour_examples(4), mode="score", modes=SCORINGS)
    assert all(list(r["by_mode"]) == ["letter"] and r["scoring"] == "letter" for r in alone)
    for a, b in zip(alone, every):
        assert a["scores"] == pytest.approx(b["scores"], abs=1e-5) and a["predicted"] == b["predicted"]


def test_text_of_a_choice_is_the_label_as_trained_then_the_choice(word_tokenizer, sky_example):
    builder = SequenceBuilder(word_tokenizer, "none")
    decode = lambda ids: word_tokenizer.decode(ids)           # noqa: E731
    assert decode(text_continuation_ids(builder, sky_example, "b", "label_and_text")) == "( b ) blue"
    assert decode(text_continuation_ids(builder, sky_example, "b", "text_only")) == "blue"
    yes = Example(id="y", question="sky blue ?", label="yes", choices=("yes", "no"), kind="yes_no")
    assert decode(text_continuation_ids(builder, yes, "no", "label_and_text")) == "no"


def test_unknown_scorings_are_refused(word_tokenizer):
    with pytest.raises(ValueError, match="scoring 'pmi' is unknown"):
        evaluate(tiny_model(word_tokenizer), SequenceBuilder(word_tokenizer, "none"), colour_examples(2),
                 mode="score", scoring="pmi")
    with pytest.raises(ConfigError, match="eval.scoring must be one of letter, text, calibrated"):
        EvalConfig(scoring="pmi")
    with pytest.raises(ConfigError, match="eval.text_format"):
        EvalConfig(text_format="choice")
    with pytest.raises(ConfigError, match="only eval.mode=score does"):
        EvalConfig(mode="generate", scoring="calibrated")


def test_summary_with_diagnostics_flags_a_constant_answer():
    records = [{"example_id": str(i), "gold": "abcd"[i % 4], "predicted": "a", "correct": i % 4 == 0}
               for i in range(40)]
    s = summarize_with_diagnostics(records, n_boot=2000)
    assert s["accuracy"] == 0.25 and s["majority_baseline"] == 0.25 and s["collapsed"] is True
    assert s["prediction_distribution"] == {"a": 1.0} and s["per_label_accuracy"] == {"a": 1.0, "b": 0.0,
                                                                                       "c": 0.0, "d": 0.0}
    assert s["accuracy_by_mode"] is None                      # records without by_mode (generate mode)


class NeverAnswers(torch.nn.Module):
    """Stands in for a `before` student that rambles: greedy decoding always picks `token` (never the
    answer marker), while the other tokens keep the wrapped model's log-probabilities."""

    def __init__(self, model, token: int):
        super().__init__()
        self.model, self.token = model, token

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, cache=None, **kw):
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                         cache=cache, **kw)
        out.logits[..., self.token] += 30.0           # random logits are within a few units of 0
        return out


def test_a_student_that_never_writes_the_marker_gets_forced_answers(word_tokenizer):
    from cotdistill.evaluate.diagnostics import diagnose
    filler = word_tokenizer.encode(" light", add_special_tokens=False)[-1]
    model = NeverAnswers(tiny_model(word_tokenizer, dropout=0.0), filler)
    builder = SequenceBuilder(word_tokenizer, "before")
    examples = colour_examples(5)
    records = evaluate(model, builder, examples, mode="generate", batch_size=2, max_new_tokens=6)
    marker = builder.encode(ANSWER_MARKER)
    for ex, rec in zip(examples, records):
        assert rec["forced"] is True and rec["predicted"] in ("a", "b", "c")
        assert rec["generated"] == word_tokenizer.decode([filler] * 6)          # the raw generation, kept
        assert rec["correct"] == (rec["predicted"] == ex.label)
        # Each candidate scored after prompt + generated rationale + answer marker, as trained.
        prompt = builder.prompt_ids(ex) + [filler] * 6 + marker
        for option, score in rec["scores"].items():
            ids = prompt + builder.label_ids(option, ex.kind)
            with torch.no_grad():
                logp = torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0].float(), -1)
            assert score == pytest.approx(sum(logp[i - 1, ids[i]].item() for i in range(len(prompt), len(ids))),
                                          abs=1e-3)
        assert rec["predicted"] == max(rec["scores"], key=rec["scores"].get)
    s = summarize(records, n_boot=200)
    assert (s["unparsed"], s["unparsed_rate"], s["forced"]) == (5, 1.0, 5)
    assert s["forced_ids"] == [ex.id for ex in examples]
    d = diagnose(records, accuracy_low=s["accuracy_low"], accuracy_high=s["accuracy_high"])
    assert d["high_unparsed"] is True and d["unparsed_reason"] in d["flags"]


def test_parsed_generations_are_not_forced(word_tokenizer, trained):
    builder = SequenceBuilder(word_tokenizer, "before")
    records = evaluate(trained, builder, colour_examples(4), mode="generate", batch_size=4, max_new_tokens=20)
    assert [r["forced"] for r in records] == [False] * 4 and all(r["scores"] is None for r in records)
    s = summarize(records, n_boot=100)
    assert (s["unparsed"], s["unparsed_rate"], s["forced"], s["forced_ids"]) == (0, 0.0, 0, [])
