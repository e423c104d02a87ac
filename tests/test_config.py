import pytest

from cotdistill.config import HASH_NEUTRAL, RunConfig, load_config
from cotdistill.errors import ConfigError


def test_yaml_and_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("placement: before\ndata: {name: synthetic, n_test: 50}\ntrain: {steps: 5}\n")
    cfg = load_config(path, ["perturbation.kind=shuffle", "seed=2", "train.lr=0.01"])
    assert (cfg.placement, cfg.perturbation.kind, cfg.seed, cfg.train.lr) == ("before", "shuffle", 2, 0.01)
    assert cfg.data.n_test == 50 and cfg.train.steps == 5
    assert cfg.eval_mode == "generate"


def test_hash_is_stable_and_sensitive():
    a, b = RunConfig(), RunConfig()
    assert a.hash() == b.hash() and len(a.hash()) == 12
    assert RunConfig(seed=1).hash() != a.hash()
    assert RunConfig(name="x").hash() == a.hash()           # the name is a label, not a setting


@pytest.mark.parametrize("override,message", [
    ("placement=middle", "placement must be one of"),
    ("perturbation.kind=jumble", "perturbation.kind 'jumble' is unknown"),
    ("perturbation.params.q=1", "q"),
    ("train.stepz=3", "unknown key(s) train.stepz"),
    ("eval.mode=sample", "eval.mode must be one of"),
    ("data.n_train=0", "data.n_train must be a positive integer"),
    ("seed", "is not key=value"),
    ("perturbation.kind=key_tokens", "needs perturbation.scores_file"),
])
def test_bad_values_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_config(None, [override])


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("placement: [after\n")
    with pytest.raises(ConfigError, match="bad.yaml: not valid YAML"):
        load_config(bad)


def test_every_shipped_config_loads():
    from tests.conftest import ROOT
    configs = sorted(p for p in (ROOT / "configs").glob("*.yaml") if not p.name.startswith("matrix-"))
    assert len(configs) >= 6
    for path in configs:
        load_config(path)


@pytest.mark.parametrize("text,key,expected", [
    ("train: {lr: 3e-4}", "train.lr", 3e-4),
    ("train: {steps: 1_000}", "train.steps", 1000),
    ("train: {batch_size: '8'}", "train.batch_size", 8),
    ("seed: '7'", "seed", 7),
    ("rationale_weight: 2", "rationale_weight", 2),
])
def test_numbers_in_any_yaml_notation_are_coerced(tmp_path, text, key, expected):
    path = tmp_path / "c.yaml"
    path.write_text(text + "\n")
    cfg = load_config(path)
    section, _, name = key.rpartition(".")
    value = getattr(getattr(cfg, section) if section else cfg, name)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize("override,message", [
    ("train.lr=abc", "override 'train.lr=abc': train.lr: expected a number, got 'abc'"),
    ("train.lr=0", "train.lr: expected a number > 0, got 0"),
    ("seed=abc", "seed: expected an integer, got 'abc'"),
    ("seed=true", "seed: expected an integer, got True"),
    ("student.max_length=abc", "student.max_length: expected an integer, got 'abc'"),
    ("student.max_length=4", "student.max_length: expected a number >= 8, got 4"),
    ("data.options=[1,2]", "data.options: expected a mapping, got [1, 2]"),
    ("train.steps=ten", "train.steps: expected an integer, got 'ten'"),
    ("train.steps=-1", "train.steps: expected a number >= 0, got -1"),   # 0: the untouched student
    ("train.batch_size=0", "train.batch_size: expected a number >= 1, got 0"),
    ("rationale_weight=high", "rationale_weight: expected a number, got 'high'"),
    ("rationale_weight=-1", "rationale_weight: expected a number >= 0, got -1"),
    ("eval.batch_size=0", "eval.batch_size: expected a number >= 1, got 0"),
    ("eval.n_boot=0", "eval.n_boot: expected a number >= 1, got 0"),
    ("eval.all_modes=maybe", "eval.all_modes: expected true or false, got 'maybe'"),
    ("student.vocab_size=5", "student.vocab_size: expected an integer >= 260"),
    ("perturbation.scores_file=/nonexistent/s.jsonl", "perturbation.scores_file: file /nonexistent/s.jsonl not found"),
])
def test_bad_types_and_ranges_name_the_key(override, message):
    with pytest.raises(ConfigError) as e:
        load_config(None, [override])
    assert message in str(e.value) and "\n" not in str(e.value)
    assert str(e.value).startswith(f"override {override!r}: ")


