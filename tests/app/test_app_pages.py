"""The pages against a real job system: a worker subprocess trains tiny runs on a SQLite file (module
fixture), and each page is checked against what the jobs API says about the same rows."""

import re
from types import SimpleNamespace

import pandas as pd
import pytest
import yaml

from app.matrix import build_matrix, student_entries
from tests.app.apptest import (chart, chart_traces, decode, frame_with, html_bodies, open_page, rerun_fresh,
                               texts, widget)
from tests.worker.stack import JobStack

# What the Launch form is set to in these tests; the fixture's runs are the same matrix, so the
# form must find them all existing.
OPTIONS = {"n_train": 48, "n_test": 12, "n_items": 3, "n_objects": 12, "n_colours": 3}
PLACEMENTS = ["none", "after"]


def form_matrix(name: str, seeds=(0, 1), steps: int = 6) -> dict:
    return build_matrix(
        name, datasets=["synthetic-count"], placements=PLACEMENTS, perturbations=[{"kind": "none"}],
        students=student_entries(["tiny:tiny"], vocab_size=300, max_length=128), seeds=list(seeds),
        data={"n_train": 48, "n_test": 12, "options": OPTIONS},
        train={"steps": steps, "batch_size": 8, "lr": 0.003, "warmup_steps": 2, "log_every": 1},
        eval={"mode": "score"})


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """Four finished runs (placements none/after × seeds 0/1) and one failed run, by a real worker."""
    from worker import api
    with pytest.MonkeyPatch.context() as mp:
        stack = JobStack(tmp_path_factory.mktemp("lab"), mp)
        stack.start_worker("w1")
        try:
            ids = api.submit_matrix(form_matrix("lab"))["queued"]
            broken = api.submit_matrix({"name": "broken", "base": {"data": {"name": "no-such-dataset"}},
                                        "factors": {"seed": [0]}})["queued"]
            runs = stack.wait(ids + broken, ("succeeded", "failed"), timeout=300)
            assert [runs[i]["status"] for i in ids] == ["succeeded"] * 4, stack.logs()[-3000:]
            yield SimpleNamespace(stack=stack, ids=ids, broken=broken[0])
        finally:
            stack.close()


# ------------------------------------------------------------------------------------------ launch

def fill_launch_form(at, name: str, seeds: str = "0, 1") -> None:
    at.text_input(key="launch_name").input(name)
    at.text_area(key="loader_options").input(yaml.safe_dump(OPTIONS))
    for label, value in [("Training examples (0 = all)", 48), ("Test examples (0 = all)", 12),
                         ("Tiny student's vocabulary", 300), ("Max sequence length (tokens)", 128),
                         ("Training steps", 6), ("Batch size", 8), ("Learning rate", 0.003), ("Warmup steps", 2),
                         ("Validation every N steps (0 = off)", 0)]:
        widget(at.number_input, label).set_value(value)
    widget(at.selectbox, "Evaluation").set_value("score")
    widget(at.multiselect, "Perturbations").set_value(["none"])
    widget(at.text_input, "Seeds").input(seeds)
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]


def plan(at) -> dict:
    return {m.label: int(m.value) for m in at.metric}


