"""Every page on an empty database says what to do next instead of drawing an empty chart; the
Datasets page lists what can be read (and why not) and searches examples; the preview says clearly
when no worker answers."""

import pandas as pd
import pytest

from cotdistill.studies.testbed import FIRST_RUN_STEPS
from tests.app.apptest import open_page, texts, widget


@pytest.fixture
def empty(tmp_path, monkeypatch):
    monkeypatch.setenv("COTDISTILL_HOME", str(tmp_path))
    monkeypatch.delenv("COTDISTILL_DATABASE_URL", raising=False)
    monkeypatch.delenv("COTDISTILL_BROKER_URL", raising=False)
    return tmp_path


@pytest.mark.parametrize("page, says", [
    ("screens/runs.py", "No runs yet. Launch an experiment"),
    ("screens/compare.py", "Nothing to compare yet"),
    ("screens/examples.py", "No experiments yet"),
    ("screens/teacher.py", "No generation job yet: fill in the form above"),
    ("screens/key_tokens.py", ("No finished run with placement `before` yet", "No attribution job yet",
                               "No attribution yet: compute one above",
                               "No key-token study yet: queue one from a finished attribution")),
])
def test_empty_pages_explain_what_to_do(empty, page, says):
    at = open_page(page)
    for said in (says,) if isinstance(says, str) else says:
        assert said in "\n".join(i.value for i in at.info)
    assert not at.get("plotly_chart") and not at.dataframe


def test_launch_page_plans_its_default_matrix(empty):
    at = open_page()
    metrics = {m.label: m.value for m in at.metric}
    # Defaults: the testbed (synthetic-count, 3 items, 2 colours), the tiny student, placements none
    # and after, perturbations none and filler, 3 seeds: 12 cells, label-only's filler cells are its
    # plain ones, so 9 runs.
    assert metrics == {"Runs in the matrix": "9", "New runs": "9", "Reused": "0", "In this experiment": "0"}
    assert widget(at.button, "Launch 9 new run(s)").disabled is False
    assert any("12 cells, 3 of them identical" in c.value for c in at.caption)
    options = at.text_area(key="loader_options").value
    assert "n_items: 3" in options and "n_colours: 2" in options
    assert at.number_input[0] is not None and widget(at.number_input, "Training steps").value == FIRST_RUN_STEPS
    # nothing has run: a worker is asked to time this machine (none is up here, so it stays asked)
    assert ("Expected duration: a worker is timing a few training steps and test questions of "
            "synthetic-count · tiny · after; synthetic-count · tiny · none on this machine" in texts(at))


def test_preview_without_a_worker_times_out_with_a_clear_message(empty, monkeypatch):
    monkeypatch.setenv("COTDISTILL_PREVIEW_TIMEOUT", "1")
    at = open_page()
    at.toggle(key="show_preview").set_value(True).run()
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "The preview timed out" in errors[0] and "cotdistill up" in errors[0]


def test_launch_page_refuses_a_bad_matrix(empty):
    at = open_page()
    widget(at.multiselect, "Placements").set_value([]).run()
    assert any("choose at least one value for: placement" in e.value for e in at.error)
    assert widget(at.button, "Launch").disabled


def test_datasets_page_lists_provenance_and_unreadable_releases(empty, monkeypatch):
    monkeypatch.setenv("COTDISTILL_DATA_DIR", str(empty / "nothing-here"))
    at = open_page("screens/datasets.py")
    table = at.dataframe[0].value
    row = table.set_index("dataset").loc["synthetic-count"]
    assert row["kind"] == "multiple_choice" and row["examples"] == "train 3000, test 300" and pd.isna(row["problem"])    # drawn as —
    assert table.set_index("dataset").loc["commonsenseqa-dsbs", "problem"] != ""
    assert "cannot be read" in texts(at) and str(empty / "nothing-here") in texts(at)


def test_datasets_page_searches_examples(empty):
    at = open_page("screens/datasets.py")
    widget(at.selectbox, "Dataset").set_value("synthetic-count").run()
    widget(at.selectbox, "Split").set_value("test").run()
    widget(at.text_input, "Search question and rationale").input("mome is red").run()
    shown = at.dataframe[1].value
    assert len(shown) > 0
    assert all("mome is red" in r for r in shown["rationale"])
    assert not at.exception


def test_datasets_page_says_how_to_make_a_rationale_set(empty):
    at = open_page("screens/datasets.py")
    assert any("No rationale set yet. Generate one with a teacher model on the Teacher screen" in i.value
               for i in at.info)
    assert {link.proto.label: link.proto.page for link in at.get("page_link")} == {"Generate rationales": "teacher"}


def test_launch_page_asks_to_confirm_a_large_matrix(empty, monkeypatch):
    import streamlit as st

    from worker import experiments
    monkeypatch.setattr(experiments, "CONFIRM_ABOVE", 5)
    st.cache_data.clear()                                    # the plan is cached across tests
    at = open_page()
    assert widget(at.button, "Launch 9 new run(s)").disabled
    widget(at.checkbox, "Yes, submit all 12 cells (more than 5)").check().run()
    assert widget(at.button, "Launch 9 new run(s)").disabled is False


def test_compare_says_what_to_do_with_nothing_chosen_or_nothing_finished(empty):
    from worker import api
    at = open_page("screens/compare.py")
    at.radio(key="compare_source").set_value("chosen runs").run()
    assert "Choose finished runs above to compare them" in "\n".join(i.value for i in at.info)

    from tests.worker.stack import BASE
    api.submit_matrix({"name": "pending", "base": BASE, "factors": {"seed": [0, 1]}})
    import streamlit as st
    st.cache_data.clear()                                     # the experiments list is cached a second
    at = open_page("screens/compare.py", experiment="pending")
    info = "\n".join(i.value for i in at.info)
    assert "None of these 2 run(s) has finished yet (2 queued or running)" in info
    assert {link.proto.label for link in at.get("page_link")} >= {"Watch the runs"}
    assert not at.get("plotly_chart")


def test_launch_says_where_to_look_when_no_dataset_can_be_read(empty, monkeypatch):
    from worker import api
    monkeypatch.setattr(api, "list_datasets", lambda: [
        {"name": "commonsenseqa-dsbs", "kind": None, "description": "", "counts": {}, "rationale_counts": {},
         "error": "not found"}])
    at = open_page()
    assert any("No dataset can be read here" in i.value for i in at.info)
    assert "Datasets" in {link.proto.label for link in at.get("page_link")}
