"""Compare's training curves: label loss and validation accuracy per arm, the mean over seeds with a
min–max band, against steps, epochs or training tokens (a radio). Runs are finished as a worker
finishes them (worker.state), with curve rows chosen so that every plotted number is known exactly."""

from types import SimpleNamespace

import pytest

from tests.app.apptest import chart, decode, finish_run, open_page, texts, use_fresh_database
from tests.worker.stack import BASE

STEPS = (2, 4)
LABEL_LOSS = {"none": {2: 2.0, 4: 1.0}, "after": {2: 1.5, 4: 0.5}}
VAL = {"none": {2: 0.25, 4: 0.5}, "after": {2: 0.5, 4: 0.75}}
ARM = "synthetic-count · tiny · {}"           # the arms differ in placement alone (cotdistill.stats.arms)


def rows(placement: str, seed: int) -> list[dict]:
    """Curve rows of one run: label loss and val accuracy shifted by the seed, tokens per placement."""
    out = []
    for step in STEPS:
        tokens = step * (300 if placement == "after" else 100) + 10 * seed
        out += [{"step": step, "name": "label_loss", "value": LABEL_LOSS[placement][step] + 0.25 * seed},
                {"step": step, "name": "loss", "value": LABEL_LOSS[placement][step] + 1.0},
                {"step": step, "name": "val_accuracy", "value": VAL[placement][step] - 0.125 * seed},
                {"step": step, "name": "tokens", "value": float(tokens)},
                {"step": step, "name": "epoch", "value": step / 4}]
    return out


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """Two arms (none, after) × two seeds, finished with 4 answers each and the rows above (no worker)."""
    from worker import api, state
    with pytest.MonkeyPatch.context() as mp:
        use_fresh_database(tmp_path_factory.mktemp("curves"), mp)
        api.submit_matrix({"name": "curves", "base": BASE, "factors": {"placement": ["none", "after"], "seed": [0, 1]}})
        runs = api.list_runs(experiment="curves")
        for r in runs:
            records = [{"example_id": f"e{i}", "gold": g, "predicted": "a", "correct": g == "a", "scores": {}}
                       for i, g in enumerate("abab")]
            finish_run(r["id"], {"accuracy": 0.5, "n": 4}, records)
            with api.session() as s:
                state.add_metrics(s, r["id"], rows(r["placement"], r["seed"]))
        yield SimpleNamespace(ids=[r["id"] for r in runs])


def lines(spec: dict) -> dict[str, dict]:
    """The mean line of each arm (name → trace); bands are the filled traces."""
    return {t["name"]: t for t in spec["data"] if not t.get("fill")}


def bands(spec: dict) -> dict[str, dict]:
    return {t["legendgroup"]: t for t in spec["data"] if t.get("fill") == "toself"}


def test_compare_shows_label_loss_and_validation_accuracy_per_arm_with_a_band(lab):
    at = open_page("screens/compare.py", experiment="curves")
    loss, val = chart(at, "curve_label_loss"), chart(at, "curve_val_accuracy")
    for spec, table, shift in ((loss, LABEL_LOSS, 0.25), (val, VAL, -0.125)):
        assert sorted(lines(spec)) == sorted(ARM.format(p) for p in ("none", "after"))     # one trace per arm
        for placement, by_step in table.items():
            line = lines(spec)[ARM.format(placement)]
            assert decode(line["x"]) == list(STEPS)
            assert decode(line["y"]) == pytest.approx([by_step[s] + shift / 2 for s in STEPS])   # mean of 2 seeds
            band = bands(spec)[ARM.format(placement)]           # up along the maxima, back along the minima
            assert decode(band["x"]) == list(STEPS) + list(STEPS[::-1])
            assert decode(band["y"]) == pytest.approx(
                [max(by_step[s], by_step[s] + shift) for s in STEPS] +
                [min(by_step[s], by_step[s] + shift) for s in STEPS[::-1]])
    assert loss["layout"]["xaxis"]["title"]["text"] == "step"
    assert "Label loss: cross-entropy of the label tokens alone" in texts(at)


