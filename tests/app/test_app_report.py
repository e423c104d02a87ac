"""Compare's "Download report" button, on a constructed experiment (rows written into SQLite)."""

import io
import zipfile
from csv import DictReader
from io import StringIO

import pytest

from tests.app.apptest import frame_with, open_page, texts, widget
from tests.worker.report_fixture import seed_experiment


@pytest.fixture
def experiment(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'report.db'}"
    monkeypatch.setenv("COTDISTILL_HOME", str(tmp_path))
    monkeypatch.setenv("COTDISTILL_DATABASE_URL", url)
    return seed_experiment(url)


def test_compare_shows_the_reports_verdicts_and_offers_the_report_with_a_reference_arm(experiment):
    at = open_page("screens/compare.py", experiment="report-demo")
    assert [b.label for b in at.get("download_button")] == ["Download as CSV", "Download report"]
    from worker.report import build
    report = build("report-demo")
    rows = {r["arm"]: r for r in report["rows"]}
    # The verdict table: the report's numbers, the procedure (seeds as the unit) first, Holm over 4.
    reference = widget(at.selectbox, "Reference arm")
    assert reference.value == rows["none"]["row_key"]
    assert reference.options == ["after", "after/random_subset(k=2)", "after/random_subset(k=4)", "after/shuffle", "none"]
    table = frame_with(at, "Δ vs ref.", "Holm p", "test-set p").set_index("arm")
    assert sorted(table.index) == sorted(a for a in rows if a != "none")
    for arm, line in table.iterrows():
        r = rows[arm]
        assert line["Δ vs ref."] == round(r["diff"], 4) and line["verdict"] == r["verdict"]
        assert line["95% interval (seeds)"] == f"[{r['diff_low']:+.3f}, {r['diff_high']:+.3f}]"
        assert line["Holm p"] == ("<0.001" if r["p_holm"] < 0.001 else f"{r['p_holm']:.3g}")
        assert line["test-set interval"] == f"[{r['test_low']:+.3f}, {r['test_high']:+.3f}]"
    assert table.loc["after/random_subset(k=4)", "warning"] == "1 flagged seed(s)"
    assert "Holm-corrected over the 4 comparison(s) with a p-value" in texts(at)
    # The page's pair after − none shows exactly the report's numbers.
    widget(at.selectbox, "Arm A").set_value(rows["after"]["arm_key"])
    widget(at.selectbox, "Arm B").set_value(rows["none"]["arm_key"])
    at.run()
    metrics, row = {m.label: m.value for m in at.metric}, rows["after"]
    assert metrics["A − B accuracy"] == f"{row['diff']:+.3f}"
    assert metrics["95% interval over seeds"] == f"[{row['diff_low']:+.3f}, {row['diff_high']:+.3f}]"
    assert metrics["p over seeds"] == f"{row['p_value']:.3g}"
    assert metrics["test-set p"] == f"{row['test_p']:.3g}"
    reference.set_value(rows["after/shuffle"]["row_key"]).run()
    assert not at.exception
    assert "after/shuffle" not in list(frame_with(at, "Δ vs ref.", "Holm p").set_index("arm").index)
    # What the button hands over when clicked: the app's query, the report with that reference.
    from app import queries
    from worker import api
    folder = f"report-experiment-{next(e['id'] for e in api.list_experiments() if e['name'] == 'report-demo')}"
    with zipfile.ZipFile(io.BytesIO(queries.report_zip("report-demo", rows["after/shuffle"]["row_key"], None))) as z:
        csv = z.read(f"{folder}/results.csv").decode()
        assert f"{folder}/figures/accuracy.pdf" in z.namelist()
    lines = list(DictReader(StringIO(csv)))
    assert lines[0]["arm"] == "after/shuffle" and lines[0]["diff"] == ""     # the reference comes first
    assert {r["reference"] for r in lines} == {"after/shuffle"} and all(r["diff"] for r in lines[1:])


def test_chosen_runs_get_no_report_button(experiment):
    at = open_page("screens/compare.py", runs=",".join(str(i) for i in list(experiment["ids"].values())[:3]))
    assert [b.label for b in at.get("download_button")] == ["Download as CSV"]


def test_the_scoring_switch_keeps_the_arm_evaluated_by_generation(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'protocols.db'}"
    monkeypatch.setenv("COTDISTILL_HOME", str(tmp_path))
    monkeypatch.setenv("COTDISTILL_DATABASE_URL", url)
    seed_experiment(url, "protocols", arms=[("none", "none", {}), ("after", "none", {}), ("before", "none", {})])
    at = open_page("screens/compare.py", experiment="protocols")
    assert widget(at.radio, "Scoring").options == ["letter"]        # offered: the scored runs computed it
    assert "Arms evaluated by generation (before) keep their generated accuracy" in texts(at)
    numbers = at.dataframe[0].value.set_index("arm")
    assert numbers.loc["before", "evaluated"] == "generation" and numbers.loc["after", "evaluated"] == "scoring (letter)"
    verdicts = frame_with(at, "Δ vs ref.", "Holm p").set_index("arm")
    assert sorted(verdicts.index) == ["after", "before"] and verdicts.loc["before", "evaluated"] == "generation"
    assert "the 2 comparison(s) with a p-value" in texts(at)
