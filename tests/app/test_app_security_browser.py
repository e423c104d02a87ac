"""Two holes checked against a real `streamlit run` server in headless Chromium (playwright, never
`playwright install`): the sign-in throttle survives reconnects from an address Streamlit does not
report (127.0.0.1: everyone behind a local proxy or tunnel), and data text with a backtick and an
image link stays text on the Datasets page (the viewer's browser fetches nothing).

Needs the Debian package `chromium` (apt-get install -y chromium).
"""

import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.app.test_app_browser import CHROMIUM, CHROMIUM_ARGS, wait_healthy
from tests.worker.stack import ROOT, free_port

PASSWORD = "correct horse battery staple"


class Beacon:
    """An HTTP listener on 127.0.0.1 that records the path of every request it receives."""

    def __init__(self):
        self.requests = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                outer.requests.append(self.path)
                self.send_response(204)
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/beacon"

    def close(self):
        self.server.shutdown()


def start_app(tmp_path, address: str, env_extra: dict | None = None):
    env = {k: v for k, v in os.environ.items() if k not in ("COTDISTILL_BROKER_URL", "COTDISTILL_PASSWORD")}
    env.update(env_extra or {})
    port, log = free_port(), tmp_path / "app.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(ROOT / "app" / "main.py"),
                                 "--server.address", address, "--server.port", str(port),
                                 "--server.headless", "true", "--browser.gatherUsageStats", "false"],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    wait_healthy(url, proc, log)
    return url, proc


@pytest.fixture
def fresh(tmp_path, monkeypatch):
    if not CHROMIUM.exists():
        pytest.fail(f"Chromium is not installed ({CHROMIUM} is missing): run `apt-get install -y chromium`")
    from tests.app.apptest import use_fresh_database
    use_fresh_database(tmp_path, monkeypatch)
    return tmp_path


def test_hole4_the_sign_in_throttle_survives_reconnects_without_a_client_address(fresh):
    """Exposed on every interface, reached on 127.0.0.1 (Streamlit reports no address): each guess from
    a new browser context (a new session); the sixth waits, even with the right password."""
    from playwright.sync_api import expect, sync_playwright
    url, proc = start_app(fresh, "0.0.0.0", {"COTDISTILL_PASSWORD": PASSWORD})
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                def attempt(password: str) -> str:
                    context = browser.new_context()                # a new session: a reconnect
                    page = context.new_page()
                    page.goto(url)
                    field = page.get_by_label("Password", exact=True)
                    expect(field).to_be_visible(timeout=60_000)
                    field.fill(password)
                    page.get_by_role("button", name="Sign in").click()
                    answer = page.get_by_text("Wrong password.").or_(page.get_by_text("Too many wrong passwords"))
                    expect(answer).to_be_visible(timeout=30_000)
                    text = answer.inner_text()
                    context.close()
                    return text

                # Each page load takes seconds, so the first waits (1 s, 2 s) may pass before the next
                # guess; the growing ones (4 s, 8 s, 16 s, 32 s) do not. Before the fix every reconnect
                # started afresh and no guess was ever throttled. (That the right password is refused
                # within the wait is tested in test_app_auth.py, without page loads' timing.)
                answers = [attempt("wrong-guess-123") for _ in range(5)]
                assert answers == ["Wrong password."] * 5
                for _ in range(6):
                    answers.append(attempt("wrong-guess-123"))
                    if answers[-1].startswith("Too many"):
                        break
                assert answers[-1].startswith("Too many wrong passwords: wait"), answers
            finally:
                browser.close()
    finally:
        proc.terminate()
        proc.wait(30)


def test_hole5_a_choice_with_a_backtick_and_an_image_link_stays_text(fresh):
    """A rationale set whose question and choice hold "`" and ![x](http://127.0.0.1:PORT/beacon): the
    Datasets page shows both literally and the listener receives no request."""
    from playwright.sync_api import expect, sync_playwright
    from cotdistill.data.rationale_set import sets_root
    from cotdistill.examples import Example
    from cotdistill.data.store import Origin, record_of, write_rationale_set
    listener = Beacon()
    beacon = listener.url
    payload = f"a` ![x]({beacon}) `b"
    ex = Example(id="e1", question=f"Which one? {payload}", choices=[payload, "plain"], label="a",
                 rationale=f"because {payload}", teacher_label="a")
    write_rationale_set(sets_root() / "inject", [record_of(ex, "train")], Origin("file", {"name": "t"}))
    url, proc = start_app(fresh, "127.0.0.1")
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 3000})
                page.goto(f"{url}/datasets")
                choices = page.locator("p").filter(has_text="Choices:").filter(has_text="beacon")
                expect(choices).to_be_visible(timeout=90_000)
                expect(page.locator("div").get_by_text(f"Which one? {payload}", exact=True).last).to_be_visible(
                    timeout=30_000)
                assert choices.inner_text() == f"Choices: {payload} · plain", choices.inner_text()
                assert page.locator(f'img[src*="/beacon"]').count() == 0
                time.sleep(2)
            finally:
                browser.close()
        assert listener.requests == []
    finally:
        proc.terminate()
        proc.wait(30)
        listener.close()
