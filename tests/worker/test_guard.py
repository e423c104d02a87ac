"""What jobs may touch: paths confined to the allowed roots, teacher keys and URLs allow-listed.
The exfiltration attempts use a real local HTTP listener, which must receive nothing."""

import os
from pathlib import Path

import pytest

from worker.guard import (Refused, check_config_paths, check_job, check_teacher, confine, config_paths,
                          key_var_allowed, url_allowed)


@pytest.fixture
def roots(tmp_path):
    data, home = tmp_path / "data", tmp_path / "home"
    data.mkdir()
    home.mkdir()
    (data / "mine.csv").write_text("question,label\nq,a\n")
    return [data.resolve(), home.resolve()]


# ------------------------------------------------------------------------------------------ paths

def test_a_path_inside_a_root_is_allowed(roots):
    assert confine(roots[0] / "mine.csv", "data.options.path", roots) == roots[0] / "mine.csv"
    assert confine(roots[1] / "not-yet-there.jsonl", "x", roots) == roots[1] / "not-yet-there.jsonl"


@pytest.mark.parametrize("path", ["/etc/passwd", "{data}/../../etc/passwd", "{data}/../home/../../x.csv"])
def test_paths_outside_every_root_are_refused_naming_the_key_and_the_path(roots, path):
    path = path.format(data=roots[0])
    with pytest.raises(Refused) as e:
        confine(path, "data.options.path", roots)
    assert str(e.value).startswith(f"data.options.path: the path {path!r} is outside the folders jobs may read")
    assert "root:" not in str(e.value)                     # nothing of the file is echoed


def test_a_symlink_out_of_a_root_is_refused(roots, tmp_path):
    outside = tmp_path / "secret.csv"
    outside.write_text("question,label\ntop secret,a\n")
    (roots[0] / "link.csv").symlink_to(outside)
    (roots[0] / "linkdir").symlink_to(tmp_path)
    for p in (roots[0] / "link.csv", roots[0] / "linkdir" / "secret.csv"):
        with pytest.raises(Refused, match="outside the folders") as e:
            confine(p, "data.options.path", roots)
        assert "top secret" not in str(e.value)


def test_the_allowed_paths_variable_adds_roots(tmp_path, monkeypatch):
    from worker.guard import allowed_roots
    extra = tmp_path / "lab-share"
    monkeypatch.setenv("COTDISTILL_ALLOWED_PATHS", f"{extra}{os.pathsep}/srv/cotdistill")
    monkeypatch.setenv("COTDISTILL_DATA_DIR", str(tmp_path / "d"))
    monkeypatch.setenv("COTDISTILL_HOME", str(tmp_path / "h"))
    monkeypatch.delenv("COTDISTILL_ARTIFACTS", raising=False)
    assert allowed_roots() == [(tmp_path / "d").resolve(), (tmp_path / "h").resolve(), extra.resolve(),
                               Path("/srv/cotdistill").resolve()]


def test_config_paths_lists_every_path_a_run_config_reads():
    cfg = {"data": {"name": "file", "options": {"path": "a.csv", "paths": {"train": "/t.csv", "test": "/u.csv"},
                                                "columns": {"question": "q"}, "rationales": ["/r1", "/r2"]}},
           "perturbation": {"kind": "key_tokens", "scores_file": "/s.jsonl"},
           "student": {"name": "/models/gemma"}}
    assert sorted(config_paths(cfg)) == sorted([
        ("data.options.path", "a.csv"), ("data.options.paths.train", "/t.csv"),
        ("data.options.paths.test", "/u.csv"), ("data.options.rationales[0]", "/r1"),
        ("data.options.rationales[1]", "/r2"), ("perturbation.scores_file", "/s.jsonl"),
        ("student.name", "/models/gemma")])
    # Hub ids and built-in students are not paths; a rationale set's bare name is its folder under
    # the state folder (never the working folder).
    from cotdistill.data.rationale_set import sets_root
    assert list(config_paths({"data": {"name": "rationale-set", "options": {"path": "cqa-smollm2"}},
                              "student": {"name": "smollm2-135m"}})) == [
        ("data.options.path", str(sets_root() / "cqa-smollm2"))]
    assert list(config_paths({"data": {"name": "allenai/openbookqa"}, "student": {"name": "gpt2"}})) == []


