"""The first screen at 1,400 × 900 px in a real browser (headless Chromium; no worker, no training: a
database written as a worker writes it): the Launch button is in view without scrolling, and the Runs
table shows ETA and accuracy within its first screen width.

Needs the Debian package `chromium` (apt-get install -y chromium); never `playwright install`.
"""

import os
import subprocess
import sys

import pytest

from tests.app.test_app_browser import CHROMIUM, CHROMIUM_ARGS, wait_healthy
from tests.worker.stack import BASE, ROOT, free_port

WIDTH, HEIGHT = 1400, 900


@pytest.fixture
def app(tmp_path, monkeypatch):
    """The app alone on a free port, over a database with one experiment: a run finished, one in its
    evaluation, two queued."""
    if not CHROMIUM.exists():
        pytest.fail(f"Chromium is not installed ({CHROMIUM} is missing): run `apt-get install -y chromium`")
    from tests.app.apptest import use_fresh_database
    from worker import api, state
    use_fresh_database(tmp_path, monkeypatch)
    ids = api.submit_matrix({"name": "layout", "base": BASE,
                             "factors": {"placement": ["none", "after"], "seed": [0, 1]}})["queued"]
    with api.session() as s:
        assert state.claim(s, ids[0], "w:1") and state.complete(s, ids[0], "w:1", {"accuracy": 0.625, "n": 12}, [])
        assert state.claim(s, ids[1], "w:1") and state.heartbeat(s, ids[1], "w:1", step=10, progress={
            "phase": "evaluate", "step": 10, "total": 10, "phase_done": 4, "phase_total": 12, "phase_eta_s": 8.0})
    env = {k: v for k, v in os.environ.items() if k not in ("COTDISTILL_BROKER_URL", "COTDISTILL_PASSWORD")}
    port, log = free_port(), tmp_path / "app.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(ROOT / "app" / "main.py"),
                                 "--server.address", "127.0.0.1", "--server.port", str(port),
                                 "--server.headless", "true", "--browser.gatherUsageStats", "false",
                                 "--client.toolbarMode", "minimal"], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", proc, log)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(30)


def in_view(box: dict | None) -> bool:
    return box is not None and box["x"] >= 0 and box["y"] >= 0 and \
        box["x"] + box["width"] <= WIDTH and box["y"] + box["height"] <= HEIGHT


def test_launch_and_the_runs_eta_and_accuracy_are_in_the_first_screen(app):
    from playwright.sync_api import expect, sync_playwright

    from app.tables import RUN_COLUMNS
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
            page.goto(app)
            launch = page.get_by_role("button", name="Launch 9 new run(s)")
            expect(launch).to_be_visible(timeout=90_000)
            assert page.evaluate("window.scrollY") == 0
            assert in_view(launch.bounding_box()), launch.bounding_box()

            page.goto(f"{app}/runs?experiment=layout")
            expect(page.get_by_text("4 run(s):")).to_be_visible(timeout=60_000)
            grid = page.locator('[data-testid="stDataFrame"]').first
            expect(grid).to_be_visible(timeout=30_000)
            box = grid.bounding_box()
            assert box is not None and box["y"] + 60 < HEIGHT and box["x"] + box["width"] <= WIDTH, box
            # The grid draws on a canvas; its accessible table holds the columns in view (not all of them).
            headers = page.locator('[data-testid="stDataFrame"] [role="columnheader"]')
            expect(headers.first).to_be_attached(timeout=30_000)
            shown = [headers.nth(i).inner_text().strip() for i in range(headers.count())]
            assert len(shown) < len(RUN_COLUMNS), shown
            assert {"ETA", "accuracy", "progress", "status"} <= set(shown), shown
        finally:
            browser.close()
