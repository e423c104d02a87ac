"""The Key tokens screen against a real job system: a worker trains a tiny `before` run on the
built-in key-token task and scores its rationales (module fixture); the screen submits attributions,
watches the jobs, shows one example's scores, counts the key tokens and queues the key-token study.
Accuracy against k is checked on a study whose runs are finished as a worker finishes them."""

from collections import Counter
from types import SimpleNamespace

import pytest

from tests.app.apptest import (chart, chart_traces, decode, finish_run, frame_with, html_bodies, open_page, rerun_fresh, texts,
                               use_fresh_database, wait_job, widget)
from tests.worker.stack import BASE, JobStack

KEY = {"name": "synthetic-key", "options": {"n_train": 64, "n_test": 16}}


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    """A finished `before` run on synthetic-key and an integrated-gradients attribution of 20 of its
    training rationales, by a real worker."""
    from worker import api
    with pytest.MonkeyPatch.context() as mp:
        stack = JobStack(tmp_path_factory.mktemp("keys"), mp)
        stack.start_worker("w1")
        try:
            base = {**BASE, "data": KEY, "placement": "before",
                    "eval": {"mode": "generate", "max_new_tokens": 24, "n_boot": 100}}
            [run_id] = api.submit_matrix({"name": "scorer", "base": base, "factors": {"seed": [0]}})["queued"]
            stack.wait([run_id], "succeeded")
            job_id = api.submit_attribution({"run_id": run_id}, {**KEY, "splits": ["train"], "n": 20}, method="ig", steps=8)
            job = wait_job(job_id, lambda j: j["status"] in ("succeeded", "failed"), logs=stack.logs)
            assert job["status"] == "succeeded", job["error"]
            yield SimpleNamespace(stack=stack, run_id=run_id, job_id=job_id, attribution_id=job["summary"]["attribution_id"])
        finally:
            stack.close()


def test_compute_attributions_from_a_before_run(scored):
    from worker import api
    at = open_page("screens/key_tokens.py")
    assert widget(at.radio, "Scoring model").value == "run"
    assert at.selectbox(key="attr_run").value == scored.run_id
    scope = str(scored.run_id)
    # The data defaults come from the run's config.
    assert at.selectbox(key=f"attr_dataset_{scope}").value == "synthetic-key"
    assert at.multiselect(key=f"attr_splits_{scope}_synthetic-key").value == ["train"]
    assert "n_train: 64" in at.text_area(key=f"attr_options_{scope}_synthetic-key").value
    at.number_input(key=f"attr_n_{scope}_synthetic-key").set_value(6)
    widget(at.selectbox, "Method").set_value("occlusion").run()
    assert widget(at.number_input, "IG steps").disabled

    widget(at.button, "Compute attributions").click().run()
    assert not at.exception, [e.value for e in at.exception]
    [job] = [j for j in api.list_jobs(kind="attribution") if j["id"] != scored.job_id]
    assert job["params"]["source"] == {"run_id": scored.run_id} and job["params"]["method"] == "occlusion"
    assert job["params"]["data"] == {**KEY, "splits": ["train"], "n": 6}
    assert f"Attribution job #{job['id']} queued" in texts(at)
    assert at.selectbox(key="attribution_job").value == job["id"]

    done = wait_job(job["id"], lambda j: j["status"] in ("succeeded", "failed"), logs=scored.stack.logs)
    assert done["status"] == "succeeded", done["error"]
    rerun_fresh(at)
    table = at.dataframe[0].value.set_index("job")
    assert table.loc[job["id"], "status"] == "succeeded" and table.loc[job["id"], "progress"] == 1.0
    assert table.loc[job["id"], "method"] == "occlusion" and table.loc[job["id"], "source"] == f"run {scored.run_id}"
    assert table.loc[scored.job_id, "completeness error (mean)"] == pytest.approx(
        api.job_detail(scored.job_id)["summary"]["mean_completeness_error"])
    assert widget(at.button, "Retry job").disabled and widget(at.button, "Cancel job").disabled


