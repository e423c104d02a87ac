"""The Launch form's issue-21 choices: the untouched student as a baseline arm (train.steps 0, one run
per dataset × student × seed and evaluation protocol), the loss normalisation, the sentence level; and a
relaunch that keeps them."""

from tests.app.apptest import open_page, use_fresh_database, widget

BASELINE = "Add the untouched student (no fine-tuning) as a baseline arm"


def plan(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_the_baseline_checkbox_adds_one_untouched_run_per_protocol_and_seed(tmp_path, monkeypatch):
    from worker import api
    use_fresh_database(tmp_path, monkeypatch)
    at = open_page()
    # The first experiment: placements none and after, perturbations none and filler, seeds 0, 1, 2: 9 runs.
    assert plan(at) == {"Runs in the matrix": "9", "New runs": "9", "Reused": "0", "In this experiment": "0"}
    widget(at.checkbox, BASELINE).check().run()
    # + the untouched student per seed: none/after × none/filler are one run (scored alike): 3 more.
    assert plan(at) == {"Runs in the matrix": "12", "New runs": "12", "Reused": "0", "In this experiment": "0"}
    widget(at.multiselect, "Placements").set_value(["none", "before", "after"]).run()
    # trained: none 3 + before 6 + after 6; untouched: none 3 + before 3 (generated: its own protocol)
    assert plan(at) == {"Runs in the matrix": "21", "New runs": "21", "Reused": "0", "In this experiment": "0"}
    at.text_input(key="launch_name").input("with-baseline").run()
    widget(at.button, "Launch 21 new run(s)").click().run()
    assert not at.exception, [e.value for e in at.exception]
    configs = [api.run_detail(r["id"])["config"] for r in api.list_runs(experiment="with-baseline")]
    untouched = sorted((c["placement"], c["perturbation"]["kind"], c["seed"]) for c in configs if c["train"]["steps"] == 0)
    assert untouched == sorted((p, "none", s) for p in ("none", "before") for s in (0, 1, 2))
    assert sum(c["train"]["steps"] > 0 for c in configs) == 15

    at = open_page(**{"from": "with-baseline"})                 # relaunch: the checkbox comes back checked
    assert widget(at.checkbox, BASELINE).value is True
    assert widget(at.number_input, "Training steps").value > 0
    assert plan(at)["Runs in the matrix"] == "21"                # the same matrix, under a new name


def test_loss_normalisation_and_the_sentence_level_reach_the_matrix(tmp_path, monkeypatch):
    from worker import api
    use_fresh_database(tmp_path, monkeypatch)
    at = open_page()
    widget(at.selectbox, "Loss normalisation").set_value("segment").run()
    widget(at.multiselect, "Perturbations").set_value(["none", "shuffle"]).run()
    level = at.selectbox(key="shuffle_level")
    assert level.options == ["token", "word", "sentence"]
    level.set_value("sentence").run()
    at.text_input(key="launch_name").input("segment").run()
    widget(at.button, "Launch 9 new run(s)").click().run()
    assert not at.exception, [e.value for e in at.exception]
    configs = [api.run_detail(r["id"])["config"] for r in api.list_runs(experiment="segment")]
    assert {c["train"]["loss_normalization"] for c in configs} == {"segment"}
    assert {c["perturbation"]["level"] for c in configs if c["perturbation"]["kind"] == "shuffle"} == {"sentence"}
    widget(at.multiselect, "Perturbations").set_value(["key_tokens"]).run()
    assert at.selectbox(key="key_tokens_level").options == ["token", "word"]      # scores come per word or token


def test_form_values_read_the_baseline_factor():
    from app.matrix import build_matrix, form_values
    m = build_matrix("b", datasets=["synthetic-count"], students=[{"name": "tiny"}], placements=["after"],
                     perturbations=[{"kind": "none"}], seeds=[0], train={"steps": 50}, baseline=True)
    assert m["factors"]["train.steps"] == [50, 0] and m["base"]["train"]["steps"] == 50
    values = form_values(m)
    assert (values["baseline"], values["steps"], values["ignored"]) == (True, 50, [])
    other = {**m, "factors": {**m["factors"], "train.steps": [50, 100]}}          # not the form's: kept as is
    values = form_values(other)
    assert (values["baseline"], values["ignored"]) == (False, ["train.steps"])
    assert "train.steps" not in build_matrix("c", datasets=["x"], students=[{}], placements=["none"],
                                             perturbations=[{"kind": "none"}], seeds=[0])["factors"]
