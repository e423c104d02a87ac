"""The Teacher screen, the rationale sets on the Datasets screen and training on a set from Launch,
against a real job system: a worker generates rationales from an OpenAI-compatible teacher served by
the test (module fixture: two finished sets of one dataset, from teachers that always answer (a) and
always answer (b))."""

import json
from collections import Counter
from types import SimpleNamespace

import pytest
import streamlit as st

from tests.app.apptest import frame_with, open_page, rerun_fresh, texts, wait_job, widget
from tests.worker.stack import FakeTeacherServer, JobStack, free_port

DATASET = {"name": "synthetic-count", "options": {"n_train": 12, "n_test": 6}, "splits": ["train", "test"]}


def FakeTeacher(slow_s: float = 0.3) -> FakeTeacherServer:  # noqa: N802
    """Model 'fake-X' answers '(X)' after a fixed rationale; model 'slow' answers (c) after `slow_s`.
    Counts the requests per model."""
    def answer(body: dict) -> tuple[str, float]:
        model = body["model"]
        letter = model.rsplit("-", 1)[-1] if model.startswith("fake-") else "c"
        return f" Facts recalled. So the answer is ({letter}).", slow_s if model == "slow" else 0.0
    return FakeTeacherServer(answer, key=lambda body: body["model"])


def teacher_spec(url: str, model: str) -> dict:
    return {"kind": "http", "base_url": url, "model": model, "api": "completions", "concurrency": 2}


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """Two finished rationale sets of synthetic-count (train and test), from teachers answering (a) and (b)."""
    from worker import api
    teacher = FakeTeacher(slow_s=1.0)
    with pytest.MonkeyPatch.context() as mp:
        stack = JobStack(tmp_path_factory.mktemp("teacher"), mp)
        stack.start_worker("w1")
        try:
            jobs = {letter: api.submit_generation(DATASET, teacher_spec(teacher.url, f"fake-{letter}"),
                                                  decoding={"max_new_tokens": 32}, batch_size=4, name=f"count-{letter}")
                    for letter in "ab"}
            sets = {}
            for letter, job_id in jobs.items():
                job = wait_job(job_id, lambda j: j["status"] in ("succeeded", "failed"), logs=stack.logs)
                assert job["status"] == "succeeded", job["error"]
                sets[letter] = job["summary"]["rationale_set_id"]
            yield SimpleNamespace(stack=stack, teacher=teacher, jobs=jobs, sets=sets)
        finally:
            stack.close()
            teacher.close()


# ------------------------------------------------------------------------------------------ teacher