def test_file_errors_name_the_file_and_key(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("train: {lr: abc}\n")
    with pytest.raises(ConfigError, match=r"config.yaml: train.lr: expected a number, got 'abc'"):
        load_config(path)


def test_empty_file_needs_defaults(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("")
    with pytest.raises(ConfigError, match=r"^config.yaml is empty; pass --defaults to run the default config$"):
        load_config(path)
    assert load_config(path, defaults=True) == RunConfig()


def test_valid_configs_keep_their_hash():
    """Coercion must not change the resolved dict of an already valid config (ints stay ints)."""
    assert load_config(None, ["rationale_weight=1", "train.clip=1"]).to_dict() == \
        RunConfig(rationale_weight=1, train=RunConfig().train.__class__(clip=1)).to_dict()
    assert load_config(None, []).hash() == RunConfig().hash()


def test_file_dataset_paths_must_exist(tmp_path):
    with pytest.raises(ConfigError, match=r"^override 'data.options.path=/nonexistent/d.jsonl': "
                                          r"data.options.path: file /nonexistent/d.jsonl not found$"):
        load_config(None, ["data.name=file", "data.options.path=/nonexistent/d.jsonl"])
    scores = tmp_path / "s.jsonl"
    scores.write_text("")
    cfg = load_config(None, ["perturbation.kind=key_tokens", f"perturbation.scores_file={scores}"])
    assert cfg.perturbation.scores_file == str(scores)


@pytest.mark.parametrize("override, message", [
    ("student.lora={r: 0}", "student.lora.r must be a positive integer, not 0"),
    ("student.lora={rank: 8}", "unknown key(s) student.lora.rank; accepted in student.lora: r, alpha, dropout, target_modules"),
    ("student.lora={alpha: -1}", "student.lora.alpha must be a number > 0, not -1"),
    ("student.lora={dropout: 1}", "student.lora.dropout must be a number in [0, 1), not 1"),
    ("student.lora={target_modules: q_proj}", "student.lora.target_modules must be null"),
    ("student.lora=8", "student.lora: expected a mapping, got 8"),
    ("student.attn_implementation=flash", "student.attn_implementation must be one of sdpa, eager, flash_attention_2, not 'flash'"),
    ("student.dtype=fp16", "student.dtype must be one of auto, float32, bfloat16, float16, not 'fp16'"),
    ("student.gradient_checkpointing=yes please", "student.gradient_checkpointing: expected true or false"),
    ("train.packing=sometimes", "train.packing: expected true or false, got 'sometimes'"),
])
def test_students_at_size_options_name_the_key(override, message):
    with pytest.raises(ConfigError) as e:
        load_config(None, [override])
    assert message in str(e.value)


def test_lora_defaults_are_filled_in_and_packing_defaults_to_auto():
    cfg = load_config(None, ["student.lora={r: 4}", "student.gradient_checkpointing=true"])
    assert cfg.student.lora == {"r": 4, "alpha": 16, "dropout": 0.0, "target_modules": None}
    assert cfg.student.gradient_checkpointing is True and cfg.train.packing is None
    assert load_config(None, ["student.lora=null"]).student.lora is None


def test_new_keys_at_their_defaults_leave_the_settings_hash_of_older_configs_alone():
    from cotdistill.config import from_dict
    old = RunConfig().to_dict()                      # as written before the keys existed
    for section, key in (("student", "lora"), ("student", "gradient_checkpointing"),
                         ("student", "attn_implementation"), ("student", "dtype"), ("train", "packing")):
        del old[section][key]
    assert from_dict(RunConfig, old).settings_hash() == RunConfig().settings_hash()
    changed = {load_config(None, [o]).settings_hash() for o in (
        "student.lora={r: 8}", "student.gradient_checkpointing=true", "student.attn_implementation=eager",
        "student.dtype=bfloat16", "train.packing=false")}
    assert len(changed) == 5 and RunConfig().settings_hash() not in changed
@pytest.mark.parametrize("override,message", [
    ("eval.every=-1", "override 'eval.every=-1': eval.every: expected a number >= 0, got -1"),
    ("eval.every=often", "override 'eval.every=often': eval.every: expected an integer, got 'often'"),
    ("eval.every=2.5", "override 'eval.every=2.5': eval.every: expected an integer, got 2.5"),
    ("eval.val_size=0", "override 'eval.val_size=0': eval.val_size: expected a number >= 1, got 0"),
    ("eval.val_size=true", "override 'eval.val_size=true': eval.val_size: expected an integer, got True"),
])
def test_validation_keys_are_typed_and_bad_values_name_the_key(override, message):
    with pytest.raises(ConfigError) as e:
        load_config(None, [override])
    assert str(e.value) == message


@pytest.mark.parametrize("override,message", [
    ("eval.every=-1", "override 'eval.every=-1': eval.every: expected a number >= 0, got -1"),
    ("eval.every=often", "override 'eval.every=often': eval.every: expected an integer, got 'often'"),
    ("eval.every=2.5", "override 'eval.every=2.5': eval.every: expected an integer, got 2.5"),
    ("eval.val_size=0", "override 'eval.val_size=0': eval.val_size: expected a number >= 1, got 0"),
    ("eval.val_size=true", "override 'eval.val_size=true': eval.val_size: expected an integer, got True"),
])
def test_validation_keys_are_typed_and_bad_values_name_the_key(override, message):
    with pytest.raises(ConfigError) as e:
        load_config(None, [override])
    assert str(e.value) == message


def test_validation_keys_load_and_are_checked_when_built_directly():
    from cotdistill.config import EvalConfig
    cfg = load_config(None, ["eval.every=25", "eval.val_size=32"])
    assert (cfg.eval.every, cfg.eval.val_size) == (25, 32)
    assert (RunConfig().eval.every, RunConfig().eval.val_size) == (0, 64)     # off by default
    with pytest.raises(ConfigError, match=r"^eval.every must be an integer >= 0, not -3$"):
        EvalConfig(every=-3)
    with pytest.raises(ConfigError, match=r"^eval.val_size must be an integer >= 1, not 0$"):
        EvalConfig(val_size=0)


def test_validation_off_keeps_the_hash_and_on_changes_it():
    import hashlib
    import json
    base = RunConfig()
    # The hash of a config that leaves validation off is what it was before the keys existed.
    d = base.to_dict()
    d.pop("name")
    d.pop("tracking", None)                  # outside every hash too
    del d["eval"]["every"], d["eval"]["val_size"]
    del d["train"]["distributed"], d["train"]["devices"]     # later keys at their default
    for section, key in HASH_NEUTRAL:                    # students-at-size keys, also at their defaults
        del d[section][key]
    d["identity"] = base.identity()
    d["train"]["precision"] = d["identity"]["precision"]
    assert base.hash() == hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]
    assert load_config(None, ["eval.val_size=8"]).hash() == base.hash()     # unused while every is 0
    on = load_config(None, ["eval.every=10"])
    assert on.hash() != base.hash() and on.settings_hash() != base.settings_hash()
    assert load_config(None, ["eval.every=10", "eval.val_size=8"]).hash() != on.hash()


# ------------------------------------------------------------------------------------------ issue 21

BEFORE_SCORED = ("eval.mode: score is refused for placement before: a `before` student answers after its own "
                 "rationale, so it is evaluated by generation; use eval.mode auto or generate")


def test_a_before_run_scored_is_refused_at_load_with_one_sentence(tmp_path):
    with pytest.raises(ConfigError) as e:
        load_config(None, ["placement=before", "eval.mode=score"])
    assert str(e.value) == f"override 'eval.mode=score': {BEFORE_SCORED}"
    path = tmp_path / "c.yaml"
    path.write_text("placement: before\neval: {mode: score}\n")
    with pytest.raises(ConfigError) as e:
        load_config(path)
    assert str(e.value) == f"{path}: {BEFORE_SCORED}"
    for mode, expected in (("auto", "generate"), ("generate", "generate")):
        assert load_config(None, ["placement=before", f"eval.mode={mode}"]).eval_mode == expected
    assert load_config(None, ["placement=after", "eval.mode=score"]).eval_mode == "score"


def test_a_stored_before_run_scored_still_loads_to_be_listed(tmp_path):
    """Configs of runs stored before the rule are rebuilt by from_dict (listing, show, outdated results):
    they load; running one is refused before any work (nothing written)."""
    from cotdistill.config import from_dict
    from cotdistill.run import run, saved_config
    stored = {**RunConfig().to_dict(), "placement": "before", "eval": {**RunConfig().eval.__dict__, "mode": "score"}}
    cfg = from_dict(RunConfig, stored)
    assert (cfg.placement, cfg.eval.mode) == ("before", "score") and cfg.settings_hash()
    import yaml
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "config.yaml").write_text(yaml.safe_dump({**stored, "config_hash": "abc", "results_version": 3}))
    assert saved_config(tmp_path / "old")[0] == cfg
    with pytest.raises(ConfigError, match=r"^eval.mode: score is refused for placement before"):
        cfg.check_protocol()
    with pytest.raises(ConfigError, match=r"^eval.mode: score is refused for placement before"):
        run(cfg, tmp_path / "new")
    assert not (tmp_path / "new").exists()


