"""`cotdistill report` on a constructed experiment (rows written directly into a SQLite file): the
files hold exactly the numbers of cotdistill.stats.inference on the same predictions (the procedure-level test
over seed pairs first, then the test-set statistics); report.html renders offline in headless
Chromium; table.tex compiles with pdflatex when the machine has it."""

import csv
import io
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from cotdistill.stats import inference as stats
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
    result = CliRunner().invoke(cli, ["report", "report-demo", "--reference", "none", "--out", str(out)])
    assert result.exit_code == 0, result.output
    (out / "stdout.txt").write_text(result.output)
    return out


def correctness(run_ids, items):
    from worker import api
    table = {(p["run_id"], p["example_id"]): p["correct"] for p in api.predictions(run_ids)}
    return [[table[(r, ex)] for ex in items] for r in run_ids]


LABELS = ["none", "after", "after/shuffle", "after/random_subset(k=2)", "after/random_subset(k=4)"]


def expected(experiment) -> dict:
    """Per arm label: accuracy mean_ci over seeds, procedure_diff over the seed pairs' accuracy
    differences to `none` and seed_paired_diff (the test set), straight from cotdistill.stats.inference on the
    stored predictions, and the Holm-adjusted p over the 4 comparisons."""
    ids, items = experiment["ids"], experiment["items"]
    rows = {label: correctness([ids[(a, s)] for s in SEEDS], items) for a, label in enumerate(LABELS)}
    out = {}
    for label, table in rows.items():
        ci = stats.mean_ci([sum(r) / len(r) for r in table])
        out[label] = {"mean": ci.estimate, "low": ci.low, "high": ci.high}
        if label != "none":
            d = stats.seed_paired_diff(table, rows["none"], n_boot=10_000, seed=0)
            p = stats.procedure_diff(d.per_pair_diff)
            out[label].update(diff=p.estimate, diff_low=p.low, diff_high=p.high, p_value=p.p_value,
                              test_low=d.interval.low, test_high=d.interval.high, test_p=d.p_value)
    compared = LABELS[1:]
    for label, q, t in zip(compared, holm([out[x]["p_value"] for x in compared]),
                           holm([out[x]["test_p"] for x in compared])):
        out[label].update(p_holm=q, test_p_holm=t)
    assert len(LABELS) == len(ARMS)
    return out


def test_results_csv_holds_exactly_the_numbers_of_the_statistics(experiment, written):
    want = expected(experiment)
    lines = list(csv.DictReader(io.StringIO((written / "results.csv").read_text())))
    assert [r["arm"] for r in lines][0] == "none" and sorted(r["arm"] for r in lines) == sorted(want)
    for r in lines:
        w = want[r["arm"]]
        assert r["protocol"] == "scoring (letter)"
        for key in ("mean", "low", "high"):
            assert float(r[key]) == w[key], (r["arm"], key)
        if r["arm"] == "none":
            assert r["diff"] == "" and r["p_value"] == "" and r["test_p"] == ""
            continue
        for key in ("diff", "diff_low", "diff_high", "p_value", "p_holm", "test_low", "test_high", "test_p",
                    "test_p_holm"):
            assert float(r[key]) == pytest.approx(w[key], rel=1e-12, abs=1e-15), (r["arm"], key)
        assert r["significant"] == str(w["p_holm"] < 0.05)
        assert r["verdict"] == ("significant" if w["p_holm"] < 0.05 else "not significant")
        assert (r["n_seeds"], r["seeds"], r["n_items"], r["seed_pairs"]) == ("3", "0 1 2", "30", "3")
        assert float(r["detectable"]) > 0 and float(r["sign_flip_floor"]) == 0.25
    # the constructed data has both significant and non-significant arms, so the marker is tested
    assert {want[x]["p_holm"] < 0.05 for x in want if x != "none"} == {True, False}
    # and the test set alone would call more arms significant than the procedure-level test does
    assert sum(want[x]["test_p_holm"] < 0.05 for x in LABELS[1:]) > sum(want[x]["p_holm"] < 0.05 for x in LABELS[1:])
    flagged = next(r for r in lines if r["arm"] == "after/random_subset(k=4)")
    assert flagged["flagged_runs"] == str(experiment["collapsed"]) and flagged["flags"] == "constant answer"