def test_one_examples_scores_and_completeness(scored):
    from worker import api
    at = open_page("screens/key_tokens.py", attribution=str(scored.attribution_id))
    assert at.selectbox(key="attribution_pick").value == scored.attribution_id
    rows = api.attribution_scores(scored.attribution_id)
    row = rows[3]
    at.selectbox(key="attr_example").set_value(row["example_id"]).run()
    example = next(e for e in api.attributed_examples(scored.attribution_id) if e["example_id"] == row["example_id"])
    assert f"**Gold label:** `{example['label']}`" in texts(at)
    [heatmap] = [b for b in html_bodies(at) if "token-heatmap" in b]
    for word, score in zip(row["words"], row["word_scores"]):
        assert f'title="{score:.4g}"' in heatmap and f">{word}" in heatmap
    found = api.job_detail(scored.job_id)["summary"]["key_agreement"]          # synthetic-key knows its key word
    assert 10 < found["n"] < 20                                               # blank training examples have none
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Key word ranked first"] == f"{found['first']:.0%}"
    assert metrics["Mean rank of the best key word"] == f"{found['mean_rank']:.2f}"
    assert f"**Agreement with the known key words** ({found['n']} example(s)" in texts(at)
    metric = metrics["IG completeness error (nats)"]
    assert float(metric) == pytest.approx(row["completeness_error"], rel=1e-2)
    top = max(range(len(row["words"])), key=lambda i: (row["word_scores"][i], -i))
    assert f"Highest-scoring words: `{row['words'][top]}`" in texts(at)

    widget(at.radio, "Units").set_value("student tokens").run()
    [heatmap] = [b for b in html_bodies(at) if "token-heatmap" in b]
    assert heatmap.count("<span ") == len(row["tokens"])


def test_most_frequent_key_tokens_are_counted_per_example(scored):
    from worker import api
    at = open_page("screens/key_tokens.py", attribution=str(scored.attribution_id))
    at.number_input(key="key_k").set_value(2).run()
    expected = Counter()
    for row in api.attribution_scores(scored.attribution_id):
        top = sorted(range(len(row["words"])), key=lambda i: (-row["word_scores"][i], i))[:2]
        expected.update({row["words"][i].lower() for i in top})
    table = frame_with(at, "token", "category")
    assert dict(zip(table["token"], table["count"])) == dict(expected)
    assert set(table["category"]) == {"content"}             # made-up words and key words: no stopword, no 'yes'/'no'
    bars = {y.split(" (")[0]: x for t in chart_traces(chart(at, "key_token_counts"), "bar")
            for y, x in zip(decode(t["y"]), decode(t["x"]))}
    assert bars == {w: c for w, c in expected.most_common() if w in bars} and len(bars) == min(20, len(expected))
    assert "**100%** content words" in texts(at)


def test_key_token_categories(tmp_path, monkeypatch):
    """Content words, function words and words that name the gold answer, on a multiple-choice set."""
    from worker import api
    from worker.models import Attribution, AttributionScore
    use_fresh_database(tmp_path, monkeypatch)
    data = {"name": "synthetic-count", "options": {"n_test": 4}, "splits": ["test"], "n": 2}
    with api.session() as s:
        attribution = Attribution(source="model x", method="occlusion", dataset="synthetic-count", params={"data": data})
        s.add(attribution)
        s.commit()
        attribution_id = attribution.id
    examples = api.attributed_examples(attribution_id)
    assert len(examples) == 2
    with api.session() as s:
        for ex in examples:
            gold_text = ex["choices"]["abcdefghijklmnopqrstuvwxyz".index(ex["label"])]
            words = ["The", f"{gold_text}.", "zebra", f"({ex['label']})"]
            s.add(AttributionScore(attribution_id=attribution_id, example_id=ex["example_id"], tokens=words,
                                   scores=[4.0, 3.0, 2.0, 1.0], words=words, word_scores=[4.0, 3.0, 2.0, 1.0]))
        s.commit()
    rows = api.key_token_stats(attribution_id, k=3)
    assert {(r["token"], r["category"]) for r in rows} >= {("the", "function"), ("zebra", "content")}
    assert sum(r["count"] for r in rows if r["category"] == "answer") == 2      # the gold choice's text, twice
    assert [r for r in rows if r["token"] == "the"] == [{"token": "the", "count": 2, "share": 1.0, "category": "function"}]
    rows = api.key_token_stats(attribution_id, k=4)
    assert sum(r["count"] for r in rows if r["category"] == "answer") == 4      # and the label '(b)'

    at = open_page("screens/key_tokens.py")
    assert "of the top-3 words of 2 example(s)" in texts(at).lower()
    assert "**33%** content words · **33%** function words · **33%** name the answer" in texts(at)


