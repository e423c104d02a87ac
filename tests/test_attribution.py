"""Token attribution, checked against ground truth: a model trained on `synthetic-key`, whose label
is decided by one known word of the rationale (its other words are noise), must be explained by it.

One small GPT-2 (1 layer, 64 wide) is trained once for the module with the `before` placement; the
label is supervised, the rationale is context only (rationale_weight 0), as a scoring model sees it.
"""

import copy
import dataclasses
import json
import math
import os
import subprocess
import sys

import pytest
import torch
import yaml
from transformers import GPT2Config, GPT2LMHeadModel

from cotdistill.attribution import (METHODS, attribute, gauss_legendre, load_scoring_model, summarize,
                                    write_scores)
from cotdistill.config import StudentConfig, TrainConfig
from cotdistill.data import load_examples
from cotdistill.sequences.placements import SequenceBuilder
from cotdistill.run import load_scores, tokenizer_texts
from cotdistill.students.loading import train_tokenizer
from cotdistill.train.loop import train
from tests.conftest import ROOT

TOLERANCE = 1e-2        # nats: IG's completeness error allowed after refinement
MIN_HIT_RATE = 0.9      # share of examples whose top-ranked token is the key word's


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny matrices: a second thread adds only synchronisation (and spin-waits on a busy machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def scorer(one_thread):
    """(model, tokenizer) trained on synthetic-key with the rationale before the label.

    initializer_range 0.1 (not GPT-2's 0.02) shortens the plateau before the model starts reading
    the key word: 250 steps learn it on every seed tried (0-3), in about 6 s on one core."""
    train_ex = load_examples("synthetic-key", "train", n_train=1024)
    tok = train_tokenizer(tokenizer_texts(train_ex), 512)
    cfg = GPT2Config(vocab_size=len(tok), n_positions=64, n_embd=64, n_layer=1, n_head=2,
                     initializer_range=0.1, resid_pdrop=0, embd_pdrop=0, attn_pdrop=0,
                     bos_token_id=tok.eos_token_id, eos_token_id=tok.eos_token_id,
                     pad_token_id=tok.pad_token_id)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = GPT2LMHeadModel(cfg)
    builder = SequenceBuilder(tok, "before", rationale_weight=0.0)
    train(model, [builder.build(ex) for ex in train_ex],
          TrainConfig(steps=250, batch_size=32, lr=1e-2, warmup_steps=10), seed=0, pad_id=tok.pad_token_id)
    return model.eval(), tok


@pytest.fixture(scope="module")
def examples():
    return load_examples("synthetic-key", "test", n_test=40)


def key_hits(results, examples, *, magnitude=False) -> tuple[float, float]:
    """Share of examples whose top token, and whose top word, is the key word."""
    rank = (lambda v: abs(v)) if magnitude else (lambda v: v)
    token = word = 0
    for r, ex in zip(results, examples):
        top = max(range(len(r["scores"])), key=lambda j: rank(r["scores"][j]))
        token += r["word_of_token"][top] == ex.meta["key_index"]
        word += max(range(len(r["words"])), key=lambda j: rank(r["word_scores"][j])) == ex.meta["key_index"]
    return token / len(results), word / len(results)


def test_the_scoring_model_learned_the_task(scorer, examples):
    """Guard for the ranking tests: a model that did not learn the task has nothing to explain."""
    results = attribute(*scorer, examples, method="occlusion", batch_size=256, device="cpu")
    assert sum(r["label_logprob"] for r in results) / len(results) > math.log(0.95)


@pytest.mark.parametrize("method", METHODS)
def test_each_method_ranks_the_key_word_first(scorer, examples, method):
    """grad_x_input is ranked by magnitude: its sign is unreliable after LayerNorm (module doc)."""
    results = attribute(*scorer, examples, method=method, steps=32, batch_size=256, device="cpu")
    token_rate, word_rate = key_hits(results, examples, magnitude=method == "grad_x_input")
    assert token_rate >= MIN_HIT_RATE and word_rate >= MIN_HIT_RATE, (method, token_rate, word_rate)


def test_label_logprob_is_the_models_own_log_likelihood(scorer, examples):
    """f(x) from input embeddings and label-position logits equals a plain forward on the ids."""
    model, tok = scorer
    results = attribute(model, tok, examples[:6], method="grad_x_input", device="cpu")
    builder = SequenceBuilder(tok, "before")
    for r, ex in zip(results, examples):
        seq = builder.build(ex)
        a, b = seq.spans["label"]
        with torch.no_grad():
            logp = torch.log_softmax(model(torch.tensor([seq.input_ids])).logits[0].float(), -1)
        expected = sum(logp[t - 1, seq.input_ids[t]].item() for t in range(a, b))
        assert r["label_logprob"] == pytest.approx(expected, abs=1e-4)


def test_ig_completeness_error_is_small_and_reported(scorer, examples):
    """With `tolerance`, examples whose path 32 nodes do not resolve are redone with more steps."""
    results = attribute(*scorer, examples, method="ig", steps=32, tolerance=TOLERANCE, max_steps=256,
                        batch_size=256, device="cpu")
    for r in results:
        delta = r["label_logprob"] - r["baseline_logprob"]
        assert r["completeness_error"] == pytest.approx(abs(sum(r["scores"]) - delta), abs=1e-9)
        assert sum(r["word_scores"]) == pytest.approx(sum(r["scores"]), abs=1e-6)
    summary = summarize(results, seconds=1.0)
    assert summary["max_completeness_error"] <= TOLERANCE
    assert summary["mean_completeness_error"] <= TOLERANCE and summary["n"] == len(examples)
    assert {r["steps"] for r in results} <= {32, 64, 128, 256}
    # (whether any path needs more than 32 nodes depends on how confident the random model is; not asserted)


def test_gauss_legendre_weights_integrate_polynomials_exactly():
    nodes, weights = gauss_legendre(8)
    assert 0 < nodes.min() and nodes.max() < 1 and weights.sum() == pytest.approx(1.0)
    assert (weights * nodes ** 15).sum() == pytest.approx(1 / 16)      # degree 2 * 8 - 1


def test_a_token_that_looks_like_the_baseline_scores_zero(scorer, examples):
    """Deliberately ignorable: give the distractor 'kavo' the zero (baseline) embedding. Replacing
    it by the baseline then changes nothing, so occlusion (and IG, grad x input) must give exactly 0
    at its positions, while the key word still ranks first in the same rationales."""
    model, tok = scorer
    (kavo,) = tok.encode(" kavo")
    blind = copy.deepcopy(model)
    with torch.no_grad():
        blind.get_input_embeddings().weight[kavo] = 0
    chosen = [ex for ex in examples if "kavo" in ex.rationale.split()]
    assert chosen
    for method in METHODS:
        results = attribute(blind, tok, chosen, method=method, steps=16, batch_size=64, device="cpu")
        for r in results:
            at_kavo = [s for s, t in zip(r["scores"], r["token_ids"]) if t == kavo]
            others = [s for s, t in zip(r["scores"], r["token_ids"]) if t != kavo]
            assert at_kavo and all(s == 0.0 for s in at_kavo), (method, r["scores"])
            assert any(abs(s) > 1e-6 for s in others)
    occluded = attribute(blind, tok, chosen, method="occlusion", device="cpu")
    assert key_hits(occluded, chosen)[0] >= MIN_HIT_RATE


@pytest.mark.parametrize("method", ["ig", "occlusion"])
def test_batched_equals_one_at_a_time_and_padding_changes_nothing(scorer, method):
    """Rationales of 3 and 9 words share forward passes (so the short ones are padded) in the batched
    run; each example alone fills its own passes with no padding. Same scores up to float rounding."""
    short = load_examples("synthetic-key", "test", n_train=10, n_test=4, n_words=3)
    long = [dataclasses.replace(ex, id=ex.id + "-long")
            for ex in load_examples("synthetic-key", "test", n_test=4, n_words=9)]
    mixed = [ex for pair in zip(short, long) for ex in pair]
    batched = attribute(*scorer, mixed, method=method, steps=16, batch_size=64, device="cpu")
    assert len({len(r["tokens"]) for r in batched}) == 2
    for ex, b in zip(mixed, batched):
        (alone,) = attribute(*scorer, [ex], method=method, steps=16, batch_size=1000, device="cpu")
        assert alone["example_id"] == b["example_id"] == ex.id
        assert alone["scores"] == pytest.approx(b["scores"], rel=1e-4, abs=1e-5)
        assert alone["label_logprob"] == pytest.approx(b["label_logprob"], rel=1e-5, abs=1e-6)


def test_words_collect_their_tokens(scorer):
    """Word aggregation follows the text: punctuation, several spaces, non-ASCII, numbers."""
    ex = dataclasses.replace(load_examples("synthetic-key", "test", n_test=1)[0],
                             rationale="  Birds fly,  don't they?  Café 42.5%  done ")
    (r,) = attribute(*scorer, [ex], method="grad_x_input", device="cpu")
    tok = scorer[1]
    assert r["words"] == ex.rationale.split()
    assert r["word_of_token"] == sorted(r["word_of_token"])
    for w, word in enumerate(r["words"]):       # a byte token of 'é' alone decodes to '\ufffd'
        assert tok.decode([t for t, k in zip(r["token_ids"], r["word_of_token"]) if k == w]).strip() == word


@pytest.mark.parametrize("level", ["word", "token"])
def test_scores_file_drives_key_tokens_and_random_subset_to_k_units(scorer, examples, tmp_path, level):
    model, tok = scorer
    results = attribute(model, tok, examples, method="ig", steps=32, batch_size=256, device="cpu")
    path = tmp_path / "scores.jsonl"
    write_scores(path, results, level)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["example_id"] for r in rows] == [ex.id for ex in examples]
    assert all(r["level"] == level and len(r["tokens"]) == len(r["scores"]) for r in rows)
    if level == "word":
        assert all(r["tokens"] == ex.rationale.split() for r, ex in zip(rows, examples))
    scores = load_scores(str(path))
    for k in (1, 2):
        kept = {kind: SequenceBuilder(tok, "before", perturbation=kind, perturbation_params={"k": k},
                                      level=level, scores=scores)
                for kind in ("key_tokens", "random_subset")}
        key_kept = 0
        for ex in examples:
            units = {kind: b.rationale_ids(ex) for kind, b in kept.items()}
            if level == "word":
                units = {kind: tok.decode(ids).split() for kind, ids in units.items()}
            assert len(units["key_tokens"]) == len(units["random_subset"]) == k
            key_kept += (ex.meta["key"] in units["key_tokens"]) if level == "word" else \
                tok.encode(" " + ex.meta["key"])[0] in units["key_tokens"]
        assert key_kept >= MIN_HIT_RATE * len(examples)