def test_loss_normalization_defaults_to_token_and_keeps_every_hash():
    from cotdistill.config import from_dict
    assert RunConfig().train.loss_normalization == "token"
    old = RunConfig().to_dict()
    del old["train"]["loss_normalization"]               # a config written before the key existed
    assert from_dict(RunConfig, old).settings_hash() == RunConfig().settings_hash()
    assert load_config(None, ["train.loss_normalization=token"]).hash("cpu") == RunConfig().hash("cpu")
    segment = load_config(None, ["train.loss_normalization=segment"])
    assert segment.train.loss_normalization == "segment" and segment.settings_hash() != RunConfig().settings_hash()
    with pytest.raises(ConfigError) as e:
        load_config(None, ["train.loss_normalization=example"])
    assert str(e.value) == ("override 'train.loss_normalization=example': train.loss_normalization: must be one "
                            "of token, segment, not 'example'")


def test_the_default_config_hashes_are_what_they_were(monkeypatch):
    """Golden values computed before issue 21's keys existed (at results version 4): the new keys move
    no run folder or job; only a results-version bump does."""
    import cotdistill
    assert RunConfig().settings_hash() == "235946549c7c"
    monkeypatch.setattr(cotdistill, "RESULTS_VERSION", 4)
    assert RunConfig().hash("cpu") == "b1c106ba13c9"