def parse_tex(text: str) -> dict:
    """arm → (mean, low, high, diff, diff_low, diff_high, p text, starred) from the booktabs rows."""
    number = r"([+-]?\d\.\d{3})"
    out = {}
    for line in text.splitlines():
        m = re.match(rf"^(.+?) & scoring \(letter\) & {number} \[{number}, {number}\](\$\^{{\\dagger}}\$)? & (.*?) & (.*) \\\\$", line)
        if not m:
            continue
        arm = m.group(1).replace(r"\_", "_")
        diff = re.match(rf"{number} \[{number}, {number}\] \(\$p(=|<)([\d.e-]+)\$\)(\$\^{{\*}}\$)?$", m.group(6))
        out[arm] = [float(m.group(i)) for i in (2, 3, 4)]
        if diff:
            out[arm] += [float(diff.group(i)) for i in (1, 2, 3)] + [diff.group(4) + diff.group(5), bool(diff.group(6))]
        else:
            assert m.group(6) == "ref.", line
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
        if arm == "none":
            assert len(got) == 3
            continue
        assert got[3:6] == [round(w["diff"], 3), round(w["diff_low"], 3), round(w["diff_high"], 3)], arm
        assert got[6] == ("<0.001" if w["p_value"] < 0.001 else f"={w['p_value']:.3g}"), arm
        assert got[7] == (w["p_holm"] < 0.05), arm
    assert r"after/random\_subset(k=4) & scoring (letter) & 0." in tex and r"]$^{\dagger}$ & " in tex
    assert r"\footnotesize $^{\dagger}$ after/random\_subset(k=4) (synthetic / tiny): 1 of 3 seed(s) flagged " \
           r"(constant answer)" in tex
    if shutil.which("pdflatex"):
        doc = tmp_path / "doc.tex"
        doc.write_text("\\documentclass{article}\\usepackage{booktabs}\\begin{document}\n"
                       f"\\input{{{written / 'table.tex'}}}\n\\end{{document}}\n")
        done = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", doc.name], cwd=tmp_path,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout[-2000:]


def test_markdown_figures_cli_verdicts_and_zip(experiment, written):
    md = (written / "table.md").read_text()
    want = expected(experiment)
    assert f"{want['after']['mean']:.3f}" in md and "Holm" in md
    assert "| after/random_subset(k=4) | scoring (letter) | " in md and "† after/random_subset(k=4) (synthetic / tiny): " \
        "1 of 3 seed(s) flagged (constant answer)" in md
    for name in ("accuracy", "label_loss", "accuracy_vs_k"):
        assert (written / "figures" / f"{name}.pdf").read_bytes().startswith(b"%PDF")
        import xml.etree.ElementTree as ET
        svg = ET.fromstring((written / "figures" / f"{name}.svg").read_bytes())       # well-formed
        assert svg.tag == "{http://www.w3.org/2000/svg}svg"
    labels = (written / "figures" / "accuracy.svg").read_text()
    assert all(f">{arm}" in labels for arm in ("none", "after/shuffle", "after/random_subset(k=2)"))
    assert f">{want['after']['mean']:.3f}<" in labels                                       # labelled bars
    assert not (written / "figures" / "curves.svg").exists()
    # The CLI prints every verdict, the procedure first.
    out = (written / "stdout.txt").read_text().splitlines()
    w = want["after"]
    assert out[0] == (f"after vs none (synthetic / tiny): {w['diff']:+.3f} [{w['diff_low']:+.3f}, {w['diff_high']:+.3f}], "
                      f"p={stats_p(w['p_value'])} over 3 seed pairs, Holm p={stats_p(w['p_holm'])}: "
                      f"{'significant' if w['p_holm'] < 0.05 else 'not significant'}; test set (these models, these "
                      f"items): [{w['test_low']:+.3f}, {w['test_high']:+.3f}] p{'<0.001' if w['test_p'] < 0.001 else '=' + stats_p(w['test_p'])}")
    assert len([line for line in out if " vs none (synthetic / tiny): " in line]) == 4
    from worker import api
    folder = f"report-experiment-{next(e['id'] for e in api.list_experiments() if e['name'] == 'report-demo')}"
    with zipfile.ZipFile(io.BytesIO(api.report_zip("report-demo"))) as z:
        names = set(z.namelist())
        assert {f"{folder}/report.html", f"{folder}/results.csv", f"{folder}/table.tex",
                f"{folder}/table.md", f"{folder}/figures/accuracy.svg",
                f"{folder}/figures/accuracy.pdf"} <= names
        assert z.read(f"{folder}/results.csv") == (written / "results.csv").read_bytes()


def stats_p(p: float) -> str:
    return "<0.001" if p < 0.001 else f"{p:.3g}"