def test_absolute_scores_for_gradient_x_input(scorer, examples, tmp_path):
    results = attribute(*scorer, examples[:4], method="grad_x_input", device="cpu")
    write_scores(tmp_path / "s.jsonl", results, "token", absolute=True)
    rows = [json.loads(line) for line in (tmp_path / "s.jsonl").read_text().splitlines()]
    assert [r["scores"] for r in rows] == [[abs(s) for s in r["scores"]] for r in results]
    assert rows[0]["token_ids"] == results[0]["token_ids"]
    assert all(r["sign"] == "absolute" and r["method"] == "grad_x_input" and r["level"] == "token" for r in rows)


def test_scoring_model_sources(scorer, tmp_path):
    model, tok = scorer
    run_dir = save_run(model, tok, tmp_path / "run", placement="after")
    with pytest.raises(ValueError, match="placement 'after'.*use a `before` run"):
        load_scoring_model(run_dir)
    assert load_scoring_model(run_dir / "model").model.config.n_layer == 1     # a plain folder: any model
    texts = tokenizer_texts(load_examples("synthetic-key", "train", n_train=64))
    a = load_scoring_model(StudentConfig(name="tiny", vocab_size=400), train_texts=texts, seed=3)
    b = load_scoring_model(StudentConfig(name="tiny", vocab_size=400), train_texts=texts, seed=3)
    assert torch.equal(a.model.transformer.wte.weight, b.model.transformer.wte.weight)
    with pytest.raises(ValueError, match="unknown attribution method 'lime'"):
        attribute(model, tok, [], method="lime")


