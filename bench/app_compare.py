"""The Compare page's first render on a study-sized database, through Streamlit's AppTest.

    .venv/bin/python bench/app_compare.py

Seeds the same database as bench/db_scale.py (one experiment of 200 succeeded runs × 1,221
predictions, curves), then renders the app's Compare page for that experiment with a cold query
cache, three times, and prints the times. Baseline in the same run: the jobs-API calls the page makes
(list_runs, compare, curves) timed alone, so the ratio shows what the page itself adds (Plotly figures,
tables, widgets). Goal: first render under 2 s.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def render(experiment: str) -> float:
    import streamlit as st
    from streamlit import config
    from streamlit.testing.v1 import AppTest
    config.set_option("server.address", "127.0.0.1")       # as `cotdistill up` runs it: no password
    st.cache_data.clear()
    at = AppTest.from_file(str(ROOT / "app" / "main.py"), default_timeout=120)
    at.query_params["experiment"] = experiment
    at.run()
    t0 = time.perf_counter()
    at.switch_page("screens/compare.py").run()
    seconds = time.perf_counter() - t0
    if at.exception:
        raise RuntimeError([e.value for e in at.exception])
    if not at.get("plotly_chart"):
        raise RuntimeError("the Compare page rendered no chart")
    return seconds


def main() -> None:
    home = Path(tempfile.mkdtemp(prefix="cotdistill-appbench-"))
    url = f"sqlite:///{home / 'scale.db'}"
    os.environ.update({"COTDISTILL_HOME": str(home), "COTDISTILL_DATABASE_URL": url})
    from db_scale import seed_database
    t0 = time.perf_counter()
    experiment_id, run_ids = seed_database(url)
    print(f"seeded {len(run_ids)} runs x 1221 predictions in {time.perf_counter() - t0:.1f} s")

    from worker import api
    api.list_experiments()
    t0 = time.perf_counter()
    runs = api.list_runs(experiment=experiment_id)
    api.compare([r["id"] for r in runs])
    api.curves([r["id"] for r in runs], "loss")
    baseline = time.perf_counter() - t0

    times = [render("scale") for _ in range(3)]
    first = times[0]
    print(f"\nCompare page, 200-run experiment, cold query cache (AppTest): first render {first:.2f} s, "
          f"then {times[1]:.2f} s, {times[2]:.2f} s")
    print(f"baseline: the page's jobs-API calls alone {baseline:.2f} s; page / API = {first / baseline:.1f}x")
    print(f"goal: first render < 2 s: {'met' if first < 2 else 'NOT met'}")


if __name__ == "__main__":
    main()
