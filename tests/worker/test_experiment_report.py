"""`cotdistill report` on a constructed experiment (rows written directly into a SQLite file): the
files hold exactly the numbers of cotdistill.stats on the same predictions; report.html renders
offline in headless Chromium; table.tex compiles with pdflatex when the machine has it."""

import csv
import io
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from cotdistill import stats
from cotdistill.report import holm
from tests.worker.report_fixture import ARMS, SEEDS, seed_experiment

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-dev-shm-usage"]


@pytest.fixture
def experiment(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'report.db'}"
    monkeypatch.setenv("COTDISTILL_HOME", str(tmp_path))
    monkeypatch.setenv("COTDISTILL_DATABASE_URL", url)
    return seed_experiment(url)


@pytest.fixture
def written(experiment, tmp_path):
    from worker.cli import cli
    out = tmp_path / "report"
    result = CliRunner().invoke(cli, ["report", "report-demo", "--reference", "none/none", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def correctness(run_ids, items):
    from worker import api
    table = {(p["run_id"], p["example_id"]): p["correct"] for p in api.predictions(run_ids)}
    return [[table[(r, ex)] for ex in items] for r in run_ids]


def expected(experiment) -> dict:
    """Per arm label: accuracy mean_ci over seeds and seed_paired_diff to none/none, straight from
    cotdistill.stats on the stored predictions, and the Holm-adjusted p over the 4 comparisons."""
    ids, items = experiment["ids"], experiment["items"]
    labels = ["none/none", "after/none", "after/shuffle", "after/random_subset(k=2)", "after/random_subset(k=4)"]
    rows = {label: correctness([ids[(a, s)] for s in SEEDS], items) for a, label in enumerate(labels)}
    out = {}
    for label, table in rows.items():
        ci = stats.mean_ci([sum(r) / len(r) for r in table])
        out[label] = {"mean": ci.estimate, "low": ci.low, "high": ci.high}
        if label != "none/none":
            d = stats.seed_paired_diff(table, rows["none/none"], n_boot=10_000, seed=0)
            out[label].update(diff=d.interval.estimate, diff_low=d.interval.low, diff_high=d.interval.high,
                              p_value=d.p_value)
    compared = labels[1:]
    for label, q in zip(compared, holm([out[x]["p_value"] for x in compared])):
        out[label]["p_holm"] = q
    assert len(labels) == len(ARMS)
    return out


def test_results_csv_holds_exactly_the_numbers_of_the_statistics(experiment, written):
    want = expected(experiment)
    lines = list(csv.DictReader(io.StringIO((written / "results.csv").read_text())))
    assert [r["arm"] for r in lines][0] == "none/none" and sorted(r["arm"] for r in lines) == sorted(want)
    for r in lines:
        w = want[r["arm"]]
        for key in ("mean", "low", "high"):
            assert float(r[key]) == w[key], (r["arm"], key)
        if r["arm"] == "none/none":
            assert r["diff"] == "" and r["p_value"] == ""
            continue
        for key in ("diff", "diff_low", "diff_high", "p_value", "p_holm"):
            assert float(r[key]) == w[key], (r["arm"], key)
        assert r["significant"] == str(w["p_holm"] < 0.05)
        assert (r["n_seeds"], r["seeds"], r["n_items"], r["seed_pairs"]) == ("3", "0 1 2", "30", "3")
    # the constructed data has both significant and non-significant arms, so the marker is tested
    assert {want[x]["p_holm"] < 0.05 for x in want if x != "none/none"} == {True, False}
    flagged = next(r for r in lines if r["arm"] == "after/random_subset(k=4)")["flagged_runs"]
    assert flagged == str(experiment["collapsed"])


def parse_tex(text: str) -> dict:
    """arm → (mean, low, high, diff, diff_low, diff_high, p text, starred) from the booktabs rows."""
    number = r"([+-]?\d\.\d{3})"
    out = {}
    for line in text.splitlines():
        m = re.match(rf"^(.+?) & {number} \[{number}, {number}\] & (.*) \\\\$", line)
        if not m:
            continue
        arm = m.group(1).replace(r"\_", "_")
        diff = re.match(rf"{number} \[{number}, {number}\] \(\$p(=|<)([\d.e-]+)\$\)(\$\^{{\*}}\$)?$", m.group(5))
        out[arm] = [float(m.group(i)) for i in (2, 3, 4)]
        if diff:
            out[arm] += [float(diff.group(i)) for i in (1, 2, 3)] + [diff.group(4) + diff.group(5), bool(diff.group(6))]
        else:
            assert m.group(5) == "ref.", line
    return out


def test_latex_table_shows_the_same_numbers_rounded_and_compiles_or_parses(experiment, written, tmp_path):
    """Parsed always; compiled with pdflatex as a fragment in a minimal document when the machine has
    pdflatex (TeX is not installed for the tests: it is hundreds of MB)."""
    tex = (written / "table.tex").read_text()
    assert r"\toprule" in tex and r"\midrule" in tex and r"\bottomrule" in tex and "Holm" in tex
    parsed = parse_tex(tex)
    want = expected(experiment)
    assert set(parsed) == set(want)
    for arm, w in want.items():
        got = parsed[arm]
        assert got[:3] == [round(w["mean"], 3), round(w["low"], 3), round(w["high"], 3)], arm
        if arm == "none/none":
            assert len(got) == 3
            continue
        assert got[3:6] == [round(w["diff"], 3), round(w["diff_low"], 3), round(w["diff_high"], 3)], arm
        assert got[6] == ("<0.001" if w["p_value"] < 0.001 else f"={w['p_value']:.3g}"), arm
        assert got[7] == (w["p_holm"] < 0.05), arm
    if shutil.which("pdflatex"):
        doc = tmp_path / "doc.tex"
        doc.write_text("\\documentclass{article}\\usepackage{booktabs}\\begin{document}\n"
                       f"\\input{{{written / 'table.tex'}}}\n\\end{{document}}\n")
        done = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", doc.name], cwd=tmp_path,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout[-2000:]


def test_markdown_figures_and_zip(experiment, written):
    md = (written / "table.md").read_text()
    want = expected(experiment)
    assert f"{want['after/none']['mean']:.3f}" in md and "Holm" in md
    for name in ("accuracy", "curves", "accuracy_vs_k"):
        svg = (written / "figures" / f"{name}.svg").read_text()
        assert svg.startswith("<svg") and ("<rect" in svg or "<polyline" in svg)
    import xml.etree.ElementTree as ET
    ET.fromstring((written / "figures" / "accuracy.svg").read_text())      # well-formed
    from worker import api
    with zipfile.ZipFile(io.BytesIO(api.report_zip("report-demo"))) as z:
        names = set(z.namelist())
        assert {"report-report-demo/report.html", "report-report-demo/results.csv", "report-report-demo/table.tex",
                "report-report-demo/table.md", "report-report-demo/figures/accuracy.svg"} <= names
        assert z.read("report-report-demo/results.csv") == (written / "results.csv").read_bytes()


def test_report_records_provenance_and_is_reproducible(experiment, tmp_path):
    from worker import report
    first, second = report.build("report-demo"), report.build("report-demo")
    assert first["rows"] == second["rows"] and first["reference"] == "none/none"
    assert first["database"] == f"sqlite:///{tmp_path / 'report.db'}"
    assert first["versions"]["datasets"]["synthetic"]["data_hash"] == ["d" * 12]
    assert "bootstrap seed 0" in first["method"] and "Holm" in first["method"]
    flips = {f["arm"]: f for f in first["flips"]}
    assert set(flips) == {"after/none", "after/shuffle", "after/random_subset(k=2)", "after/random_subset(k=4)"}
    shown = flips["after/none"]["fixed"][0]
    assert shown["question"].startswith("Start at") and shown["rationale"]
    assert shown["as_trained"] == shown["rationale"]                     # perturbation none
    assert shown["arm_answer"] == shown["label"] != shown["reference_answer"]   # fixed: arm right, reference wrong
    from cotdistill.perturbations import perturb
    shuffled = (flips["after/shuffle"]["fixed"] + flips["after/shuffle"]["broken"])[0]
    assert shuffled["as_trained"] == " ".join(perturb("shuffle", shuffled["rationale"].split(), seed=0,
                                                      example_id=shuffled["example_id"]))
    assert shuffled["as_trained"] != shuffled["rationale"]
    token_level = (flips["after/random_subset(k=4)"]["fixed"] + flips["after/random_subset(k=4)"]["broken"])[0]
    assert token_level["as_trained"] is None and "token level" in token_level["as_trained_how"]


def test_bad_reference_and_unknown_experiment_are_one_sentence(experiment):
    from worker.cli import cli
    result = CliRunner().invoke(cli, ["report", "report-demo", "--reference", "after/nothing"])
    assert result.exit_code == 1
    assert "--reference 'after/nothing' is not an arm of experiment 'report-demo'; its arms are" in result.output
    result = CliRunner().invoke(cli, ["report", "no-such"])
    assert result.exit_code == 1 and "no experiment 'no-such'" in result.output


def test_report_html_renders_offline_in_headless_chromium(written, tmp_path):
    if not CHROMIUM.exists():
        pytest.fail(f"Chromium is not installed ({CHROMIUM} is missing): run "
                    f"`apt-get install -y chromium` (never `playwright install`)")
    from playwright.sync_api import sync_playwright
    html = (written / "report.html").read_text()
    assert html.count("plotly.js v") == 1                  # the library embedded once, for every figure
    errors, requests = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(offline=True)
            page = context.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: requests.append(r.url) if not r.url.startswith(("file:", "data:")) else None)
            page.goto((written / "report.html").as_uri())
            page.wait_for_function("document.querySelectorAll('.js-plotly-plot').length >= 4", timeout=30_000)
            figures = page.evaluate("""() => [...document.querySelectorAll('div.plotly-graph-div')]
                                       .map(d => ({id: d.id, traces: (d.data || []).length,
                                                   points: (d.data || []).reduce((n, t) => n + (t.y || []).length, 0)}))""")
            page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        finally:
            browser.close()
    assert errors == [] and requests == []
    assert [f["id"] for f in figures] == ["fig-accuracy", "fig-difference", "fig-curves", "fig-accuracy-vs-k"]
    assert all(f["traces"] > 0 and f["points"] > 0 for f in figures), figures
    assert (tmp_path / "report.png").stat().st_size > 10_000


def test_same_numbers_on_postgresql_and_the_password_masked(experiment, postgres_url, monkeypatch):
    from worker import report
    on_sqlite = report.build("report-demo")["rows"]
    url = postgres_url.replace("postgres@", "postgres:s3cret@", 1)         # the test server trusts local users
    monkeypatch.setenv("COTDISTILL_DATABASE_URL", url)
    seed_experiment(url)
    found = report.build("report-demo")
    assert found["rows"] == on_sqlite
    assert "s3cret" not in found["database"] and found["database"].startswith("postgresql+psycopg://postgres:***@")
    assert "s3cret" not in report.files(found)["report.html"].decode()
