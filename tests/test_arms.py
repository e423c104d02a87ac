"""Arms: a config without its seed, labelled by the keys that differ (cotdistill/stats/arms.py)."""

import pytest

from cotdistill.stats.arms import arm_key, arm_labels, eval_protocol, is_untouched, settings
from cotdistill.config import load_config


def config(*overrides: str) -> dict:
    return load_config(None, list(overrides), defaults=True).to_dict()


def untouched(*overrides: str) -> dict:
    """A config with train.steps 0 (the student evaluated without fine-tuning), built as a dict: the
    config class of this branch may not accept 0 yet."""
    c = config(*overrides)
    c["train"]["steps"] = 0
    return c


def labels(*configs: dict) -> list[str]:
    found = arm_labels(configs)
    return [found[arm_key(c)] for c in configs]


def test_one_arm_is_everything_but_the_seed_name_and_trackers():
    base = config("placement=after")
    assert arm_key(config("placement=after", "seed=3")) == arm_key(base)
    assert arm_key({**base, "name": "other", "tracking": ["tensorboard"]}) == arm_key(base)
    for override in ("data.n_train=400", "rationale_weight=0.5", "student.size=small", "train.steps=300",
                     "train.lr=0.003", "data.options={teacher: llama}", "eval.scoring=text",
                     "perturbation.kind=mask"):
        assert arm_key(config("placement=after", override)) != arm_key(base), override


def test_an_older_config_missing_later_keys_is_the_same_arm():
    full = config("placement=after")
    old = {**full, "train": {k: v for k, v in full["train"].items() if k not in ("distributed", "devices", "packing")},
           "student": {k: v for k, v in full["student"].items() if k not in ("lora", "dtype")}}
    assert arm_key(old) == arm_key(full)
    assert "seed" not in settings(full) and "name" not in settings(full)


def test_runs_differing_only_in_n_train_are_two_arms_named_by_n_train():
    assert labels(config("placement=none", "data.n_train=40"), config("placement=after", "data.n_train=40"),
                  config("placement=after", "data.n_train=400"), config("placement=after", "data.n_train=400", "seed=2")) \
        == ["none · n_train=40", "after · n_train=40", "after · n_train=400", "after · n_train=400"]


def test_keys_equal_across_all_arms_are_not_shown():
    assert labels(config("placement=none", "data.n_train=40"), config("placement=after", "data.n_train=40")) == \
        ["none", "after"]
    assert labels(config("placement=after", "perturbation.kind=shuffle", "rationale_weight=0.5"),
                  config("placement=after", "perturbation.kind=shuffle"), config("placement=none")) == \
        ["after/shuffle · rationale_weight=0.5", "after/shuffle · rationale_weight=1.0", "none · rationale_weight=1.0"]


def test_perturbation_details_differing_within_a_kind_go_in_parentheses():
    assert labels(config("placement=after", "perturbation.kind=mask", "perturbation.params={p: 0.5}"),
                  config("placement=after", "perturbation.kind=mask", "perturbation.params={p: 0.3}"),
                  config("placement=after", "perturbation.kind=shuffle", "perturbation.level=word"),
                  config("placement=after", "perturbation.kind=shuffle"), config("placement=none")) == \
        ["after/mask(p=0.5)", "after/mask(p=0.3)", "after/shuffle(level=word)", "after/shuffle(level=token)", "none"]


def test_two_keys_with_the_same_last_name_are_named_in_full():
    assert labels(config("placement=after", "train.batch_size=8", "eval.batch_size=8"),
                  config("placement=after")) == \
        ["after · train.batch_size=8, eval.batch_size=8", "after · train.batch_size=16, eval.batch_size=32"]


def test_dataset_and_student_names_are_panels_not_labels():
    assert labels(config("placement=after", "data.name=cqa"), config("placement=after", "data.name=obqa"),
                  config("placement=none", "student.name=smollm2-135m")) == ["after", "after", "none"]
    found = arm_labels([config("data.name=cqa")], panel_keys=())
    assert list(found.values()) == ["after"]
    assert len(arm_labels([config("data.name=cqa"), config("data.name=obqa")], panel_keys=())) == 2
    assert set(arm_labels([config("data.name=cqa"), config("data.name=obqa")], panel_keys=()).values()) == \
        {"after · name=cqa", "after · name=obqa"}


def test_the_untouched_student_is_labelled_untouched_with_its_own_differing_keys():
    assert labels(untouched("placement=none"), config("placement=none"), config("placement=after")) == \
        ["untouched", "none", "after"]
    assert labels(untouched("data.n_train=40"), untouched("data.n_train=400"), config("data.n_train=400", "train.lr=0.01"),
                  config("data.n_train=400")) == \
        ["untouched · n_train=40", "untouched · n_train=400", "after · lr=0.01", "after · lr=0.001"]
    assert is_untouched(untouched()) and not is_untouched(config())


def test_distinct_arms_never_share_a_label():
    a = config("placement=after", "data.options={split_seed: 1}")
    b = config("placement=after", "data.options={split_seed: '1'}")         # prints the same, is another arm
    first, second = labels(a, b)
    assert first != second and first.startswith("after · split_seed=1 #") and second.startswith("after · split_seed=1 #")
    assert labels(config("placement=after", "data.options={teacher: llama}"), config("placement=after")) == \
        ["after · teacher=llama", "after"]
    a2, b2 = untouched("placement=none"), untouched("placement=after")     # differ only where untouched ignores
    first, second = labels(a2, b2)
    assert first != second and first.startswith("untouched #") and second.startswith("untouched #")


def test_eval_protocol_is_what_the_run_recorded_else_what_its_config_asks():
    assert eval_protocol(config("placement=before")) == "generate"
    assert eval_protocol(config("placement=after")) == "score"
    assert eval_protocol(config("placement=after", "eval.mode=generate")) == "generate"
    assert eval_protocol(config("placement=after"), {"eval_mode": "generate"}) == "generate"   # numeric data
    assert eval_protocol({"placement": "before"}, {}) == "generate"


@pytest.mark.parametrize("override", ["seed=5", "name=x"])
def test_labels_are_keyed_by_arm_key(override):
    a, b = config("placement=after"), config("placement=after", override)
    assert arm_labels([a, b]) == {arm_key(a): "after"}
