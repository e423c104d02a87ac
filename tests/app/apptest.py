"""Helpers of the app tests: open a page of the real app in AppTest, find widgets by label, read the
numbers out of a Plotly chart.

    at = open_page("screens/compare.py", experiment="exp1")
    bars = chart_traces(at, "bar")
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
from streamlit.testing.v1 import AppTest

from tests.worker.stack import wait_job  # noqa: F401 (the app tests import it from here)

MAIN = Path(__file__).resolve().parents[2] / "app" / "main.py"
TIMEOUT = 120


def open_page(page: str | None = None, **query: str) -> AppTest:
    """Run the app's entry point, then the page (a path under app/), with query parameters."""
    at = AppTest.from_file(str(MAIN), default_timeout=TIMEOUT)
    at.query_params.update(query)
    at.run()
    if page:
        at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def rerun_fresh(at: AppTest) -> AppTest:
    """Rerun without the app's short-lived query cache (as a user would see it a second later)."""
    import streamlit as st
    st.cache_data.clear()
    return at.run()


def widget(widgets, label: str):
    """The one widget of a list (at.number_input, at.button, …) with this label."""
    found = [w for w in widgets if w.label == label]
    assert len(found) == 1, f"{len(found)} widgets labelled {label!r} among {[w.label for w in widgets]}"
    return found[0]


def texts(at: AppTest) -> str:
    """Every markdown, caption, alert and title of the page, one per line."""
    parts = [e.value for kind in ("title", "header", "subheader", "markdown", "caption", "info", "warning",
                                  "error", "success") for e in getattr(at, kind)]
    return "\n".join(str(p) for p in parts)


def frame_with(at: AppTest, *columns: str):
    """The one dataframe of the page (as pandas) that has all these columns (dataframes carry no key)."""
    found = [d.value for d in at.dataframe if set(columns) <= set(d.value.columns)]
    assert len(found) == 1, f"{len(found)} dataframes with columns {columns}"
    return found[0]


def decode(value):
    """Plotly 7 writes numeric arrays as {"dtype", "bdata"} (base64); plain lists stay lists."""
    if isinstance(value, dict) and "bdata" in value:
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"]).tolist()
    return value


def chart(at: AppTest, key: str | None = None) -> dict:
    charts = at.get("plotly_chart")
    specs = [json.loads(c.proto.spec) for c in charts if key is None or key in c.proto.id]
    assert specs, "no plotly chart on the page"
    return specs[0]


def chart_traces(spec: dict, kind: str) -> list[dict]:
    return [t for t in spec["data"] if t.get("type", "scatter") == kind]


def html_bodies(at: AppTest) -> list[str]:
    return [h.proto.body for h in at.get("html")]


# ------------------------------------------------------------------------------------------ the job system

def use_fresh_database(folder: Path, mp) -> None:
    """Point the jobs API of this process at a new, migrated SQLite file under `folder`, with no worker: rows
    are then written as a worker writes them (worker.state.claim, complete)."""
    mp.setenv("COTDISTILL_HOME", str(folder))
    mp.setenv("COTDISTILL_DATABASE_URL", f"sqlite:///{folder / 'app.db'}")
    mp.setenv("COTDISTILL_ARTIFACTS", str(folder / "artifacts"))
    mp.delenv("COTDISTILL_BROKER_URL", raising=False)
    from worker.db import upgrade
    upgrade(f"sqlite:///{folder / 'app.db'}")     # as `up` does: the API refuses a file that does not exist


def finish_run(run_id: int, summary: dict, records: list[dict]) -> None:
    """What a worker does with a run: claim it, then complete it with its summary and predictions."""
    from worker import api, state
    with api.session() as s:
        assert state.claim(s, run_id, "w:test")
        assert state.complete(s, run_id, "w:test", summary, records)