def test_teacher_form_never_asks_for_a_key_and_starts_a_job_whose_outputs_appear(lab):
    from worker import api
    at = open_page("screens/teacher.py")
    widget(at.radio, "Teacher").set_value("http").run()
    assert not [t for t in at.text_input if t.proto.type == t.proto.PASSWORD]
    keyish = [t.label for t in at.text_input if "key" in t.label.lower()]
    assert keyish == ["Name of the environment variable that holds the API key on the workers"]
    assert "This form never takes the key itself" in texts(at)
    at.text_input(key="teacher_key_env").input("sk-proj-abc123def456ghi789jkl012").run()
    assert any("is not the name of an environment variable" in e.value for e in at.error)
    assert "abc123" not in texts(at)                                    # the pasted key is not echoed
    assert widget(at.button, "Generate rationales").disabled
    at.text_input(key="teacher_key_env").input("").run()

    at.selectbox(key="teacher_dataset").set_value("synthetic-count").run()    # the default: commonsenseqa-dsbs
    at.multiselect(key="teacher_splits_synthetic-count").set_value(["test"])
    at.number_input(key="teacher_n").set_value(5)
    at.text_area(key="teacher_options").input("n_test: 6")
    at.text_input(key="teacher_base_url").input(lab.teacher.url)
    at.text_input(key="teacher_http_model").input("fake-c")
    widget(at.number_input, "Max new tokens").set_value(24)
    widget(at.number_input, "Batch size").set_value(2)
    at.text_input(key="teacher_set_name").input("count-form").run()
    assert at.text_area(key="teacher_template_multiple_choice").value == api.prompt_templates()["multiple_choice"]
    assert not at.error, [e.value for e in at.error]

    widget(at.button, "Generate rationales").click().run()
    assert not at.exception, [e.value for e in at.exception]
    [job] = [j for j in api.list_jobs(kind="generation") if j["name"] == "count-form"]
    assert f"Generation job #{job['id']} queued" in texts(at)
    assert job["params"]["teacher"] == {"kind": "http", "base_url": lab.teacher.url, "model": "fake-c",
                                        "api": "completions", "concurrency": 4}
    assert job["params"]["dataset"] == {"name": "synthetic-count", "options": {"n_test": 6}, "splits": ["test"], "n": 5}
    assert job["params"]["prompt"] == {"template": None, "rationalize": False}
    assert job["params"]["decoding"] == {"max_new_tokens": 24, "temperature": 0.0, "top_p": 1.0, "seed": 0}
    assert at.selectbox(key="teacher_job").value == job["id"]

    done = wait_job(job["id"], lambda j: j["status"] in ("succeeded", "failed"), logs=lab.stack.logs)
    assert done["status"] == "succeeded", done["error"]
    rerun_fresh(at)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Examples done"] == "5 / 5"
    assert metrics["Teacher accuracy so far"] == f"{done['summary']['teacher_accuracy']:.3f}"
    assert metrics["Unparsed replies"] == "0" and metrics["Failed requests"] == "0"
    outputs = {r["id"]: r for r in api.generation_outputs(job["id"])}
    table = frame_with(at, "raw output").set_index("example")
    assert sorted(table.index) == sorted(outputs) and len(outputs) == 5
    for example_id, line in table.iterrows():
        assert line["gold"] == outputs[example_id]["label"] and line["teacher"] == "c"
        assert line["right"] == ("✓" if outputs[example_id]["label"] == "c" else "✗")
        assert line["raw output"] == " Facts recalled. So the answer is (c)." and line["rationale"] == "Facts recalled."
    jobs = frame_with(at, "job", "teacher accuracy").set_index("job")
    assert jobs.loc[job["id"], "done"] == 5 and jobs.loc[job["id"], "status"] == "succeeded"
    assert jobs.loc[lab.jobs["a"], "teacher accuracy"] == pytest.approx(
        api.job_detail(lab.jobs["a"])["summary"]["teacher_accuracy"])

    widget(at.selectbox, "Show").set_value("teacher wrong").run()
    wrong = [i for i, r in outputs.items() if r["teacher_correct"] is False]
    assert sorted(frame_with(at, "raw output")["example"]) == sorted(wrong)


def test_teacher_prompt_is_checked_and_rationalization_needs_the_hint(lab):
    at = open_page("screens/teacher.py")
    template = at.text_area(key="teacher_template_multiple_choice")
    template.input("Q: {question}\n{choices}\nA:").run()
    assert not at.error and widget(at.button, "Restore the built-in template")
    at.toggle(key="teacher_rationalize").set_value(True).run()
    # (the message goes through app.safe.md: its '_' is escaped in the Markdown source)
    assert any("rationalize is on but the template uses neither {gold\\_hint} nor {gold}" in e.value for e in at.error)
    assert widget(at.button, "Generate rationales").disabled
    widget(at.button, "Restore the built-in template").click().run()
    assert "{gold_hint}" in at.text_area(key="teacher_template_multiple_choice").value and not at.error


