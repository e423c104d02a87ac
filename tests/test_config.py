import pytest

from cotdistill.config import ConfigError, RunConfig, load_config


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