def test_a_run_config_reading_etc_passwd_is_refused(roots):
    cfg = {"data": {"name": "file", "options": {"path": "/etc/passwd", "format": "csv"}}}
    with pytest.raises(Refused, match=r"^data\.options\.path: the path '/etc/passwd' is outside"):
        check_config_paths(cfg, roots)
    check_config_paths({"data": {"name": "file", "options": {"path": str(roots[0] / "mine.csv")}}}, roots)


def test_the_jobs_api_refuses_paths_before_reading_anything(tmp_path, monkeypatch):
    from worker import api
    from worker.api.runs import _check_matrix_paths
    from worker.experiments import Matrix
    monkeypatch.setenv("COTDISTILL_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("COTDISTILL_ALLOWED_PATHS", raising=False)
    with pytest.raises(Refused, match="data.options.path: the path '/etc/passwd'"):
        api.dataset_examples("file", "train", options={"path": "/etc/passwd", "format": "csv",
                                                       "columns": {"question": "root:x:0:0:root:/root:/bin/bash"}})
    base = {"data": {"name": "file", "options": {"path": "/etc/passwd", "format": "csv"}}}
    with pytest.raises(Refused, match="data.options.path"):
        _check_matrix_paths(Matrix("leak", base, {"seed": [0]}))
    with pytest.raises(Refused, match="path: the path '/etc'"):
        api.register_rationale_set("/etc")
    with pytest.raises(Refused, match="perturbation.scores_file"):
        api.preview({"data": {"name": "synthetic-count"}}, [{"perturbation": {
            "kind": "key_tokens", "scores_file": "/etc/shadow", "params": {"k": 2}}}])


def _secret_outside(tmp_path) -> Path:
    secret = tmp_path / "outside" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text("top secret line one\ntop secret line two\n")
    return secret


def test_hole1_a_loader_option_naming_a_file_outside_the_roots_is_refused_everywhere(tmp_path, monkeypatch):
    """`rationales` (a file option of the `file` loader) was not recognised as a path: browse, data
    report, a submitted run and an attribution job read the file line by line."""
    from worker import api
    from worker.api.imports import dataset_report
    from worker.api.runs import _check_matrix_paths
    from worker.experiments import Matrix
    data = tmp_path / "data"
    data.mkdir()
    (data / "mine.csv").write_text("question,choices,label\nq1,a|b,a\nq2,a|b,b\n")
    monkeypatch.setenv("COTDISTILL_DATA_DIR", str(data))
    monkeypatch.setenv("COTDISTILL_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("COTDISTILL_ALLOWED_PATHS", raising=False)
    secret = _secret_outside(tmp_path)
    options = {"path": str(data / "mine.csv"), "choices_sep": "|", "rationales": str(secret)}
    for call in (lambda: api.dataset_examples("file", "train", options=options),
                 lambda: dataset_report("file", ["train"], options=options),
                 lambda: _check_matrix_paths(Matrix("leak", {"data": {"name": "file", "options": options}},
                                                    {"seed": [0]})),
                 lambda: check_job("attribution", {"data": {"name": "file", "options": options, "split": "train"},
                                                   "source": {"model": "tiny"}}),
                 lambda: api.dataset_examples("file", "train", options={**options, "rationales": [str(secret)]})):
        with pytest.raises(Refused, match=r"data\.options\.rationales(\[0\])?: the path .* is outside") as e:
            call()
        assert "top secret" not in str(e.value)


def test_every_registered_dataset_declares_its_path_options():
    """A loader parameter typed as a Path, or an option named like a file, must be declared in its
    spec's path_options; so option_paths (and every confinement) sees it by construction."""
    import inspect
    import re
    from cotdistill.data import DATASETS, option_paths
    pathlike = re.compile(r"path|file|folder|dir|root|rationales|scores", re.I)
    for name, spec in DATASETS.items():
        params = inspect.signature(spec.loader).parameters
        for option in spec.options:
            annotation = str(params[option].annotation) if option in params else ""
            if "Path" in annotation or pathlike.search(option):
                assert option in spec.path_options, f"{name}: option {option!r} reads a file but is not declared"
        for option in spec.path_options:
            assert option in spec.options, f"{name}: declared path option {option!r} is not an option"
            assert [k for k, _ in option_paths(name, {option: "/etc/passwd"})] == [f"data.options.{option}"]
    assert [name for name, spec in DATASETS.items() if spec.path_options] == ["file", "rationale-set"]


def test_hole2_a_bare_set_name_is_never_looked_up_in_the_working_folder(tmp_path, monkeypatch):
    """A bare rationale-set name used to be tried in the process's working folder first (outside every
    root), and `~` was expanded before the root check, so a refusal told what exists at home."""
    from cotdistill.data import load_examples
    from cotdistill.data.rationale_set import resolve
    from cotdistill.errors import DataError
    from cotdistill.examples import Example
    from cotdistill.data.store import Origin, record_of, write_rationale_set
    from worker import api
    monkeypatch.setenv("COTDISTILL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COTDISTILL_DATA_DIR", str(tmp_path / "data"))
    work = tmp_path / "work"
    work.mkdir()
    ex = Example(id="1", question="a question from the working folder", choices=["x", "y"], label="a",
                 rationale="r")
    write_rationale_set(work / "cwdset", [record_of(ex, "train")], Origin("file", {"name": "t"}, has_teacher=False))
    monkeypatch.chdir(work)
    with pytest.raises(DataError, match="not a rationale set folder") as e:
        load_examples("rationale-set", "train", path="cwdset")
    assert str(tmp_path / "home") in str(e.value.file)
    with pytest.raises(DataError, match="not a rationale set folder"):
        api.register_rationale_set("cwdset")
    assert resolve("./cwdset") == Path("cwdset")          # a path typed as one still works on the CLI
    fake_home = tmp_path / "userhome"
    (fake_home / ".ssh").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(fake_home))
    answers = set()
    for probe in ("~/.ssh", "~/nothing-here", "~"):
        for call in (lambda: api.register_rationale_set(probe), lambda: resolve(probe),
                     lambda: check_config_paths({"data": {"name": "rationale-set", "options": {"path": probe}}})):
            with pytest.raises((Refused, DataError)) as e:
                call()
            assert str(fake_home) not in str(e.value) and str(fake_home) not in str(getattr(e.value, "file", ""))
            answers.add(str(e.value).replace(f"the path {probe!r}", "the path <probe>"))
    assert len(answers) == 3                               # one answer per call, whatever exists


# ------------------------------------------------------------------------------------------ teachers

@pytest.mark.parametrize("name,env,allowed", [
    ("OPENAI_API_KEY", {}, False),                         # nothing by default: no pattern defaults
    ("WANDB_API_KEY", {}, False),
    ("VLLM_API_KEY", {"COTDISTILL_TEACHER_KEYS": "VLLM_API_KEY"}, True),
    ("COTDISTILL_PASSWORD", {}, False),
    ("COTDISTILL_DATABASE_URL", {}, False),
    ("COTDISTILL_TEACHER_API_KEY", {"COTDISTILL_TEACHER_KEYS": "COTDISTILL_TEACHER_API_KEY"}, False),
    ("HOME", {}, False),
    ("LAB_TOKEN", {"COTDISTILL_TEACHER_KEYS": "LAB_TOKEN, VLLM_*"}, True),
    ("VLLM_KEY", {"COTDISTILL_TEACHER_KEYS": "LAB_TOKEN, VLLM_*"}, False),   # exact names, no globs
    ("OPENAI_API_KEY", {"COTDISTILL_TEACHER_KEYS": "LAB_TOKEN"}, False),
    ("COTDISTILL_PASSWORD", {"COTDISTILL_TEACHER_KEYS": "COTDISTILL_PASSWORD"}, False),
    ("PGPASSWORD", {"COTDISTILL_TEACHER_KEYS": "PGPASSWORD"}, False),
    ("OPENAI_API_KEY", {"COTDISTILL_TEACHER_KEY_VARS": "*"}, False),          # the old variable is gone
])
def test_key_variable_allow_list(name, env, allowed):
    assert key_var_allowed(name, env) is allowed


@pytest.mark.parametrize("url,prefixes,allowed", [
    ("http://127.0.0.1:8000/v1", "", True),
    ("ftp://127.0.0.1/v1", "", False),
    ("http://vllm.lab:8000/v1", "http://vllm.lab:8000/", True),
    ("http://VLLM.lab:8000/v1", "http://vllm.lab:8000", True),
    ("http://vllm.lab:8001/v1", "http://vllm.lab:8000/", False),
    ("http://vllm.lab.evil.org:8000/v1", "http://vllm.lab", False),
    ("https://api.openai.com/v1", "http://vllm.lab:8000/, https://api.openai.com/v1", True),
    ("https://api.openai.com/v10", "https://api.openai.com/v1", False),
    ("http://vllm.lab:8000/ok/../../other", "http://vllm.lab:8000/ok", False),
    ("http://vllm.lab:8000/ok/%2e%2e/%2E%2E/other", "http://vllm.lab:8000/ok", False),
    ("http://vllm.lab:8000/ok/..%2fother", "http://vllm.lab:8000/ok", False),
    ("http://vllm.lab:8000/ok/./v1", "http://vllm.lab:8000/ok", False),
    ("http://vllm.lab:8000\\@evil.org/ok", "http://vllm.lab:8000/ok", False),
    ("http://vllm.lab:8000@evil.org/ok", "http://vllm.lab:8000/ok", False),
    ("http://user:pw@vllm.lab:8000/ok", "http://vllm.lab:8000/ok", False),
    ("http://vllm.lab:8000/ok?x=/ok", "http://vllm.lab:8000/ok", False),
    ("HTTP://VLLM.LAB:8000//ok/v1", "http://vllm.lab:8000/ok", True),
    ("http://vllm.lab:80/ok/v1", "http://vllm.lab/ok", True),
    ("http://vllm.lab./ok/v1", "http://vllm.lab/ok", True),
])
def test_teacher_url_prefixes(url, prefixes, allowed):
    assert url_allowed(url, {"COTDISTILL_TEACHER_URLS": prefixes}) is allowed


def test_check_teacher_says_why(monkeypatch):
    with pytest.raises(Refused, match=r"^teacher.api_key_env: the variable COTDISTILL_PASSWORD may not be sent"):
        check_teacher({"kind": "http", "base_url": "http://x/v1", "api_key_env": "COTDISTILL_PASSWORD"}, {})
    with pytest.raises(Refused, match=r"^teacher.api_key_env: the variable VLLM_API_KEY may not be sent to a "
                                      r"teacher: the operator lists .* in COTDISTILL_TEACHER_KEYS \(now: none\)"):
        check_teacher({"kind": "http", "base_url": "http://vllm.lab:8000/v1", "api_key_env": "VLLM_API_KEY"}, {})
    with pytest.raises(Refused, match=r"^teacher.base_url: 'http://evil:1/v1' is not an allowed teacher URL"):
        check_teacher({"kind": "http", "base_url": "http://evil:1/v1"},
                      {"COTDISTILL_TEACHER_URLS": "http://vllm.lab:8000/"})
    check_teacher({"kind": "http", "base_url": "http://vllm.lab:8000/v1", "api_key_env": "VLLM_API_KEY"},
                  {"COTDISTILL_TEACHER_KEYS": "VLLM_API_KEY"})


class Listener:
    """A real HTTP listener on 127.0.0.1 that records every request it receives."""

    def __init__(self):
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        self.requests = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                outer.requests.append(dict(self.headers))
                self.send_response(500)
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def close(self):
        self.server.shutdown()


def test_the_app_password_cannot_be_sent_to_a_listener(tmp_path, monkeypatch):
    """Through the API (refused at submit) and through a job row written by hand (refused by the worker
    before it reads the key): the listener receives nothing either way."""
    from tests.worker.stack import JobStack, wait_job
    from worker import api
    from worker.jobs import create
    from worker.models import Job
    monkeypatch.setenv("COTDISTILL_PASSWORD", "correct horse battery")
    stack, listener = JobStack(tmp_path, monkeypatch), Listener()
    try:
        teacher = {"kind": "http", "base_url": listener.url, "model": "x", "api_key_env": "COTDISTILL_PASSWORD",
                   "max_retries": 0}
        dataset = {"name": "synthetic-count", "options": {"n_test": 3}, "splits": ["test"], "n": 3}
        with pytest.raises(Refused, match="COTDISTILL_PASSWORD may not be sent"):
            api.submit_generation(dataset, teacher)
        assert api.list_jobs() == []
        with api.session() as s:                                    # bypass the API
            job_id = create(s, "generation", {"dataset": dataset, "teacher": teacher, "prompt": {},
                                              "decoding": {"max_new_tokens": 8}, "batch_size": 1})
            s.commit()
            assert s.get(Job, job_id) is not None
        stack.start_worker("w1")
        from worker.reconcile import send
        with api.session() as s:
            send(s, [job_id], model=Job)
        job = wait_job(job_id, logs=stack.logs, until=lambda j: j["status"] in ("succeeded", "failed"), timeout=120)
        assert job["status"] == "failed" and "COTDISTILL_PASSWORD may not be sent" in job["error"]
        assert "correct horse" not in job["error"]
        assert listener.requests == []
    finally:
        stack.close()
        listener.close()


def test_check_job_covers_generation_and_attribution_paths(roots):
    with pytest.raises(Refused, match=r"^dataset.options.path"):
        check_job("generation", {"dataset": {"name": "file", "options": {"path": "/etc/passwd"}},
                                 "teacher": {"kind": "local", "model": "smollm2-135m"}}, roots)
    with pytest.raises(Refused, match=r"^teacher.model"):
        check_job("generation", {"dataset": {"name": "synthetic-count"},
                                 "teacher": {"kind": "local", "model": "/root/.ssh"}}, roots)
    with pytest.raises(Refused, match=r"^source.model"):
        check_job("attribution", {"data": {"name": "synthetic-count"}, "source": {"model": "/opt/weights"}}, roots)
    check_job("attribution", {"data": {"name": "synthetic-count"}, "source": {"student": {"name": "tiny"}}}, roots)


@pytest.mark.parametrize("name", ["../escape", "a/b", ".hidden", "x" * 121, "a..b", "", 5])
def test_a_generation_set_name_cannot_leave_the_rationale_sets_folder(roots, name):
    from worker.generation_job import set_dir

    params = {"dataset": {"name": "synthetic-count"}, "teacher": {"kind": "local", "model": "tiny"},
              "name": name}
    with pytest.raises(Refused, match=r"^name (is empty|must be text|has 121 characters|'.*' may hold only)"):
        check_job("generation", params, roots)
    with pytest.raises(Refused, match=r"^name "):                  # the worker refuses it too
        set_dir(params, 7)


def test_a_plain_generation_set_name_is_kept():
    from worker.generation_job import set_dir

    params = {"dataset": {"name": "synthetic-count"}, "name": "cqa-gpt4@2"}
    assert set_dir(params, 7).name == "cqa-gpt4@2" and set_dir({**params, "name": None}, 7).name == "synthetic-count-job7"