def test_launch_page_counts_existing_runs_previews_and_launches(lab):
    from worker import api
    at = open_page()
    fill_launch_form(at, "lab")
    assert plan(at) == {"Runs in the matrix": 4, "New runs": 0, "Reused": 0, "In this experiment": 4}
    assert "Experiment 'lab' holds all 4 run(s): 0 queued or running, 4 finished. Nothing new to launch." in texts(at)
    assert widget(at.button, "Nothing new to launch").disabled

    fill_launch_form(at, "lab-again", seeds="0, 1, 2")
    assert plan(at) == {"Runs in the matrix": 6, "New runs": 2, "Reused": 4, "In this experiment": 0}
    # both new cells' arms ran on the fixture's worker: their speed is known
    assert "Expected duration: about " in texts(at) and "(2 new runs, on 1 worker)." in texts(at)
    assert "Launching queues 2 new run(s), 4 reused from identical finished runs." in texts(at)
    fill_launch_form(at, "lab-again")
    assert plan(at) == {"Runs in the matrix": 4, "New runs": 0, "Reused": 4, "In this experiment": 0}

    at.toggle(key="show_preview").set_value(True).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    heads = [m.value for m in at.markdown if " tokens, " in m.value]
    assert [h.split("**")[1] for h in heads] == ["none · none", "after · none"]
    supervised = [int(h.split(", ")[1].split()[0]) for h in heads]
    assert supervised[1] > supervised[0] > 0          # `after` also supervises the rationale
    assert sum("token-heatmap" in body for body in html_bodies(at)) == 2
    shares = [float(c.value.split("**")[1]) for c in at.caption if c.value.startswith("Label share of the loss")]
    assert len(shares) == 2 and shares[0] == 1.0 and 0 < shares[1] < 1      # token normalisation: none, after

    widget(at.button, "Launch: reuse 4 finished run(s)").click().run()
    assert "Launched experiment 'lab-again': 0 run(s) queued, 4 reused" in texts(at)
    assert plan(at) == {"Runs in the matrix": 4, "New runs": 0, "Reused": 0, "In this experiment": 4}
    links = {link.proto.label: link.proto for link in at.get("page_link")}
    assert links["Watch its runs"].query_string == "experiment=lab-again"
    assert links["Compare its arms"].query_string == "experiment=lab-again"
    assert sorted(r["id"] for r in api.list_runs(experiment="lab-again")) == sorted(lab.ids)


def test_launch_page_plans_memory_per_cell_and_gpu_hours(lab):
    from worker import api
    at = open_page()
    fill_launch_form(at, "lab")
    assert not any("memory (GiB)" in d.value.columns for d in at.dataframe)     # asked for, not by default
    at.toggle(key="show_estimate").set_value(True).run()
    expected = api.estimate_matrix(form_matrix("lab"), gpu_gib=80)
    frame = next(d.value for d in at.dataframe if "memory (GiB)" in d.value.columns)
    assert list(frame["memory (GiB)"]) == pytest.approx([c["total_gib"] for c in expected["cells"]])
    assert list(frame["fits"]) == [True] * 4 and list(frame["parameters (M)"]) == pytest.approx(
        [c["parameters"] / 1e6 for c in expected["cells"]])
    # the fixture's runs ran on CPU: nothing measured for a CUDA plan until a figure is given
    assert "fit a 80 GiB GPU; training GPU-hours: unknown (give a tokens/s figure)" in texts(at)
    widget(at.number_input, "Training tokens/s per GPU (0 = measured by earlier runs)").set_value(1000.0).run()
    hours = sum(c["tokens"] for c in expected["cells"]) / 1000 / 3600
    assert f"4 of 4 cell(s) fit a 80 GiB GPU; training GPU-hours: {hours:.2f}." in texts(at)
    widget(at.number_input, "GPU memory per cell (GiB)").set_value(1.0).run()
    assert not at.exception and "cell(s) fit a 1 GiB GPU" in texts(at)
    widget(at.number_input, "LoRA rank (0 = full fine-tune)").set_value(4).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    lora = next(d.value for d in at.dataframe if "memory (GiB)" in d.value.columns)
    assert all(lora["trained (M)"] < frame["trained (M)"]) and list(lora["parameters (M)"]) == list(frame["parameters (M)"])


