"""Which secrets a teacher may send, and where (cotdistill/teachers/access.py). The leaks are tried
against a real HTTP listener on 127.0.0.1, which must receive nothing."""

import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from cotdistill.teachers import TeacherError
from cotdistill.teachers.access import allowed_keys, key_problem, normalise_url, url_problem
from tests.conftest import ROOT


class Listener:
    """Records every request (path and headers) it receives; answers 500."""

    def __init__(self):
        self.requests = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                outer.requests.append((self.path, dict(self.headers)))
                self.send_response(500)
                self.end_headers()

            do_GET = do_POST

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def close(self):
        self.server.shutdown()


@pytest.fixture
def listener():
    one = Listener()
    yield one
    one.close()


@pytest.mark.parametrize("url,expected", [
    ("http://localhost:8000/v1", "http://localhost:8000/v1"),
    ("HTTP://Vllm.LAB:8000/v1/", "http://vllm.lab:8000/v1"),
    ("https://api.openai.com:443/v1", "https://api.openai.com/v1"),
    ("http://vllm.lab:80//v1", "http://vllm.lab/v1"),
    ("http://vllm.lab.", "http://vllm.lab/"),
    ("  http://[::1]:9000/v1 ", "http://[::1]:9000/v1"),
    ("http://vllm_server:8000", "http://vllm_server:8000/"),
])
def test_normalise_url(url, expected):
    assert normalise_url(url) == expected


@pytest.mark.parametrize("url,problem", [
    ("http://h/ok/../../other", "'..' segment"),
    ("http://h/ok/%2E%2e/other", "'..' segment"),
    ("http://h/ok/.%2fother", "encoded separator"),
    ("http://h\\@evil/ok", "backslash"),
    ("http://user:pw@h/ok", "credentials"),
    ("http://h@evil.org/ok", "credentials"),
    ("http://h/ok?x=1", "query or a fragment"),
    ("http://h/ok#x", "query or a fragment"),
    ("http://h/o k", "space"),
    ("ftp://h/ok", "not an http(s) URL"),
    ("http://h:99999/ok", "port"),
    ("http://h$x/ok", "host name"),
    ("", "empty"),
])
def test_normalise_url_refuses_what_could_mislead_an_allow_list(url, problem):
    with pytest.raises(TeacherError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        normalise_url(url)


def test_keys_follow_the_operators_exact_list_and_never_the_apps_own():
    assert allowed_keys({"COTDISTILL_TEACHER_KEYS": " OPENAI_API_KEY, LAB_TOKEN ,,"}) == ("OPENAI_API_KEY", "LAB_TOKEN")
    assert key_problem("WANDB_API_KEY", {}) == (
        "the variable WANDB_API_KEY may not be sent to a teacher: the operator lists the variables teachers "
        "may use, by exact name, in COTDISTILL_TEACHER_KEYS (now: none)")
    assert key_problem("OPENAI_API_KEY", {"COTDISTILL_TEACHER_KEYS": "OPENAI_API_KEY"}) is None
    assert key_problem("OPENAI_API_KEY", {}, named_by_user=True) is None
    for never in ("COTDISTILL_PASSWORD", "COTDISTILL_DATABASE_URL", "PGPASSWORD", "REDIS_URL"):
        assert "never are" in key_problem(never, {"COTDISTILL_TEACHER_KEYS": never}, named_by_user=True)
    assert key_problem("A-B", {}, named_by_user=True) == "'A-B' is not an environment variable name (letters, digits and '_')"
    assert url_problem("http://vllm.lab:8000/ok/../../other", {"COTDISTILL_TEACHER_URLS": "http://vllm.lab:8000/ok"})
    assert url_problem("http://VLLM.lab:8000/ok/v1", {"COTDISTILL_TEACHER_URLS": "http://vllm.lab:8000/ok"}) is None


def test_hole3_no_environment_secret_leaves_by_default(listener, tmp_path, monkeypatch):
    """Through the jobs API: a WANDB_API_KEY (any *_API_KEY on main) and a URL that walks out of the
    allowed prefix with `..` are refused before a job row exists; the listener hears nothing."""
    from worker import api
    from worker.guard import Refused
    from worker.db import upgrade
    monkeypatch.setenv("COTDISTILL_HOME", str(tmp_path / "home"))
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    monkeypatch.setenv("COTDISTILL_DATABASE_URL", url)
    upgrade(url)
    monkeypatch.setenv("WANDB_API_KEY", "wandb-secret-value")
    monkeypatch.delenv("COTDISTILL_TEACHER_KEYS", raising=False)
    monkeypatch.delenv("COTDISTILL_TEACHER_URLS", raising=False)
    dataset = {"name": "synthetic-count", "options": {"n_test": 3}, "splits": ["test"], "n": 3}
    teacher = {"kind": "http", "base_url": listener.url, "model": "x", "api_key_env": "WANDB_API_KEY"}
    with pytest.raises(Refused, match="WANDB_API_KEY may not be sent to a teacher"):
        api.submit_generation(dataset, teacher)
    allowed = listener.url.rsplit("/", 1)[0] + "/ok"
    monkeypatch.setenv("COTDISTILL_TEACHER_URLS", allowed)
    with pytest.raises(Refused, match=r"teacher\.base_url: .*'\.\.' segment"):
        api.submit_generation(dataset, {"kind": "http", "base_url": allowed + "/../../other", "model": "x"})
    assert api.list_jobs() == [] and listener.requests == []


def test_hole3_the_cli_never_sends_the_app_password(listener, tmp_path):
    """`cotdistill teacher generate --api-key-env COTDISTILL_PASSWORD --base-url …` sent the app's own
    password; a `..` URL is refused on the command line too."""
    env = {**os.environ, "COTDISTILL_HOME": str(tmp_path / "home"), "COTDISTILL_PASSWORD": "correct horse battery",
           "PYTHONPATH": str(ROOT)}
    base = [sys.executable, "-m", "cotdistill.cli", "teacher", "generate", "synthetic-count", "--split", "test",
            "--option", "n_test=3", "--n", "2", "--no-cache", "--out", str(tmp_path / "set")]
    done = subprocess.run([*base, "--base-url", listener.url, "--api-key-env", "COTDISTILL_PASSWORD"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "COTDISTILL_PASSWORD may not be sent to a teacher" in done.stderr
    done = subprocess.run([*base, "--base-url", listener.url + "/../x"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode != 0 and "'..' segment" in done.stderr
    assert listener.requests == []