def test_report_records_provenance_and_is_reproducible(experiment, tmp_path):
    from worker import report
    first, second = report.build("report-demo"), report.build("report-demo")
    assert first["rows"] == second["rows"] and first["reference"] == "none"
    assert first["database"] == f"sqlite:///{tmp_path / 'report.db'}"
    assert first["versions"]["datasets"]["synthetic"]["data_hash"] == ["d" * 12]
    seed_1 = sorted(experiment["ids"][(a, 1)] for a in range(len(ARMS)))
    assert first["versions"]["environment"]["threads"] == {"values": ["2"], "not_recorded": seed_1}
    assert first["versions"]["environment"]["torch"]["values"] == ["2.13.0"]
    html = report.files(first)["report.html"].decode()
    assert f"environment: threads</td><td>2; not recorded (runs {', '.join(map(str, seed_1))})" in html
    assert "bootstrap seed 0" in first["method"] and "Holm" in first["method"] and "seeds as the unit" in first["method"]
    flagged = [r for r in first["runs"] if r["flags"]]
    assert [r["flags"] for r in flagged] == [["not distinguishable from a constant answer: answers 'a' on 29 of 30 items"]]
    assert html.count("answers &#x27;a&#x27; on 29 of 30 items") == 1          # one message per flag
    assert '<span class="warn" title="constant answer">†</span>' in html        # the flag in the HTML table too
    assert "† after/random_subset(k=4) (synthetic / tiny): 1 of 3 seed(s) flagged (constant answer)" in html
    flips = {f["arm"]: f for f in first["flips"]}
    assert set(flips) == {"after", "after/shuffle", "after/random_subset(k=2)", "after/random_subset(k=4)"}
    for f in flips.values():                                # the counts printed match the items listed
        for what in ("fixed", "broken"):
            total, listed = f[f"n_{what}"], len(f[what])
            assert listed == min(total, report.EXAMPLES_SHOWN)
            if listed:
                assert (f"showing {listed} of {total}" if listed < total else f"all {total}") in html
    shown = flips["after"]["fixed"][0]
    assert shown["question"].startswith("Start at") and shown["rationale"]
    assert shown["as_trained"] == shown["rationale"]                     # perturbation none
    assert shown["arm_answer"] == shown["label"] != shown["reference_answer"]   # fixed: arm right, reference wrong
    from cotdistill.sequences.perturbations import perturb
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
    assert ("--reference 'after/nothing' is not an arm of experiment 'report-demo'; its arms are after, "
            "after/random_subset(k=2), after/random_subset(k=4), after/shuffle, none (a label or an arm key)") in result.output
    result = CliRunner().invoke(cli, ["report", "report-demo", "--scoring", "text", "--out", "unused"])
    assert result.exit_code == 1 and "did not compute that scoring mode" in result.output
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


def test_arms_that_differ_only_in_n_train_stay_two_lines_in_every_table(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'sweep.db'}"
    monkeypatch.setenv("COTDISTILL_HOME", str(tmp_path))
    monkeypatch.setenv("COTDISTILL_DATABASE_URL", url)
    seed_experiment(url, "sweep", arms=[("none", "none", {"n_train": 40}), ("after", "none", {"n_train": 40}),
                                        ("after", "none", {"n_train": 20})])
    from worker import report
    found = report.build("sweep")
    assert [r["arm"] for r in found["rows"]] == ["none · n_train=40", "after · n_train=20", "after · n_train=40"]
    assert found["reference"] == "none · n_train=40"
    files = report.files(found)
    lines = list(csv.DictReader(io.StringIO(files["results.csv"].decode())))
    assert [r["arm"] for r in lines] == ["none · n_train=40", "after · n_train=20", "after · n_train=40"]
    assert len({r["arm_key"] for r in lines}) == 3
    tex, md = files["table.tex"].decode(), files["table.md"].decode()
    for label in ("after · n\\_train=20 & ", "after · n\\_train=40 & ", "none · n\\_train=40 & "):
        assert sum(line.startswith(label) for line in tex.splitlines()) == 1, label
    for label in ("| after · n_train=20 |", "| after · n_train=40 |", "| none · n_train=40 |"):
        assert sum(line.startswith(label) for line in md.splitlines()) == 1, label
    # the reference may be named by its arm key as well
    key = next(r["arm_key"] for r in found["rows"] if r["arm"] == "after · n_train=20")
    assert report.build("sweep", reference=key)["reference"] == "after · n_train=20"