def test_zero_steps_is_the_untouched_student():
    cfg = load_config(None, ["train.steps=0"])
    assert cfg.train.steps == 0 and cfg.settings_hash() != RunConfig().settings_hash()
    from cotdistill.config import TrainConfig
    with pytest.raises(ConfigError, match=r"^train.steps must be >= 0, train.batch_size and train.grad_accum >= 1$"):
        TrainConfig(steps=-2)


def test_the_sentence_level_loads_and_refuses_key_tokens(tmp_path):
    cfg = load_config(None, ["perturbation.kind=shuffle", "perturbation.level=sentence"])
    assert cfg.perturbation.level == "sentence"
    assert load_config(None, ["perturbation.kind=mismatch", "perturbation.level=sentence"]).perturbation.kind == "mismatch"
    scores = tmp_path / "s.jsonl"
    scores.write_text("")
    with pytest.raises(ConfigError) as e:
        load_config(None, ["perturbation.kind=key_tokens", f"perturbation.scores_file={scores}",
                           "perturbation.level=sentence"])
    assert str(e.value) == ("override 'perturbation.level=sentence': perturbation.level: key_tokens needs one "
                            "score per unit, and attribution scores words or tokens, not sentences; use "
                            "perturbation.level word or token for key_tokens")
    with pytest.raises(ConfigError) as e:
        load_config(None, ["perturbation.level=paragraph"])
    assert str(e.value) == ("override 'perturbation.level=paragraph': perturbation.level: must be one of token, "
                            "word, sentence, not 'paragraph'")