def test_launch_starts_from_an_existing_experiment(lab):
    at = open_page(**{"from": "lab"})
    assert not at.error, [e.value for e in at.error]
    assert at.selectbox(key="launch_from").value == "lab"
    assert at.text_input(key="launch_name").value == "lab-2"
    assert widget(at.multiselect, "Placements").value == PLACEMENTS
    assert widget(at.text_input, "Seeds").value == "0, 1"
    assert widget(at.number_input, "Training steps").value == 6
    assert widget(at.number_input, "Test examples (0 = all)").value == 12
    assert widget(at.selectbox, "Evaluation").value == "score"
    assert yaml.safe_load(at.text_area(key="loader_options").value) == OPTIONS
    # the same choices make the same cells: all of them exist already
    assert plan(at) == {"Runs in the matrix": 4, "New runs": 0, "Reused": 4, "In this experiment": 0}

    widget(at.text_input, "Seeds").input("0, 1, 2").run()            # edit, then relaunch
    assert plan(at) == {"Runs in the matrix": 6, "New runs": 2, "Reused": 4, "In this experiment": 0}
    assert widget(at.text_input, "Seeds").value == "0, 1, 2"         # the edit survives the rerun
    at.selectbox(key="launch_from").set_value("(a new experiment)").run()      # back to the defaults
    from worker import api
    assert widget(at.number_input, "Training steps").value == api.launch_options()["defaults"]["train"]["steps"]
    assert "from" not in at.query_params


# ------------------------------------------------------------------------------------------ runs

def test_runs_page_shows_every_cell_with_progress_loss_and_accuracy(lab):
    from worker import api
    at = open_page("screens/runs.py", experiment="lab")
    frame = at.dataframe[0].value.set_index("run")
    assert sorted(frame.index) == sorted(lab.ids)
    assert "**4 run(s):** 4 succeeded" in texts(at)
    for run in api.list_runs(experiment="lab"):
        line = frame.loc[run["id"]]
        assert line["status"] == "succeeded" and line["progress"] == 1.0 and line["phase"] == "done"
        assert list(line["loss"]) == [p["value"] for p in api.curves([run["id"]])]
        assert len(line["loss"]) == 6                              # log_every 1 over 6 steps
        assert line["accuracy"] == pytest.approx(run["accuracy"])
        assert line["tokens/s"] > 0 and line["worker"] == run["worker"] != "" and line["attempt"] == 0
        raised = [name for flag, name in (("collapsed", "constant answer"), ("below_baseline", "below baseline"),
                                          ("high_unparsed", "unparsed")) if run["summary"].get(flag)]
        assert (line["warning"] == "⚠ " + ", ".join(raised)) if raised else pd.isna(line["warning"])   # drawn as —
        assert line["unparsed"] == run["summary"]["unparsed_rate"] == 0.0     # score mode always answers
        assert re.fullmatch(r"\d+s|\d+m \d\ds", line["ran for"]) and re.fullmatch(r"\d+s|\d+m \d\ds", line["queued for"])
        assert pd.isna(line["waiting for"]) and pd.isna(line["ETA"])          # finished: drawn as —
    assert "Workers: " in texts(at) and "(cpu, gpu)" in texts(at)        # the fixture's worker, both queues


@pytest.mark.parametrize("page", ["screens/runs.py", "screens/compare.py", "screens/examples.py",
                                  "screens/datasets.py"])
def test_every_table_draws_missing_cells_as_a_dash(lab, page):
    at = open_page(page, experiment="lab")
    assert at.dataframe and {d.proto.placeholder for d in at.dataframe} == {"—"}


# ------------------------------------------------------------------------------------------ compare

def arm_at(traces: list[dict], arm: dict) -> list[dict]:
    """The traces drawn at an arm's (placement, perturbation) position."""
    return [t for t in traces if decode(t["x"][0])[0] == arm["placement"] and decode(t["x"][1])[0] == "none"]