@pytest.mark.parametrize("choice, title, expected", [
    ("training tokens", "training tokens seen", {"none": [205.0, 405.0], "after": [605.0, 1205.0]}),
    ("epochs", "epoch", {"none": [0.5, 1.0], "after": [0.5, 1.0]}),
])
def test_the_axis_radio_changes_the_x_values(lab, choice, title, expected):
    at = open_page("screens/compare.py", experiment="curves")
    at.radio(key="curve_x").set_value(choice).run()
    assert not at.exception, [e.value for e in at.exception]
    for key in ("curve_label_loss", "curve_val_accuracy", "loss_curves"):
        spec = chart(at, key)
        assert spec["layout"]["xaxis"]["title"]["text"] == title
        if key == "loss_curves":                  # run by run: each seed at its own x
            assert sorted(x for t in spec["data"] for x in decode(t["x"])) == pytest.approx(sorted(
                x + d for xs in expected.values() for x in xs for d in ((-5, 5) if choice != "epochs" else (0, 0))))
            continue
        for placement, xs in expected.items():
            assert decode(lines(spec)[ARM.format(placement)]["x"]) == pytest.approx(xs)   # mean over seeds
        table, shift = (LABEL_LOSS, 0.25) if key == "curve_label_loss" else (VAL, -0.125)
        assert decode(lines(spec)[ARM.format("none")]["y"]) == \
            pytest.approx([table["none"][s] + shift / 2 for s in STEPS])   # the same values, another x


def test_runs_without_validation_say_how_to_turn_it_on(tmp_path, monkeypatch):
    from worker import api, state
    use_fresh_database(tmp_path, monkeypatch)
    api.submit_matrix({"name": "plain", "base": BASE, "factors": {"seed": [0]}})
    [run] = api.list_runs(experiment="plain")
    records = [{"example_id": "e0", "gold": "a", "predicted": "a", "correct": True, "scores": {}}]
    finish_run(run["id"], {"accuracy": 1.0, "n": 1}, records)
    with api.session() as s:
        state.add_metrics(s, run["id"], [r for r in rows("after", 0) if r["name"] != "val_accuracy"])
    at = open_page("screens/compare.py", experiment="plain")
    assert "No validation accuracy recorded: launch with *Validation every N steps* above 0" in texts(at)
    assert decode(lines(chart(at, "curve_label_loss"))[ARM.format("after")]["y"]) == [1.5, 0.5]
    assert not bands(chart(at, "curve_label_loss"))                 # one seed: no band


def test_launch_sets_eval_every_and_leaves_it_out_when_off(tmp_path, monkeypatch):
    from tests.app.apptest import widget
    from worker import api
    use_fresh_database(tmp_path, monkeypatch)
    at = open_page()
    at.text_input(key="launch_name").input("off").run()
    widget(at.number_input, "Validation every N steps (0 = off)").set_value(0).run()   # the first run has it on
    widget(at.button, "Launch 9 new run(s)").click().run()
    configs = [api.run_detail(r["id"])["config"] for r in api.list_runs(experiment="off")]
    assert len(configs) == 9 and {(c["eval"]["every"], c["eval"]["val_size"]) for c in configs} == {(0, 64)}
    assert "every" not in base_eval(api, "off")         # off: the matrix is what it was before the key

    at = open_page()
    at.text_input(key="launch_name").input("on").run()
    widget(at.number_input, "Validation every N steps (0 = off)").set_value(20).run()
    widget(at.number_input, "Validation items").set_value(32).run()
    widget(at.button, "Launch 9 new run(s)").click().run()
    assert not at.exception, [e.value for e in at.exception]
    configs = [api.run_detail(r["id"])["config"] for r in api.list_runs(experiment="on")]
    assert len(configs) == 9 and {(c["eval"]["every"], c["eval"]["val_size"]) for c in configs} == {(20, 32)}
    assert base_eval(api, "on")["every"] == 20


def base_eval(api, name: str) -> dict:
    from sqlalchemy import select
    from worker.models import Experiment
    with api.session() as s:
        return s.scalar(select(Experiment.base).where(Experiment.name == name))["eval"]