# --- typed, ranged values; the blame of an error; bounded parsing (issue 22) ------------------

@pytest.mark.parametrize("override,message", [
    ("train.clip=.nan", "train.clip: expected a finite number, got nan"),
    ("train.clip=-.inf", "train.clip: expected a finite number, got -inf"),
    ("train.lr=.inf", "train.lr: expected a finite number, got inf"),
    ("train.lr=1e999", "train.lr: expected a finite number, got inf"),
    ("train.weight_decay=nan", "train.weight_decay: expected a finite number, got nan"),
    ("rationale_weight=.nan", "rationale_weight: expected a finite number, got nan"),
    ("train.min_lr_ratio=-5", "train.min_lr_ratio: expected a number >= 0, got -5"),
    ("train.min_lr_ratio=1.5", "train.min_lr_ratio: expected a number <= 1 (the share of the peak "
                               "learning rate the schedule ends at), got 1.5"),
    ("train.min_lr_ratio=.nan", "train.min_lr_ratio: expected a finite number, got nan"),
    ("train.lr=" + "9" * 400, "train.lr: expected a finite number, got an integer of 400 digits"),
    ("seed=-1", "seed: expected a number >= 0, got -1"),
    ("seed=4294967296", "seed: expected a number <= 4,294,967,295 (numpy's seed range), got 4,294,967,296"),
    ("data.sample_seed=-3", "data.sample_seed: expected a number >= 0, got -3"),
    ("eval.n_boot=1000000000000", "eval.n_boot: expected a number <= 1,000,000 (each resample keeps a "
                                  "mean in memory and the interval stops changing long before), got "
                                  "1,000,000,000,000"),
    ("student.max_length=1000000000", "student.max_length: expected a number <= 1,048,576"),
    ("student.vocab_size=1000000000", "student.vocab_size: expected a number <= 1,000,000"),
    ("eval.max_new_tokens=100000", "eval.max_new_tokens: expected a number <= 32,768, got 100,000"),
    ("train.batch_size=1000000", "train.batch_size: expected a number <= 65,536, got 1,000,000"),
    ("eval.batch_size=1000000", "eval.batch_size: expected a number <= 65,536, got 1,000,000"),
    ("data.options={x: .nan}", "data.options.x: expected a finite number, got nan"),
    ("data.options={x: [1, .inf]}", "data.options.x[1]: expected a finite number, got inf"),
    ("data.options={1: a}", "data.options: the key 1 is not text; write it in quotes"),
    ("data.options={x: 100000000000000000000}", "data.options.x: expected a number that fits 64 bits"),
    ('data.options={x: "a\\0b"}', "data.options.x: the text holds a NUL character (\\x00)"),
    ('name="a\\0b"', "name: the text holds a NUL character (\\x00)"),
    ("perturbation.params={p: .nan}", "perturbation.params.p: expected a finite number, got nan"),
    ("student.lora={alpha: .inf}", "student.lora.alpha: expected a finite number, got inf"),
])
def test_every_number_is_finite_and_in_its_documented_range(override, message):
    with pytest.raises(ConfigError) as e:
        load_config(None, [override])
    text = str(e.value)          # a long override is shortened in the message
    assert text.startswith("override " + repr(override)[:60]) and f": {message}" in text and "\n" not in text


@pytest.mark.parametrize("override,message", [
    ("train.lr=[1", "train.lr: not valid YAML: expected ',' or ']', but got '<stream end>' (line 1, column 3)"),
    ("train.lr=!!python/name:os.system", "train.lr: the YAML tag tag:yaml.org,2002:python/name:os.system is "
                                         "not allowed here"),
    ("seed=&a [*a]", "seed: an alias refers to its own anchor (a structure that contains itself)"),
    ("data.options={a: 1, a: 2}", "data.options: the key 'a' is written twice in one mapping"),
    ("train..lr=1", "'train..lr' is not a dotted key like train.lr"),
])
def test_a_bad_override_value_is_blamed_on_the_override(tmp_path, override, message):
    path = tmp_path / "c.yaml"
    path.write_text("seed: 1\n")
    with pytest.raises(ConfigError) as e:
        load_config(path, [override])
    assert str(e.value).startswith(f"override {override!r}: {message}")