def test_compare_page_draws_means_intervals_and_seeds(lab):
    from worker import api
    at = open_page("screens/compare.py", experiment="lab")
    arms = api.compare(lab.ids)
    assert len(arms) == 2
    spec = chart(at, "accuracy_bars")
    bars, scatters = chart_traces(spec, "bar"), chart_traces(spec, "scatter")
    for arm in arms:
        [bar] = arm_at(bars, arm)
        assert decode(bar["y"]) == pytest.approx([arm["mean"]])
        assert decode(bar["error_y"]["array"]) == pytest.approx([arm["high"] - arm["mean"]])
        assert decode(bar["error_y"]["arrayminus"]) == pytest.approx([arm["mean"] - arm["low"]])
        [dots] = [t for t in arm_at(scatters, arm) if t["mode"] == "markers"]
        assert decode(dots["y"]) == pytest.approx(arm["accuracies"])
        markers = [t for t in arm_at(scatters, arm) if t["mode"] == "text"]
        assert len(markers) == int(any(arm["collapsed"]))
    assert ("not distinguishable from a constant answer" in texts(at)) == any(any(a["collapsed"]) for a in arms)

    table = at.dataframe[0].value.set_index("arm")
    for arm in arms:
        assert table.loc[arm["arm"], "mean"] == pytest.approx(arm["mean"])
        assert table.loc[arm["arm"], "n_seeds"] == 2
        assert table.loc[arm["arm"], "evaluated"] == "scoring (letter)"
    assert [b.label for b in at.get("download_button")] == ["Download as CSV", "Download report"]
    # Every arm against the label-only arm: the procedure-level verdict over the 2 seed pairs.
    found = api.versus_reference(lab.ids, None)
    assert found["reference"] == "none" and widget(at.selectbox, "Reference arm").value == found["reference_key"]
    [after] = [r for r in found["rows"] if r["arm"] == "after"]
    verdicts = frame_with(at, "Δ vs ref.", "Holm p").set_index("arm")
    assert list(verdicts.index) == ["after"] and verdicts.loc["after", "seeds"] == 2
    assert verdicts.loc["after", "verdict"] == after["verdict"] and verdicts.loc["after", "Δ vs ref."] == round(after["diff"], 4)

    curves = chart(at, "loss_curves")["data"]
    assert sorted(decode(v) for t in curves for v in decode(t["y"])) == \
        pytest.approx(sorted(p["value"] for p in api.curves(lab.ids)))


def test_compare_page_pairs_two_arms(lab):
    from worker import api
    at = open_page("screens/compare.py", experiment="lab")
    arms = api.compare(lab.ids)                       # sorted: after, then none
    result = api.paired(arms[-1]["runs"], arms[0]["runs"])          # the page's default: A last, B first
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["A − B accuracy"] == f"{result['diff']:+.3f}"
    assert metrics["items (seed pairs)"] == "12 (2)"             # 12 test items, each run on 2 seeds
    assert metrics["p over seeds"] == ("–" if result["p_value"] is None else f"{result['p_value']:.3g}")
    assert list(frame_with(at, "seed", "McNemar p")["seed"]) == result["seeds"]
    warned = any("Both arms answer a constant label" in e.value for e in at.error)
    assert warned == bool(result["basis"]["warning"])
    if result["examples"]:
        fixes = at.dataframe[3].value          # after the numbers, the verdicts and the per-seed tests
        assert sorted(fixes["example"]) == sorted(e["example_id"] for e in result["examples"] if e["fixes"])
    else:
        assert "The two arms agree on every item." in texts(at)


# ------------------------------------------------------------------------------------------ examples