def test_key_token_study_button_queues_the_matrix(scored):
    from worker import api
    at = open_page("screens/key_tokens.py", attribution=str(scored.attribution_id))
    base = yaml_of(at.text_area(key=f"study_base_{scored.attribution_id}").value)
    run_config = api.run_detail(scored.run_id)["config"]
    assert base["data"] == {**run_config["data"], "n_train": 20}      # cut to the 20 scored examples
    assert base["student"] == run_config["student"] and "placement" not in base and "perturbation" not in base
    assert not at.warning, [w.value for w in at.warning]

    a = scored.attribution_id
    assert at.text_input(key=f"study_ks_{a}").value == "1, 2, 3"      # not the built-in study task: generic defaults
    at.text_input(key=f"study_ks_{a}").input("1, 2")
    at.text_input(key=f"study_seeds_{a}").input("0, 1")
    at.text_input(key=f"study_name_{a}").input("study-button").run()
    assert "**6 arms × 2 seed(s) = 12 run(s)**: 12 new run(s)." in texts(at)
    widget(at.button, "Queue the key-token study (12 new run(s))").click().run()
    assert not at.exception, [e.value for e in at.exception]
    # The form keeps what was queued, and the same click cannot queue the study again.
    a_ks, a_seeds, a_name = (at.text_input(key=f"study_{w}_{a}").value for w in ("ks", "seeds", "name"))
    assert (a_ks, a_seeds, a_name) == ("1, 2", "0, 1", "study-button")
    assert widget(at.button, "Nothing new to queue").disabled
    assert "experiment 'study-button' holds all 12" in texts(at) and "Nothing new to queue" in texts(at)
    rerun_fresh(at)
    assert widget(at.button, "Nothing new to queue").disabled and "Study 'study-button': 12 run(s) queued" in texts(at)
    runs = api.list_runs(experiment="study-button")
    for r in runs:                                           # spare the shared cores: nothing needs them trained
        if r["status"] in ("queued", "running"):
            api.cancel(r["id"])
    assert len(runs) == 12
    arms = Counter(r["arm"] for r in runs)
    assert arms == {"none": 2, "after": 2, "after/key_tokens(k=1)": 2, "after/key_tokens(k=2)": 2,
                    "after/random_subset(k=1)": 2, "after/random_subset(k=2)": 2}
    assert "Study 'study-button': 12 run(s) queued" in texts(at)
    links = {link.proto.label: link.proto for link in at.get("page_link")}
    assert links["Watch its runs"].query_string == "experiment=study-button"
    assert at.selectbox(key="k_experiment").value == "study-button"
    # Another k is a different study: only its runs are new (cancelled runs could be queued again too).
    at.text_input(key=f"study_ks_{a}").input("1, 2, 4").run()
    [queue] = [b for b in at.button if b.label.startswith("Queue the key-token study (")]
    new = int(queue.label.split("(")[1].split()[0])
    assert not queue.disabled and 4 <= new <= 16              # k=4's runs, and any cancelled before they finished


def yaml_of(text: str) -> dict:
    import yaml
    return yaml.safe_load(text)


# ------------------------------------------------------------------------------------------ accuracy against k