def test_one_seed_needs_two_seeds_everywhere_and_keeps_the_test_set(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'one.db'}"
    monkeypatch.setenv("COTDISTILL_HOME", str(tmp_path))
    monkeypatch.setenv("COTDISTILL_DATABASE_URL", url)
    seed_experiment(url, "one-seed", arms=ARMS[:2], seeds=[0])
    from worker.cli import cli
    result = CliRunner().invoke(cli, ["report", "one-seed", "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("after vs none (synthetic / tiny): ") and \
        ", needs ≥ 2 seeds (1 seed pair); test set (these models, these items): [" in result.output
    out = tmp_path / "out"
    line = list(csv.DictReader(io.StringIO((out / "results.csv").read_text())))[1]
    assert (line["verdict"], line["p_value"], line["diff_low"], line["significant"]) == ("needs ≥ 2 seeds", "", "", "")
    assert line["test_p"] and line["test_p_holm"] == line["test_p"]            # a family of one
    assert ", needs ≥ 2 seeds |" in (out / "table.md").read_text()
    assert ", needs $\\geq$ 2 seeds & [" in (out / "table.tex").read_text()
    assert "needs ≥ 2 seeds" in (out / "report.html").read_text()


def test_a_scoring_switch_keeps_generated_arms_in_the_table_and_the_holm_family(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'protocols.db'}"
    monkeypatch.setenv("COTDISTILL_HOME", str(tmp_path))
    monkeypatch.setenv("COTDISTILL_DATABASE_URL", url)
    seed_experiment(url, "protocols", arms=[("none", "none", {}), ("after", "none", {}), ("before", "none", {})])
    from worker import report
    own, letter = report.build("protocols", n_boot=200), report.build("protocols", scoring="letter", n_boot=200)
    for found in (own, letter):
        rows = {r["arm"]: r for r in found["rows"]}
        assert sorted(rows) == ["after", "before", "none"]
        assert rows["before"]["protocol"] == "generation" and rows["after"]["protocol"] == "scoring (letter)"
        assert sum(r.get("p_value") is not None for r in found["rows"]) == 2     # the Holm family: both arms
    before = {r["arm"]: r for r in letter["rows"]}["before"]
    assert before["note"] == "evaluated by generation; scoring modes do not apply"
    assert before["diff"] == {r["arm"]: r for r in own["rows"]}["before"]["diff"]
    md = report.files(letter)["table.md"].decode()
    assert "| before | generation | " in md and "before (synthetic / tiny): evaluated by generation; scoring modes " \
        "do not apply." in md


def test_hole6_names_with_dot_dot_cannot_place_files_above_their_folder(tmp_path, monkeypatch):
    """Experiment, run and set names with '../' were accepted at every entry; a report then wrote
    above its folder and its zip held '../' entries. Names are refused at the entries, and report
    folders and zip entries are named from ids (an experiment row written by hand included)."""
    from cotdistill.cli import science
    from cotdistill.errors import ConfigError
    from worker import api
    from worker.cli import cli
    from worker.experiments import matrix_of
    url = f"sqlite:///{tmp_path / 'report.db'}"
    monkeypatch.setenv("COTDISTILL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COTDISTILL_DATABASE_URL", url)
    seed_experiment(url, name="../../escaped")                   # as if written by hand into the database
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    result = CliRunner().invoke(cli, ["report", "1", "--reference", "none"])
    assert result.exit_code == 0, result.output
    assert (work / "report-experiment-1" / "report.html").is_file() and not (tmp_path / "escaped").exists()
    with zipfile.ZipFile(io.BytesIO(api.report_zip(1))) as z:
        assert z.namelist() and all(n.startswith("report-experiment-1/") and ".." not in n for n in z.namelist())
    for bad in ("../x", "a/b", "..", ".hidden", "x" * 101, "with space", "a\\b"):
        with pytest.raises(ConfigError, match="experiment name"):
            matrix_of({"name": bad, "factors": {"seed": [0]}})
        with pytest.raises(ConfigError, match="name"):
            api.submit_matrix({"name": bad, "base": {"data": {"name": "synthetic"}}, "factors": {"seed": [0]}})
        assert api.import_rationale_set({"train": "/nothing.csv"}, {}, bad)["error"]["field"] == "name"
    (tmp_path / "c.yaml").write_text("data: {name: synthetic}\n")
    run = CliRunner().invoke(science, ["run", str(tmp_path / "c.yaml"), "name=../../escaped", "train.steps=1"])
    assert run.exit_code != 0 and "name '../../escaped' may hold only letters" in run.output
    imported = CliRunner().invoke(science, ["data", "import", str(tmp_path / "x.csv"), "--name", "../../escaped"])
    assert imported.exit_code != 0 and "--name '../../escaped' may hold only letters" in imported.output
    assert not (tmp_path / "home" / "escaped").exists() and not (tmp_path / "escaped").exists()
