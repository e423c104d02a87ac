"""The generation job on the real job system: an OpenAI-compatible teacher served by the test,
a worker killed mid-generation, a recovered job that asks only for unfinished examples, and the
finished set registered with its provenance."""

import signal

import pytest

from tests.worker.stack import FakeTeacherServer, JobStack, wait_job


def SlowTeacher(delay: float = 0.15, hold_after: int = 10) -> FakeTeacherServer:  # noqa: N802
    """Answers every completion after `delay` s and counts the requests per question; from request
    `hold_after + 1` on it holds its answers until `t.release` is set, so a worker can be killed
    mid-generation however slowly the machine runs (at 0.15 s per answer alone, a loaded machine
    once let the job finish before the kill)."""
    import threading
    release, served = threading.Event(), []

    def answer(body):
        served.append(1)
        if len(served) > hold_after:
            release.wait(timeout=60)
        return " Facts recalled. So the answer is (b).", delay

    t = FakeTeacherServer(answer, key=lambda body: body["prompt"].rsplit("Q:", 1)[-1].split("\n", 1)[0].strip())
    t.release = release
    return t


@pytest.fixture
def stack(tmp_path, monkeypatch):
    s = JobStack(tmp_path, monkeypatch)
    yield s
    s.close()


@pytest.fixture
def teacher():
    t = SlowTeacher()
    yield t
    t.close()


def test_generation_survives_a_killed_worker_and_registers_the_set(stack, teacher):
    from worker import api
    stack.start_worker("w1")
    dataset = {"name": "synthetic-count", "options": {"n_test": 30}, "splits": ["test"], "n": 30}
    job_id = api.submit_generation(dataset, {"kind": "http", "base_url": teacher.url, "model": "fake",
                                             "concurrency": 1, "max_retries": 1},
                                   decoding={"max_new_tokens": 32}, batch_size=2, name="count-fake")
    job = wait_job(job_id, logs=stack.logs, until=lambda j: j["status"] == "running" and j["step"] >= 8)
    stack.kill_worker("w1", signal.SIGKILL)
    finished_before = {r["question"] for r in api.generation_outputs(job_id)}
    assert 8 <= len(finished_before) <= 10
    teacher.release.set()
    stack.start_worker("w2")
    job = wait_job(job_id, logs=stack.logs, until=lambda j: j["status"] in ("succeeded", "failed"))
    assert job["status"] == "succeeded", job["error"]
    assert job["attempt"] == 1 and job["summary"]["n"] == 30
    # Finished examples were never asked for again (an example in flight at the kill may be).
    assert all(teacher.asked[q.strip()] == 1 for q in finished_before), teacher.asked
    assert len(teacher.asked) == 30 and sum(teacher.asked.values()) <= 30 + 2

    [rs] = api.list_rationale_sets()
    assert rs["name"] == "count-fake" and rs["n_examples"] == 30 and rs["job_id"] == job_id
    described = rs["provenance"]["teacher"]
    assert described["model"] == "fake" and {k for k in described if "key" in k} <= {"api_key_env"}
    rows = api.rationale_set_examples(rs["id"])
    assert len(rows) == 30 and all(r["rationale"] == "Facts recalled." and r["teacher_label"] == "b" for r in rows)
    gold_b = sum(r["label"] == "b" for r in rows)
    assert rs["teacher_accuracy"] == pytest.approx(gold_b / 30)
    assert len(api.rationale_set_examples(rs["id"], teacher_correct=True)) == gold_b


def test_api_key_is_never_accepted_as_a_parameter(stack):
    from worker import api
    with pytest.raises(ValueError, match="api_key_env"):
        api.submit_generation({"name": "synthetic-count"}, {"kind": "http", "base_url": "http://x/v1",
                                                            "model": "m", "api_key": "sk-secret"})