K_ACCURACY = {  # arm → accuracy per seed
    ("none", None, None): [0.50, 0.55, 0.60], ("after", None, None): [0.90, 0.85, 0.95],
    ("after", "key_tokens", 1): [0.70, 0.80, 0.75], ("after", "key_tokens", 3): [0.85, 0.90, 0.80],
    ("after", "random_subset", 1): [0.55, 0.60, 0.50], ("after", "random_subset", 3): [0.65, 0.60, 0.70]}


def test_accuracy_against_k_draws_the_study(tmp_path, monkeypatch):
    from worker import api
    use_fresh_database(tmp_path, monkeypatch)
    scores = tmp_path / "scores.jsonl"
    scores.write_text("")
    variants = [{"placement": "none", "perturbation": {"kind": "none"}},
                {"placement": "after", "perturbation": {"kind": "none"}}]
    for k in (1, 3):
        variants += [{"placement": "after", "perturbation": {"kind": "key_tokens", "level": "word",
                                                             "params": {"k": k, "order": "original"},
                                                             "scores_file": str(scores)}},
                     {"placement": "after", "perturbation": {"kind": "random_subset", "level": "word", "params": {"k": k}}}]
    api.submit_matrix({"name": "k-study", "base": BASE, "factors": {"variant": variants, "seed": [0, 1, 2]}})
    for r in api.list_runs(experiment="k-study"):
        k = r["perturbation_params"].get("k")
        accuracy = K_ACCURACY[(r["placement"], None if r["perturbation"] == "none" else r["perturbation"], k)][r["seed"]]
        n_right = round(accuracy * 20)
        finish_run(r["id"], {"accuracy": accuracy},
                   [{"example_id": f"e{i}", "predicted": "a", "correct": i < n_right, "gold": "a"} for i in range(20)])
    arms = {(a["placement"], a["perturbation"], a["perturbation_params"].get("k")): a
            for a in api.compare([r["id"] for r in api.list_runs(experiment="k-study")])}

    at = open_page("screens/key_tokens.py")
    assert at.selectbox(key="k_experiment").value == "k-study"
    traces = {t["name"]: t for t in chart(at, "accuracy_vs_k")["data"]}
    for kind, name in (("key_tokens", "key tokens (top k by score)"), ("random_subset", "random k words (control)")):
        line = traces[name]
        assert decode(line["x"]) == [1, 3]
        assert decode(line["y"]) == pytest.approx([arms[("after", kind, k)]["mean"] for k in (1, 3)])
        assert decode(line["error_y"]["array"]) == pytest.approx(
            [arms[("after", kind, k)]["high"] - arms[("after", kind, k)]["mean"] for k in (1, 3)])
        assert sorted(decode(traces[f"{name}: seeds"]["y"])) == pytest.approx(
            sorted(K_ACCURACY[("after", kind, 1)] + K_ACCURACY[("after", kind, 3)]))
    for placement, name in (("after", "full rationale (after)"), ("none", "label only (none)")):
        arm = arms[(placement, "none", None)]
        assert decode(traces[name]["y"]) == pytest.approx([arm["mean"]] * 2)
        assert decode(traces[name]["x"]) == [0.5, 3.5]
        band = decode(traces[f"{name}: 95% interval"]["y"])
        assert band == pytest.approx([arm["low"], arm["low"], arm["high"], arm["high"], arm["low"]])
    assert arms[("after", "key_tokens", 1)]["mean"] == pytest.approx(0.75)
    table = frame_with(at, "series", "k")
    assert len(table) == 6 and set(table["n_seeds"]) == {3}