def test_cancel_retry_and_a_failed_jobs_error(lab):
    from worker import api
    slow = api.submit_generation({**DATASET, "splits": ["train"]}, teacher_spec(lab.teacher.url, "slow"),
                                 decoding={"max_new_tokens": 16}, batch_size=1, name="count-slow")
    wait_job(slow, lambda j: j["status"] == "running" and j["step"] >= 1, logs=lab.stack.logs)
    at = open_page("screens/teacher.py")
    at.selectbox(key="teacher_job").set_value(slow).run()
    widget(at.button, "Cancel job").click().run()
    assert f"Job #{slow}: running (it stops at its next batch)" in texts(at)
    wait_job(slow, lambda j: j["status"] == "cancelled", logs=lab.stack.logs)
    rerun_fresh(at)
    widget(at.button, "Retry job").click().run()
    assert f"Job #{slow} queued again (attempt 1)" in texts(at)
    assert api.cancel_job(slow) in ("cancelled", "running")
    wait_job(slow, lambda j: j["status"] == "cancelled", logs=lab.stack.logs)

    refused = f"http://127.0.0.1:{free_port()}/v1"                    # nothing listens there
    broken = api.submit_generation({**DATASET, "splits": ["test"], "n": 2},
                                   {**teacher_spec(refused, "gone"), "max_retries": 0}, name="count-broken")
    wait_job(broken, lambda j: j["status"] == "failed", logs=lab.stack.logs)
    st.cache_data.clear()                                              # the job list of a second ago
    at = open_page("screens/teacher.py")
    at.selectbox(key="teacher_job").set_value(broken).run()
    [expander] = [e for e in at.expander if e.label.startswith("Job #")]
    assert expander.label.startswith(f"Job #{broken} failed: ") and "failed transiently" in expander.label
    assert "retry the job" in expander.code[0].value
    assert not widget(at.button, "Retry job").disabled


# ------------------------------------------------------------------------------------------ datasets

def test_rationale_sets_with_provenance_examples_and_how_to_use_them(lab):
    from worker import api
    sets = {s["id"]: s for s in api.list_rationale_sets()}
    at = open_page("screens/datasets.py", set=str(lab.sets["b"]))
    table = frame_with(at, "content hash").set_index("set")
    b = sets[lab.sets["b"]]
    line = table.loc[lab.sets["b"]]
    assert line["name"] == "count-b" and line["dataset"] == "synthetic-count" and line["source"] == "teacher"
    assert line["teacher"] == f"fake-b (http {lab.teacher.url}/completions)"
    assert line["decoding"] == "greedy, ≤32 tokens" and line["gold-conditioned"] == "no"
    assert line["content hash"] == b["content_hash"][:12] and line["examples"] == "train 12, test 6"
    assert line["teacher accuracy"] == pytest.approx(b["teacher_accuracy"]) and line["unparsed"] == 0
    assert line["created"][:10] == b["created_at"][:10]

    assert at.selectbox(key="set_pick").value == lab.sets["b"]
    [provenance] = [json.loads(j.value) for j in at.json]
    assert provenance["content_hash"] == b["content_hash"] and provenance["prompt"]["rationalize"] is False
    assert len(frame_with(at, "example", "right", "rationale")) == 18
    at.selectbox(key="set_teacher").set_value("teacher correct").run()
    right = frame_with(at, "example", "right", "rationale")
    assert set(right["gold"]) == {"b"} and len(right) == len(api.rationale_set_examples(lab.sets["b"], teacher_correct=True))
    at.selectbox(key="set_split").set_value("test").run()
    assert set(frame_with(at, "example", "right", "rationale")["split"]) == {"test"}

    [code] = [c.value for c in at.code if "rationale-set" in c.value]
    assert "name: rationale-set" in code and f"path: {b['path']}" in code and "rationale_filter" in code
    links = {link.proto.label: link.proto for link in at.get("page_link")}
    assert links[f"Launch an experiment on set #{lab.sets['b']}"].query_string == f"rationale_set={lab.sets['b']}"


def test_two_sets_of_one_dataset_compared(lab):
    from worker import api
    at = open_page("screens/datasets.py")
    at.selectbox(key="compare_set_a").set_value(lab.sets["a"]).run()
    at.selectbox(key="compare_set_b").set_value(lab.sets["b"]).run()
    result = api.compare_rationale_sets(lab.sets["a"], lab.sets["b"])
    gold = Counter(r["label"] for r in api.rationale_set_examples(lab.sets["a"]))
    assert result["teacher_agreement"] == 0.0 and result["only_a_correct"] == gold["a"]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Shared examples"] == "18" and metrics["Teachers agree"] == "0.0%"
    assert metrics["Only A right / only B right"] == f"{gold['a']} / {gold['b']}"
    own = frame_with(at, "measure", "A").set_index("measure")
    assert own.loc["teacher accuracy", "A"] == f"{result['a']['teacher_accuracy']:.3f}"
    assert own.loc["rationale words (mean)", "B"] == "2.000"                   # "Facts recalled."
    joint = frame_with(at, "measure", "value").set_index("measure")
    assert joint.loc["id overlap (Jaccard)", "value"] == "1.000" and joint.loc["both right", "value"] == "0"


