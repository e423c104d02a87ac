"""The attribution job on the real job system: from a `before` run to stored scores, a recovered
job that skips what it stored, and the one-click key-token study."""

import signal

from tests.worker.stack import BASE, JobStack, wait_job

import pytest

KEY = {"name": "synthetic-key", "options": {"n_train": 64, "n_test": 16}}


@pytest.fixture
def stack(tmp_path, monkeypatch):
    s = JobStack(tmp_path, monkeypatch)
    yield s
    s.close()


def test_attribution_from_a_before_run_then_key_token_study(stack):
    from worker import api
    stack.start_worker("w1")
    base = {**BASE, "data": KEY, "placement": "before",
            "eval": {"mode": "generate", "max_new_tokens": 24, "n_boot": 100}}
    [run_id] = api.submit_matrix({"name": "scorer", "base": base, "factors": {"seed": [0]}})["queued"]
    stack.wait([run_id], "succeeded")
    job_id = api.submit_attribution({"run_id": run_id}, {**KEY, "splits": ["train"], "n": 20},
                                    method="ig", steps=8)
    job = wait_job(job_id, lambda j: j["status"] == "succeeded", logs=stack.logs)
    summary = job["summary"]
    assert summary["n"] == 20 and summary["computed_now"] == 20 and summary["source"] == f"run {run_id}"
    assert summary["mean_completeness_error"] is not None and summary["mean_completeness_error"] < 0.05
    [attribution] = api.list_attributions()
    assert attribution["n"] == 20 and attribution["job_id"] == job_id and attribution["method"] == "ig"
    rows = api.attribution_scores(attribution["id"])
    from cotdistill.attribution import key_agreement, key_positions
    from cotdistill.data import load_examples
    truth = {ex.id: found for ex in load_examples("synthetic-key", "train", **KEY["options"])
             if (found := key_positions(ex))}                        # blank training examples have no key word
    assert summary["key_agreement"] == key_agreement({r["example_id"]: r["word_scores"] for r in rows}, truth)
    assert 10 < summary["key_agreement"]["n"] < 20
    assert len({r["example_id"] for r in rows}) == 20
    assert all(len(r["words"]) == len(r["word_scores"]) == 6 for r in rows)   # 6 rationale words
    lines = open(summary["scores_file"]).read().splitlines()
    assert len(lines) == 20

    study = api.key_token_study(attribution["id"], ks=[1, 2], seeds=[0],
                                base={**BASE, "data": {**KEY, "n_train": 20}, "train": {**BASE["train"], "steps": 3}})
    runs = stack.wait(study["queued"], ("succeeded", "failed"), timeout=300)
    assert len(runs) == 6
    arms = sorted(r["arm"] for r in runs.values())
    assert arms == ["after", "after/key_tokens(k=1)", "after/key_tokens(k=2)", "after/random_subset(k=1)",
                    "after/random_subset(k=2)", "none"]
    failed = {r["arm"]: api.run_detail(r["id"])["error"] for r in runs.values() if r["status"] != "succeeded"}
    assert not failed, failed


def test_killed_attribution_job_resumes_without_redoing(stack, monkeypatch):
    from worker import api
    stack.env["COTDISTILL_ATTRIBUTION_CHUNK"] = "4"
    stack.start_worker("w1")
    source = {"student": {"name": "tiny", "size": "tiny", "vocab_size": 300, "max_length": 64}}
    job_id = api.submit_attribution(source, {**KEY, "splits": ["train"], "n": 60}, method="occlusion")
    wait_job(job_id, lambda j: j["status"] == "running" and j["step"] >= 8, logs=stack.logs)
    stack.kill_worker("w1", signal.SIGKILL)
    stack.start_worker("w2")
    job = wait_job(job_id, lambda j: j["status"] == "succeeded", logs=stack.logs)
    assert job["attempt"] == 1
    assert 0 < job["summary"]["computed_now"] < 60 and job["summary"]["n"] == 60
    [attribution] = api.list_attributions()
    assert attribution["n"] == 60
