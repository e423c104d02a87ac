"""The Launch page as a newcomer first sees it (issue 24): three lines on what the tool does and what
the default experiment will show, the plan's summary and the Launch button before the form in the
element tree (so at the top of the page), what the plan says once launched, and presets (the CPU preset
for real data, and the testbed's when it has any) that fill the form with exactly their runs."""

from tests.app.apptest import open_page, texts, use_fresh_database, widget

FORM = ("Start from", "Experiment name", "Datasets", "Placements", "Seeds", "Training steps")


def in_order(at) -> list:
    """Every node of the page's main area, depth first, in the order the page draws them."""
    nodes = []

    def walk(node):
        nodes.append(node)
        for i in sorted(getattr(node, "children", None) or {}):
            walk(node.children[i])
    walk(at.main)
    return nodes


def position(at, element) -> int:
    return next(i for i, node in enumerate(in_order(at)) if node is element)


def first_form_widget(at) -> int:
    widgets = [w for kind in ("selectbox", "text_input", "multiselect", "number_input") for w in getattr(at, kind)
               if w.label in FORM]
    return min(position(at, w) for w in widgets)


def plan(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_the_landing_page_says_what_to_do_and_puts_the_plan_and_launch_first(tmp_path, monkeypatch):
    from worker import api
    use_fresh_database(tmp_path, monkeypatch)
    at = open_page()
    lines = at.markdown[0].value.split("  \n")
    first = api.launch_options()["first_run"]
    assert len(lines) == 3 and lines[0].startswith("**cotdistill** fine-tunes small students")
    assert lines[1] == ("**The default experiment**, set in the form below: `label-only`, `after`, `after · filler`, "
                        "3 seeds each, a tiny student trained from scratch on `synthetic-count`.")
    assert lines[2] == "**It should show:** " + "; ".join(first["claims"]) + "."
    assert "`after` (the rationale after the label) beats label-only across seeds" in lines[2]
    assert plan(at) == {"Runs in the matrix": "9", "New runs": "9", "Reused": "0", "In this experiment": "0"}
    launch = widget(at.button, "Launch 9 new run(s)")
    details = next(s for s in at.subheader if s.value == "Details")
    assert position(at, launch) < position(at, details) < first_form_widget(at)
    assert all(position(at, m) < position(at, details) for m in at.metric)
    summary = next(m for m in at.markdown if m.value.startswith("Launching queues 9 new run(s)."))
    assert position(at, summary) < position(at, details)


def test_after_launch_the_plan_says_what_was_queued_and_success_is_at_the_top(tmp_path, monkeypatch):
    from worker import api
    use_fresh_database(tmp_path, monkeypatch)
    at = open_page()
    at.text_input(key="launch_name").input("first").run()
    widget(at.button, "Launch 9 new run(s)").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert len(api.list_runs(experiment="first")) == 9
    [success] = at.success
    assert success.value.startswith("Launched experiment 'first': 9 run(s) queued, 0 reused")
    details = next(s for s in at.subheader if s.value == "Details")
    assert position(at, success) < position(at, details)
    assert plan(at) == {"Runs in the matrix": "9", "New runs": "0", "Reused": "0", "In this experiment": "9"}
    said = next(m.value for m in at.markdown if m.value.startswith("Queued "))
    assert said.startswith("Queued 9 run(s) of experiment 'first'.")
    assert "Already done" not in texts(at) and "Launching queues" not in texts(at)
    assert [b.label for b in at.button if b.label.startswith("Launch")] == []        # no "Launch 0 new run(s)"
    nothing = widget(at.button, "Nothing new to launch")
    assert nothing.disabled and nothing.proto.type == "secondary"
    links = {link.proto.label: link.proto for link in at.get("page_link")}
    assert links["Watch its runs"].query_string == "experiment=first"
    assert position(at, at.get("page_link")[0]) < position(at, details)


def test_the_cpu_preset_fills_the_form_with_exactly_its_runs(tmp_path, monkeypatch):
    from cotdistill.studies.presets import preset_matrix
    from worker import api
    from worker.experiments import Matrix, expand
    use_fresh_database(tmp_path, monkeypatch)
    at = open_page()
    button = at.button(key="preset_cqa-smollm2-cpu")
    assert button.label == "CommonsenseQA × SmolLM2-135M on a CPU · ≤ 15 min a run, 20 min on 2 cores"
    button.click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.selectbox(key="launch_from").value == "preset: CommonsenseQA × SmolLM2-135M on a CPU"
    assert at.text_input(key="launch_name").value == "cqa-smollm2-cpu"
    assert plan(at)["Runs in the matrix"] == "3" and widget(at.number_input, "Test examples (0 = all)").value == 300
    widget(at.button, "Launch 3 new run(s)").click().run()
    m = preset_matrix("cqa-smollm2-cpu")
    expected = sorted(cfg.hash() for _, cfg in expand(Matrix(m["name"], m["base"], m["factors"])))
    assert sorted(r["config_hash"] for r in api.list_runs(experiment="cqa-smollm2-cpu")) == expected


def test_the_testbeds_presets_show_when_it_has_some(tmp_path, monkeypatch):
    """cotdistill.studies.testbed may offer presets for the other claims, in the first experiment's shape
    (base, placements, perturbations, seeds) or as a matrix; without any, the page shows the others."""
    import copy

    from cotdistill.studies import testbed
    use_fresh_database(tmp_path, monkeypatch)
    shuffled = {**copy.deepcopy(testbed.FIRST_RUN), "perturbations": [{"kind": "none"}, {"kind": "shuffle"}],
                "title": "Claim 2: a shuffled rationale", "expected_s": 290, "shows": "after · shuffle keeps the gain"}
    monkeypatch.setattr(testbed, "PRESETS", {"claim-2": shuffled}, raising=False)
    at = open_page()
    labels = [b.label for b in at.button if b.key and b.key.startswith("preset_")]
    assert labels[0] == "Claim 2: a shuffled rationale · about 5 min" and len(labels) == 2
    at.button(key="preset_claim-2").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert widget(at.multiselect, "Perturbations").value == ["none", "shuffle"]
    assert plan(at)["Runs in the matrix"] == "9"
    monkeypatch.setattr(testbed, "PRESETS", {}, raising=False)
    import streamlit as st
    st.cache_data.clear()
    assert [b.key for b in open_page().button if b.key and b.key.startswith("preset_")] == ["preset_cqa-smollm2-cpu"]


def test_a_calibration_of_this_machine_gives_the_duration_and_the_disk_before_any_run(tmp_path, monkeypatch):
    """No finished run: with this machine's calibration of each arm (injected, as a worker files it)
    the summary says how long the runs take and the disk each one needs."""
    import streamlit as st

    from worker import api
    from worker.api.estimate import store_calibration
    use_fresh_database(tmp_path, monkeypatch)
    at = open_page()
    at.text_input(key="launch_name").input("probe").run()
    widget(at.button, "Launch 9 new run(s)").click().run()            # the form's own configs, queued
    for run in api.list_runs(experiment="probe"):
        store_calibration(api.run_detail(run["id"])["config"],
                          {"start_s": 1.0, "step_s": 0.1, "eval_s_per_item": 0.01, "n_test": 300,
                           "parameters": 500_000, "trainable": 500_000, "version": 1})
    st.cache_data.clear()
    at.text_input(key="launch_name").input("second").run()
    said = next(m.value for m in at.markdown if m.value.startswith("Launching queues 9 new run(s)."))
    # per run: 1 + 200 steps x 0.1 + 4 validations x 64 x 0.01 + 300 x 0.01 = 26.56 s; 9 runs, no worker
    assert "Expected duration: about 3m 59s of work for one worker (9 new runs), but no worker is taking runs now." \
        in said
    # 500,000 float32 weights (2 MB) + AdamW state (4 MB) per checkpoint, two kept while it trains
    assert "Disk per run: up to 12 MB of checkpoints while it trains (deleted when it ends), 2.0 MB for the model" in said