def save_run(model, tok, run_dir, placement="before"):
    model.save_pretrained(run_dir / "model")
    tok.save_pretrained(run_dir / "model")
    (run_dir / "config.yaml").write_text(yaml.safe_dump(
        {"placement": placement, "data": {"name": "synthetic-key", "options": {"n_test": 10},
                                          "train_split": "train"}}))
    return run_dir


def cli(*args):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "cotdistill.cli", *args], cwd=ROOT, capture_output=True,
                          text=True, env=env, timeout=300)


def test_cli_attribute_writes_the_scores_file(scorer, tmp_path):
    run_dir = save_run(*scorer, tmp_path / "run")
    out = tmp_path / "scores.jsonl"
    p = cli("attribute", "--run", str(run_dir), "--split", "test", "--n", "6", "--method", "ig",
            "--steps", "16", "--out", str(out))
    assert p.returncode == 0, p.stderr
    assert "6 examples of synthetic-key/test · ig ·" in p.stdout and "examples/s" in p.stdout
    assert "completeness error mean" in p.stdout
    assert "agreement with the known key words (6 example(s)): a key word ranked first in " in p.stdout
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 6 and all(set(r) >= {"example_id", "scores", "tokens"} for r in rows)
    assert load_scores(str(out)).keys() == {r["example_id"] for r in rows}
    bad = cli("attribute", "--dataset", "synthetic-key", "--out", str(tmp_path / "x.jsonl"))
    assert bad.returncode == 2 and "give exactly one scoring model" in bad.stderr