# ------------------------------------------------------------------------------------------ launch

def test_launch_trains_on_a_registered_set_with_the_teacher_correct_filter(lab):
    from worker import api
    at = open_page(rationale_set=str(lab.sets["b"]))
    assert widget(at.radio, "Data").value == "set"
    assert at.selectbox(key="launch_set").value == lab.sets["b"]
    assert not at.warning                                  # train on train, test on test
    at.text_input(key="launch_name").input("on-set-b")
    at.selectbox(key="rationale_filter").set_value("teacher_correct")
    widget(at.multiselect, "Placements").set_value(["after"])
    widget(at.multiselect, "Perturbations").set_value(["none"])
    widget(at.text_input, "Seeds").input("0")
    widget(at.number_input, "Training steps").set_value(2).run()
    assert not at.error, [e.value for e in at.error]
    widget(at.button, "Launch 1 new run(s)").click().run()
    [run] = api.list_runs(experiment="on-set-b")
    api.cancel(run["id"])                                  # its config is what this test is about
    data = api.run_detail(run["id"])["config"]["data"]
    path = next(s["path"] for s in api.list_rationale_sets() if s["id"] == lab.sets["b"])
    assert data["name"] == "rationale-set" and data["options"] == {"path": path}
    assert (data["train_split"], data["test_split"], data["rationale_filter"]) == ("train", "test", "teacher_correct")

    at.selectbox(key=f"launch_set_test_{lab.sets['b']}").set_value("train").run()
    assert any("measures memorization" in w.value for w in at.warning)


def test_a_dataset_by_id_and_a_teacher_endpoint_make_a_set(lab):
    """Another dataset than the registered ones, by id (here a local folder `datasets` reads, since
    this machine has no hub), with its columns mapped in the form, and a teacher endpoint: a set.
    The folder lies in the state folder, one of the roots jobs may read (worker/guard.py)."""
    from worker import api
    folder = lab.stack.home / "arc_like"
    folder.mkdir()
    rows = [{"id": f"arc{i}", "question": f"Which is bigger, {i} or {i + 1}?",
             "choices": {"label": ["A", "B", "C"], "text": [str(i), str(i + 1), "same"]}, "answerKey": "B"}
            for i in range(4)]
    (folder / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    at = open_page("screens/teacher.py")
    at.selectbox(key="teacher_dataset").set_value("another Hugging Face dataset…").run()
    at.text_input(key="teacher_hub_id").input(str(folder)).run()
    at.text_area(key="teacher_options").input("columns: {label: answerKey}")
    widget(at.radio, "Teacher").set_value("http").run()
    at.text_input(key="teacher_base_url").input(lab.teacher.url)
    at.text_input(key="teacher_http_model").input("fake-b")
    at.text_input(key="teacher_set_name").input("arc-like").run()
    assert not at.error, [e.value for e in at.error]
    widget(at.button, "Generate rationales").click().run()
    [job] = [j for j in api.list_jobs(kind="generation") if j["name"] == "arc-like"]
    assert job["params"]["dataset"]["name"] == str(folder)
    done = wait_job(job["id"], lambda j: j["status"] in ("succeeded", "failed"), logs=lab.stack.logs)
    assert done["status"] == "succeeded", done["error"]
    assert done["summary"]["n"] == 4 and done["summary"]["teacher_accuracy"] == 1.0
    [made] = [s for s in api.list_rationale_sets() if s["name"] == "arc-like"]
    assert made["n_examples"] == 4 and made["teacher_accuracy"] == 1.0
