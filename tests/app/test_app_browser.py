"""End to end in a real browser: `cotdistill up` (workers + app), headless Chromium presses Launch on
the default matrix without changing anything but the name (the first experiment: label-only, after,
after · filler; 3 seeds, 9 runs), watches them finish on the Runs page, and reads on Compare the
difference that is real (after vs label-only: significant by the procedure-level test over the 3 seed
pairs) and, through the same page in AppTest on the same database, the one that is not (after · filler
vs label-only), with no `after` run flagged as a constant answer; then Ctrl-C (SIGINT) stops
the stack cleanly. The wall time from Launch to the last result is printed.

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

from tests.worker.stack import ROOT, free_port, share_tokenizers, sigint_as_from_a_terminal

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-dev-shm-usage"]
N_RUNS = 9          # label-only, after, after · filler; 3 seeds


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
    # The stack's own timings, as a user gets them (the tests' FAST polling and heartbeats cost the
    # 2-core machine training time), but checkpoints every 100 steps instead of 50.
    env.update(COTDISTILL_HOME=str(home), COTDISTILL_ARTIFACTS=str(home / "artifacts"),
               COTDISTILL_CHECKPOINT_EVERY="100")
    port, log = free_port(), tmp_path / "up.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "worker.cli", "up", "--port", str(port)], cwd=ROOT,
                                env=env, stdout=out, stderr=subprocess.STDOUT,
                                preexec_fn=sigint_as_from_a_terminal)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc, log)
        # Screenshots of every page go to the test's output folder (or $COTDISTILL_SCREENSHOTS).
        shots = Path(os.environ.get("COTDISTILL_SCREENSHOTS") or tmp_path / "screenshots")
        shots.mkdir(parents=True, exist_ok=True)
        yield SimpleNamespace(url=url, proc=proc, log=log, shots=shots, home=home)
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


def test_launch_watch_and_compare_in_a_browser(stack, monkeypatch):
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
            t0 = time.monotonic()
            page.get_by_role("link", name="Watch its runs").click()
            expect(page.get_by_role("heading", name="Runs")).to_be_visible(timeout=30_000)
            expect(page.get_by_text(f"{N_RUNS} run(s): {N_RUNS} succeeded")).to_be_visible(timeout=900_000)
            print(f"\nfirst experiment: {N_RUNS} runs, Launch to last result {time.monotonic() - t0:.0f} s "
                  f"(goal 300 s on 2 cores)")
            page.screenshot(path=str(stack.shots / "runs.png"), full_page=True)
            page.get_by_role("link", name="Compare this experiment's arms").click()
            expect(page.get_by_role("heading", name="Accuracy")).to_be_visible(timeout=30_000)
            expect(page.locator(".js-plotly-plot .barlayer .point")).to_have_count(3, timeout=60_000)
            # The default pair: the rationale after the label against label-only.
            expect(page.get_by_text("Significant at α = 0.05", exact=False).first).to_be_visible(timeout=60_000)
            page.screenshot(path=str(stack.shots / "compare.png"), full_page=True)
            for title, heading in [("Examples", "Examples"), ("Datasets", "Datasets"), ("Teacher", "Teacher"),
                                   ("Key tokens", "Key tokens")]:
                page.get_by_role("link", name=title, exact=True).first.click()
                expect(page.get_by_role("heading", name=heading).first).to_be_visible(timeout=60_000)
                page.wait_for_timeout(1500)
                page.screenshot(path=str(stack.shots / f"{title.lower().replace(' ', '-')}.png"), full_page=True)
        finally:
            browser.close()
    compare_both_pairs(stack.home, monkeypatch)
    stack.proc.send_signal(signal.SIGINT)                # Ctrl-C
    assert stack.proc.wait(60) == 0
    assert "cotdistill up: stopped" in stack.log.read_text()
    assert {p.name for p in stack.shots.glob("*.png")} == {
        "launch.png", "runs.png", "compare.png", "examples.png", "datasets.png", "teacher.png", "key-tokens.png"}


def compare_both_pairs(home: Path, monkeypatch) -> None:
    """The Compare page (AppTest, same database) on the two pairs of the first experiment."""
    from tests.app.apptest import open_page
    monkeypatch.setenv("COTDISTILL_HOME", str(home))
    for key in ("COTDISTILL_DATABASE_URL", "COTDISTILL_BROKER_URL", "COTDISTILL_PASSWORD"):
        monkeypatch.delenv(key, raising=False)
    from worker import api
    at = open_page("screens/compare.py", experiment="first")
    arms = {a["arm"]: a["arm_key"] for a in api.compare([r["id"] for r in api.list_runs(experiment="first")])}
    assert set(arms) == {"none", "after", "after/filler"}, arms
    said, runs = {}, {a["arm"]: a["runs"] for a in api.compare([r["id"] for r in api.list_runs(experiment="first")])}
    for arm in ("after", "after/filler"):
        at.selectbox(key="arm_a").set_value(arms[arm]).run()
        at.selectbox(key="arm_b").set_value(arms["none"]).run()
        said[arm] = [m.value for m in at.markdown if "at α = 0.05" in m.value]
    # What README "The first experiment" reports, by the procedure-level test over the 3 seed pairs:
    # `after` significantly above label-only, `after · filler` not; no `after` run is a constant answer
    # (label-only and filler runs may be, on some seeds: README's open point).
    after = api.paired(runs["after"], runs["none"])
    assert (after["verdict"], after["diff"] > 0) == ("significant", True), after["procedure"]
    assert said["after"][0].startswith("**Significant**"), said
    assert api.paired(runs["after/filler"], runs["none"])["verdict"] == "not significant"
    assert said["after/filler"][0].startswith("**Not significant**"), said
    flagged = [r["id"] for r in api.list_runs(experiment="first") if r["summary"].get("collapsed")]
    assert not set(flagged) & set(runs["after"]), flagged


def launch_from_the_form(page, shots: Path) -> None:
    """The default matrix, untouched but for the experiment's name."""
    from playwright.sync_api import expect
    fill(page, "Experiment name", "first")
    launch = page.get_by_role("button", name=f"Launch {N_RUNS} new run(s)")
    expect(launch).to_be_enabled(timeout=60_000)
    page.screenshot(path=str(shots / "launch.png"), full_page=True)
    launch.click()
    expect(page.get_by_text(f"Launched experiment 'first': {N_RUNS} run(s) queued")).to_be_visible(timeout=60_000)