def test_examples_page_shows_predictions_filters_and_the_trained_sequence(lab):
    from worker import api
    at = open_page("screens/examples.py", experiment="lab")
    first_seeds = sorted(r["id"] for r in api.list_runs(experiment="lab") if r["seed"] == 0)
    assert sorted(at.multiselect(key="examples_runs").value) == first_seeds        # one run per arm at first
    at.multiselect(key="examples_runs").set_value(sorted(lab.ids)).run()
    preds = {(p["run_id"], p["example_id"]): p for p in api.predictions(lab.ids)}
    table = at.dataframe[0].value.set_index("example")
    assert len(table) == 12
    run_columns = [c for c in table.columns if c.startswith("#")]
    assert len(run_columns) == 4
    for column, run_id in zip(run_columns, sorted(lab.ids)):
        assert column.startswith(f"#{run_id} ")
        for example_id, cell in table[column].items():
            p = preds[(run_id, example_id)]
            assert cell == f"{'✓' if p['correct'] else '✗'} {p['predicted']}"

    wrong_everywhere = {ex for (_, ex) in preds if not any(preds[(r, ex)]["correct"] for r in lab.ids)}
    widget(at.selectbox, "Outcome").set_value("wrong in every run").run()
    assert f"**{len(wrong_everywhere)} of 12 evaluated example(s)** match." in texts(at)

    a, b = sorted(lab.ids)[:2]
    differ = {ex for (r, ex) in preds if r == a and preds[(a, ex)]["correct"] != preds[(b, ex)]["correct"]}
    widget(at.selectbox, "Outcome").set_value("the two runs disagree").run()
    assert f"**{len(differ)} of 12 evaluated example(s)** match." in texts(at)

    widget(at.selectbox, "Outcome").set_value("all examples").run()
    widget(at.selectbox, "Teacher").set_value("teacher incorrect").run()   # the synthetic teacher is always right
    assert "**0 of 12 evaluated example(s)** match." in texts(at)
    widget(at.selectbox, "Teacher").set_value("any").run()

    example = api.dataset_examples("synthetic-count", "test", options=OPTIONS, limit=1)[0]
    at.selectbox(key="example_pick").set_value(example["id"]).run()
    assert f"**Gold label:** `{example['label']}`" in texts(at)
    at.toggle(key="examples_preview").set_value(True).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    heatmaps = [body for body in html_bodies(at) if "token-heatmap" in body]
    assert len(heatmaps) == 4
    after_runs = [r for r in api.list_runs(experiment="lab") if r["placement"] == "after"]
    first_fact = example["rationale"].split(".")[0].split()[-1]           # e.g. 'red' of "moku is red."
    shaded = [body for body in heatmaps if f">{' ' + first_fact}<" in body or f">{first_fact}<" in body]
    assert len(shaded) >= len(after_runs) == 2


# ------------------------------------------------------------------------------------------ actions

def test_failed_run_error_is_readable_and_retry_requeues_it(lab):
    from worker import api
    at = open_page("screens/runs.py", experiment="broken")
    [expander] = at.expander
    assert expander.label.startswith(f"Run #{lab.broken} failed: ") and "no-such-dataset" in expander.label
    assert "Traceback" in at.code[0].value

    widget(at.button, "Retry run").click().run()
    assert f"Run #{lab.broken} queued again (attempt 1)" in texts(at)
    lab.stack.wait([lab.broken], "failed", until=lambda r: r["status"] == "failed" and r["attempt"] == 1)

    rerun_fresh(at)
    widget(at.button, "Re-queue 1 failed/cancelled cell(s)").click().run()
    assert f"Re-queued run(s) {lab.broken}" in texts(at)
    assert api.run_detail(lab.broken)["attempt"] == 2


def test_cancel_a_running_run(lab):
    from worker import api
    [long_run] = api.submit_matrix(form_matrix("long", seeds=[7], steps=5000))["queued"][:1]
    lab.stack.wait([long_run], (), until=lambda r: r["status"] == "running" and r["step"] >= 1, timeout=120)
    at = open_page("screens/runs.py", experiment="long")
    at.selectbox(key="action_run").set_value(long_run).run()
    assert "train " in at.dataframe[0].value.set_index("run").loc[long_run, "phase"]
    # measured on the fixture's finished runs (same dataset, student and placements): 2 runs, 1 worker
    assert "Expected to finish in about " in texts(at) and "(2 runs left, 1 running, on 1 worker)." in texts(at)
    assert at.dataframe[0].value.set_index("run").loc[long_run + 1, "waiting for"] == "behind 1 run"
    widget(at.button, "Cancel run").click().run()
    assert f"Run #{long_run}: running (it stops at its next step)" in texts(at)
    lab.stack.wait([long_run], "cancelled", timeout=60)
