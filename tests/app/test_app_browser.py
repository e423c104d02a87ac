"""End to end in a real browser: `cotdistill up` (workers + app), headless Chromium launches a 2-run
experiment from the Launch page, watches both finish on the Runs page, and sees their bars on Compare;
then Ctrl-C (SIGINT) stops the stack cleanly.

Needs the Debian packages `chromium` and `chromium-driver` (apt-get install -y chromium chromium-driver);
without them the test fails and says so.
"""

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from tests.worker.stack import FAST, ROOT, free_port, share_tokenizers

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-dev-shm-usage"]
OPTIONS = {"n_train": 48, "n_test": 12, "n_items": 3, "n_objects": 12, "n_colours": 3}


def wait_healthy(url: str, proc: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"`cotdistill up` exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"the app did not answer on {url} within {timeout:.0f} s:\n{log.read_text()[-4000:]}")


@pytest.fixture
def stack(tmp_path):
    """`python -m worker.cli up` on a free port, its state in tmp_path, the fast test timings."""
    if not CHROMIUM.exists():
        pytest.fail(f"Chromium is not installed ({CHROMIUM} is missing): run "
                    f"`apt-get install -y chromium chromium-driver` (never `playwright install`)")
    home = tmp_path / "home"
    home.mkdir()
    share_tokenizers(home)
    env = {k: v for k, v in os.environ.items()
           if k not in ("COTDISTILL_DATABASE_URL", "COTDISTILL_BROKER_URL", "COTDISTILL_RESULT_BACKEND",
                        "COTDISTILL_PASSWORD")}
    env.update(FAST, COTDISTILL_HOME=str(home), COTDISTILL_ARTIFACTS=str(home / "artifacts"))
    port, log = free_port(), tmp_path / "up.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "worker.cli", "up", "--port", str(port)], cwd=ROOT,
                                env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc, log)
        # Screenshots of every page go to the test's output folder (or $COTDISTILL_SCREENSHOTS).
        shots = Path(os.environ.get("COTDISTILL_SCREENSHOTS") or tmp_path / "screenshots")
        shots.mkdir(parents=True, exist_ok=True)
        yield SimpleNamespace(url=url, proc=proc, log=log, shots=shots)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def fill(page, label: str, value: str) -> None:
    """Type into a Streamlit input and commit it (Enter), as a user would."""
    box = page.get_by_label(label, exact=True)
    box.fill(value)
    box.press("Enter")
    page.wait_for_timeout(300)


def test_launch_watch_and_compare_in_a_browser(stack):
    from playwright.sync_api import expect, sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1800})
            page.goto(stack.url)
            expect(page.get_by_role("heading", name="Launch an experiment")).to_be_visible(timeout=90_000)
            # client.toolbarMode = minimal: no Deploy button, no developer menu (even on 127.0.0.1)
            expect(page.get_by_test_id("stAppDeployButton")).to_have_count(0)
            expect(page.get_by_test_id("stMainMenuButton")).to_have_count(0)
            launch_from_the_form(page, stack.shots)
            page.get_by_role("link", name="Watch its runs").click()
            expect(page.get_by_role("heading", name="Runs")).to_be_visible(timeout=30_000)
            expect(page.get_by_text("2 run(s): 2 succeeded")).to_be_visible(timeout=240_000)
            page.screenshot(path=str(stack.shots / "runs.png"), full_page=True)
            page.get_by_role("link", name="Compare this experiment's arms").click()
            expect(page.get_by_role("heading", name="Accuracy")).to_be_visible(timeout=30_000)
            expect(page.locator(".js-plotly-plot .barlayer .point")).to_have_count(2, timeout=60_000)
            page.screenshot(path=str(stack.shots / "compare.png"), full_page=True)
            for title, heading in [("Examples", "Examples"), ("Datasets", "Datasets"), ("Teacher", "Teacher"),
                                   ("Key tokens", "Key tokens")]:
                page.get_by_role("link", name=title, exact=True).first.click()
                expect(page.get_by_role("heading", name=heading).first).to_be_visible(timeout=60_000)
                page.wait_for_timeout(1500)
                page.screenshot(path=str(stack.shots / f"{title.lower().replace(' ', '-')}.png"), full_page=True)
        finally:
            browser.close()
    stack.proc.send_signal(signal.SIGINT)                # Ctrl-C
    assert stack.proc.wait(60) == 0
    assert "cotdistill up: stopped" in stack.log.read_text()
    assert {p.name for p in stack.shots.glob("*.png")} == {
        "launch.png", "runs.png", "compare.png", "examples.png", "datasets.png", "teacher.png", "key-tokens.png"}


def launch_from_the_form(page, shots: Path) -> None:
    """Two runs (placements none and after, seed 0) of the tiny student on synthetic-count."""
    from playwright.sync_api import expect
    fill(page, "Experiment name", "e2e")
    page.get_by_text("Loader options (YAML)").click()
    options = page.get_by_label("Options passed to the dataset loader", exact=True)
    options.fill(yaml.safe_dump(OPTIONS))
    options.press("Control+Enter")
    for label, value in [("Training examples (0 = all)", "48"), ("Test examples (0 = all)", "12"),
                         ("Tiny student's vocabulary", "300"), ("Max sequence length (tokens)", "128"),
                         ("Seeds", "0"), ("Training steps", "6"), ("Batch size", "8"), ("Learning rate", "0.003"),
                         ("Warmup steps", "2")]:
        fill(page, label, value)
    launch = page.get_by_role("button", name="Launch 2 new run(s)")
    expect(launch).to_be_enabled(timeout=60_000)
    page.screenshot(path=str(shots / "launch.png"), full_page=True)
    launch.click()
    expect(page.get_by_text("Launched experiment 'e2e': 2 run(s) queued")).to_be_visible(timeout=60_000)
