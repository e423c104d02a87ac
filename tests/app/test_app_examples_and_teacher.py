"""Issue 24's smaller screens, without a worker (rows written as a worker writes them): Examples
chooses one run per arm at first; the Teacher screen starts on a dataset a pretrained teacher can
answer, shows one job state in its table, its picker and its status, and the parse rate beside the
accuracy."""

from tests.app.apptest import finish_run, frame_with, open_page, texts, use_fresh_database, widget
from tests.worker.stack import BASE


def test_examples_preselects_one_run_per_arm_its_first_seed(tmp_path, monkeypatch):
    from worker import api
    use_fresh_database(tmp_path, monkeypatch)
    api.submit_matrix({"name": "arms", "base": BASE, "factors": {"placement": ["none", "after"], "seed": [2, 0, 1]}})
    runs = api.list_runs(experiment="arms")
    tests = api.dataset_examples("synthetic-count", "test", options=BASE["data"]["options"], limit=12)
    for r in runs:
        records = [{"example_id": ex["id"], "gold": ex["label"], "predicted": "a", "correct": ex["label"] == "a",
                    "scores": {}} for ex in tests]
        finish_run(r["id"], {"accuracy": 0.5, "n": len(records)}, records)
    at = open_page("screens/examples.py", experiment="arms")
    assert not at.exception, [e.value for e in at.exception]
    first_seed = {(r["placement"], r["seed"]): r["id"] for r in runs}
    chosen = at.multiselect(key="examples_runs").value
    assert sorted(chosen) == sorted([first_seed["none", 0], first_seed["after", 0]])
    assert len(runs) == 6 and len({api.list_runs(run_ids=[i])[0]["arm_key"] for i in chosen}) == 2
    table = frame_with(at, "example", "question", "gold")
    assert len(table) == len(tests) and len(table.columns) == 4 + 2         # one column per chosen run


def test_teacher_starts_on_real_questions_and_says_one_state_with_the_parse_rate(tmp_path, monkeypatch):
    from worker import api, state
    from worker.models import Job
    use_fresh_database(tmp_path, monkeypatch)
    at = open_page("screens/teacher.py")
    assert at.selectbox(key="teacher_dataset").value == "commonsenseqa-dsbs"
    job = api.submit_generation({"name": "commonsenseqa-dsbs", "options": {}, "splits": ["test"], "n": 5},
                                {"kind": "local", "model": "smollm2-135m"}, name="cqa-try")

    def statuses(at) -> set[str]:
        """The job's state as the table, the picker and the status line each say it."""
        table = frame_with(at, "job", "status").set_index("job").loc[job, "status"]
        picker = at.selectbox(key="teacher_job")
        label = picker.format_func(picker.value).rsplit(" · ", 1)[1]
        line = next(p.proto.text for p in at.get("progress")).split(":")[0].split()[-1]
        return {table, label, line}

    def fresh():
        """The page as a user sees it a second later (the app caches job rows for one second)."""
        import streamlit as st
        st.cache_data.clear()
        return open_page("screens/teacher.py")

    assert statuses(fresh()) == {"queued"}
    with api.session() as s:
        assert state.claim(s, job, "w:test", model=Job)
        assert state.heartbeat(s, job, "w:test", step=5, model=Job, progress={
            "phase": "generate", "step": 5, "total": 5, "teacher_accuracy": 0.0, "unparsed": 4, "errors": 0})
    at = fresh()
    assert statuses(at) == {"running"}
    metrics = {m.label: m.value for m in at.metric}
    assert (metrics["Teacher accuracy so far"], metrics["Parsed answers"], metrics["Unparsed replies"]) == \
        ("0.000", "1 / 5", "4")
    assert ("Accuracy 0.000 over 5 example(s), 1 of them with a parsed answer (20%): an unparsed reply or a "
            "failed request counts as wrong.") in texts(at)
    assert frame_with(at, "job", "parsed").set_index("job").loc[job, "parsed"] == 1
    with api.session() as s:
        assert state.finish(s, job, "w:test", "succeeded", model=Job, summary={
            "n": 5, "teacher_accuracy": 0.2, "unparsed": 2, "errors": 1, "rationale_set_id": None})
    at = fresh()
    assert statuses(at) == {"succeeded"}
    assert {m.label: m.value for m in at.metric}["Parsed answers"] == "2 / 5"
    assert "Accuracy 0.200 over 5 example(s), 2 of them with a parsed answer (40%)" in texts(at)