def test_accuracy_against_k_flags_constant_answers(tmp_path, monkeypatch):
    """A run not distinguishable from a constant answer is a cross among the seeds, a ⚠ above its point
    (or reference line) with its reason, a warning and a table column, as on Compare."""
    from worker import api
    use_fresh_database(tmp_path, monkeypatch)
    scores = tmp_path / "scores.jsonl"
    scores.write_text("")
    variants = [{"placement": "none", "perturbation": {"kind": "none"}},
                {"placement": "after", "perturbation": {"kind": "key_tokens", "level": "word",
                                                         "params": {"k": 2, "order": "original"},
                                                         "scores_file": str(scores)}}]
    api.submit_matrix({"name": "flag-study", "base": BASE, "factors": {"variant": variants, "seed": [0, 1]}})
    reason = "not distinguishable from a constant answer: 'a' on 100% of items"
    flagged = {}
    for r in api.list_runs(experiment="flag-study"):
        collapsed = (r["perturbation"] == "key_tokens" and r["seed"] == 1) or r["placement"] == "none"
        summary = {"accuracy": 0.5, **({"collapsed": True, "collapse_reason": reason} if collapsed else {})}
        finish_run(r["id"], summary, [{"example_id": f"e{i}", "predicted": "a", "correct": i < 10, "gold": "a"}
                                      for i in range(20)])
        flagged[(r["perturbation"], r["seed"])] = collapsed
    at = open_page("screens/key_tokens.py")
    traces = {t["name"]: t for t in chart(at, "accuracy_vs_k")["data"]}
    seeds = traces["key tokens (top k by score): seeds"]
    assert decode(seeds["marker"]["symbol"]) == ["circle", "x"]
    marks = traces["⚠ not distinguishable from a constant answer"]
    assert decode(marks["text"]) == ["⚠", "⚠"]
    assert decode(marks["x"]) == pytest.approx([2, 2.5 - 0.15])            # the k=2 point, the label-only line
    hover = decode(marks["hovertext"])
    assert hover[0].startswith("key tokens (top k by score), k=2: 1 of 2 seed(s) not distinguishable") and reason in hover[0]
    assert hover[1].startswith("label only (none): 2 of 2 seed(s)")
    warning = " ".join(w.value for w in at.warning)
    assert ("Constant answers: key tokens (top k by score), k=2: seed(s) 1; label only (none): seed(s) 0, 1"
            in warning)
    table = frame_with(at, "series", "k").set_index("series")
    assert table.loc["key tokens (top k by score)", "flags"] == "seed 1: constant answer"
    assert table.loc["label only (none)", "flags"] == "seed 0: constant answer, seed 1: constant answer"


def test_the_built_in_study_task_brings_its_defaults(tmp_path, monkeypatch):
    """On synthetic-keyfacts the form proposes the measured defaults: gradient × input, every training
    example, then k = 3 × seeds 0, 1, 2 (cotdistill.studies.testbed.KEY_STUDY), and shows the agreement."""
    from worker import api
    from worker.models import Attribution, AttributionScore
    use_fresh_database(tmp_path, monkeypatch)
    scores = tmp_path / "scores.jsonl"
    scores.write_text("")
    data = {"name": "synthetic-keyfacts", "options": {}, "splits": ["train"]}
    with api.session() as s:
        a = Attribution(source="model x", method="grad_x_input", dataset="synthetic-keyfacts",
                        params={"data": data, "scores_file": str(scores)})
        s.add(a)
        s.commit()
        s.add(AttributionScore(attribution_id=a.id, example_id="keyfacts-train-00001", tokens=["so"], scores=[1.0],
                               words=["so"], word_scores=[1.0]))
        s.commit()
        attribution_id = a.id
    at = open_page("screens/key_tokens.py")
    widget(at.radio, "Scoring model").set_value("student").run()
    assert at.selectbox(key="attr_dataset_student").value == "synthetic-keyfacts"
    assert widget(at.selectbox, "Method").value == "grad_x_input"
    assert at.number_input(key="attr_n_student_synthetic-keyfacts").value == 0          # all 2,000
    assert at.text_input(key=f"study_ks_{attribution_id}").value == "3"
    assert at.text_input(key=f"study_seeds_{attribution_id}").value == "0, 1, 2"
    assert "**4 arms × 3 seed(s) = 12 run(s)**" in texts(at)
    assert "On `synthetic-keyfacts` the defaults below should show:" in texts(at)
