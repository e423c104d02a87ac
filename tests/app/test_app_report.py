"""Compare's "Download report" button, on a constructed experiment (rows written into SQLite)."""

import io
import zipfile
from csv import DictReader
from io import StringIO

import pytest

from tests.app.apptest import open_page, widget
from tests.worker.report_fixture import seed_experiment


@pytest.fixture
def experiment(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'report.db'}"
    monkeypatch.setenv("COTDISTILL_HOME", str(tmp_path))
    monkeypatch.setenv("COTDISTILL_DATABASE_URL", url)
    return seed_experiment(url)


def test_compare_offers_the_experiments_report_with_a_reference_arm(experiment):
    at = open_page("screens/compare.py", experiment="report-demo")
    assert [b.label for b in at.get("download_button")] == ["Download as CSV", "Download report"]
    # The page's pair after/none − none/none shows exactly the report's numbers.
    from worker.report import build
    rows = {r["arm"]: r for r in build("report-demo")["rows"]}
    widget(at.selectbox, "Arm A").set_value(rows["after/none"]["arm_key"])
    widget(at.selectbox, "Arm B").set_value(rows["none/none"]["arm_key"])
    at.run()
    metrics, row = {m.label: m.value for m in at.metric}, rows["after/none"]
    assert metrics["A − B accuracy"] == f"{row['diff']:+.3f}"
    assert metrics["95% interval"] == f"[{row['diff_low']:+.3f}, {row['diff_high']:+.3f}]"
    assert metrics["paired p"] == f"{row['p_value']:.3g}"
    reference = widget(at.selectbox, "Report: reference arm")
    assert reference.value == "none/none" and "after/shuffle" in reference.options
    reference.set_value("after/shuffle").run()
    assert not at.exception
    # What the button hands over when clicked: the app's query, the report with that reference.
    from app import queries
    with zipfile.ZipFile(io.BytesIO(queries.report_zip("report-demo", "after/shuffle", None))) as z:
        csv = z.read("report-report-demo/results.csv").decode()
    rows = list(DictReader(StringIO(csv)))
    assert rows[0]["arm"] == "after/shuffle" and rows[0]["diff"] == ""     # the reference comes first
    assert {r["reference"] for r in rows} == {"after/shuffle"} and all(r["diff"] for r in rows[1:])


def test_chosen_runs_get_no_report_button(experiment):
    at = open_page("screens/compare.py", runs=",".join(str(i) for i in list(experiment["ids"].values())[:3]))
    assert [b.label for b in at.get("download_button")] == ["Download as CSV"]