def test_the_blame_goes_to_the_step_that_brought_the_error_in(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train: {clip: .nan}\n")
    # the file's own error, whatever valid overrides follow
    with pytest.raises(ConfigError, match=r"c.yaml: train.clip: expected a finite number, got nan$"):
        load_config(path, ["seed=2"])
    # an override that fixes the file's error and one that brings another
    with pytest.raises(ConfigError) as e:
        load_config(path, ["train.clip=1", "seed=3", "eval.n_boot=-1", "placement=after"])
    assert str(e.value) == "override 'eval.n_boot=-1': eval.n_boot: expected a number >= 1, got -1"
    # an error that only an override's combination with the file makes
    path.write_text("perturbation: {kind: none}\n")
    with pytest.raises(ConfigError) as e:
        load_config(path, ["seed=1", "perturbation.kind=key_tokens"])
    assert str(e.value).startswith("override 'perturbation.kind=key_tokens': perturbation.kind key_tokens "
                                   "needs perturbation.scores_file")


@pytest.mark.parametrize("content,message", [
    ("seed: 1\n".encode("utf-16"), "c.yaml: the file is UTF-16, not UTF-8; re-save it as UTF-8"),
    (b"seed: 1\nname: caf\xe9\n", "c.yaml: not UTF-8: byte 0xe9 on line 2; re-save the file as UTF-8"),
    (b"seed: 1\ntrain: {lr: 1}\nseed: 2\n", "c.yaml: the key 'seed' is written twice in one mapping "
                                            "(lines 1 and 3); keep one"),
    (b"train: {lr: 1, lr: 2}\n", "c.yaml: the key 'lr' is written twice in one mapping"),
    (b"a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\n" + b"#" * 10, None),   # a few aliases: fine
    (b"x: &x {y: *x}\n", "c.yaml: an alias refers to its own anchor"),
    (b"seed: " + b"[" * 100 + b"]" * 100 + b"\n", "c.yaml: nested deeper than 64 levels"),
    (b"seed: !!set {1}\n", "c.yaml: the YAML tag tag:yaml.org,2002:set is not allowed here"),
    (b"- seed\n", "c.yaml: the top level must be a mapping"),
    (b"#" * (1 << 20) + b"#", "c.yaml: larger than 1 MiB"),
    (b"1: x\n", "unknown key(s) 1; accepted in the top level"),
])
def test_bad_config_files_give_one_sentence_naming_the_file(tmp_path, content, message):
    path = tmp_path / "c.yaml"
    path.write_bytes(content)
    if message is None:
        with pytest.raises(ConfigError, match="unknown key"):     # parsed; its keys are not settings
            load_config(path)
        return
    with pytest.raises(ConfigError) as e:
        load_config(path)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_a_config_file_that_is_a_folder_or_unreadable_is_one_sentence(tmp_path):
    from cotdistill.config import read_config_file
    with pytest.raises(ConfigError, match="^matrix .*: is a folder, not a file$"):
        read_config_file(tmp_path, "matrix")
    with pytest.raises(ConfigError, match="^mapping .*nope.yaml: file not found$"):
        read_config_file(tmp_path / "nope.yaml", "mapping")


def test_shipped_configs_keep_their_settings_hashes():
    """Pinned before issue 22's stricter loading: valid configs resolve exactly as they did."""
    from tests.conftest import ROOT
    pinned = {"configs/cqa-after.yaml": "82f3f828e026", "configs/synthetic-demo.yaml": "4531b81222d5",
              "configs/paper/base.yaml": "3fb01b3ae2d6", "configs/svamp-before-smollm2.yaml": "8f8e2e724ba8"}
    assert {k: load_config(ROOT / k).settings_hash() for k in pinned} == pinned
