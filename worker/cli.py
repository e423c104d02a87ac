"""The `cotdistill` command: the science subcommands (mounted from cotdistill.cli) plus the job
system's: `db upgrade|downgrade|current`, `submit`, `status`, `show`, `cancel`, `retry`, `worker`,
`reconcile`, `up`, `report`.

A database that cannot be reached, read or written ends the command with one line naming its URL
(password masked) and exit code 2; only `db upgrade` and `up` create a SQLite file that does not exist,
every other job command refuses it (worker/db.py: explain, require_database).
"""

from __future__ import annotations

import sys

import click

from cotdistill.cli import science

cli = science                     # one command; the science group is extended here, never the reverse


def _existing_database() -> None:
    """Every job command but `db upgrade` and `up` needs the database to exist already."""
    from worker.db import require_database
    require_database()


@cli.group()
def db() -> None:
    """Database migrations ($COTDISTILL_DATABASE_URL, default SQLite under $COTDISTILL_HOME)."""


@db.command()
@click.argument("revision", default="head")
def upgrade(revision: str) -> None:
    """Migrate the database up to REVISION (default: head)."""
    from worker.db import current, database_url, upgrade as do_upgrade
    do_upgrade(database_url(), revision)
    click.echo(f"database at revision {current()}")


@db.command()
@click.argument("revision", default="base")
def downgrade(revision: str) -> None:
    """Migrate the database down to REVISION (default: base, an empty database)."""
    from worker.db import current, database_url, downgrade as do_downgrade
    _existing_database()
    do_downgrade(database_url(), revision)
    click.echo(f"database at revision {current()}")


@db.command(name="current")
def show_current() -> None:
    """Print the database's revision."""
    from worker.db import current
    _existing_database()
    click.echo(current() or "empty (run `cotdistill db upgrade`)")


@cli.command()
@click.argument("matrix", type=click.Path(dir_okay=False, exists=True))
@click.option("--force", is_flag=True, help="Rerun cells whose identical config already succeeded.")
@click.option("--yes", is_flag=True, help="Confirm a matrix of more than 500 cells.")
@click.option("--new-version", is_flag=True,
              help="The name exists with another matrix: submit this one as NAME@2 (@3, ...).")
@click.option("--reuse-old", is_flag=True,
              help="Reuse succeeded runs of the same settings from an older results version instead of "
                   "rerunning them.")
@click.option("--dry-run", is_flag=True,
              help="Queue nothing: list the cells with their memory, whether each fits --gpu-gib, and GPU-hours.")
@click.option("--gpu-gib", type=click.FloatRange(min=0, min_open=True), default=80.0, show_default=True,
              help="Dry run: memory of the GPU each cell gets, in GiB.")
@click.option("--tokens-per-s", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Dry run: training tokens/s per GPU (default: measured by earlier runs of the student).")
def submit(matrix, force, yes, new_version, reuse_old, dry_run, gpu_gib, tokens_per_s) -> None:
    """Expand an experiment matrix into runs and queue the missing ones; prints the run ids.

    Every cell is validated before any is queued. Identical succeeded runs (same config hash, results
    version included) are reused and identical queued/running ones shared, and the command says so;
    runs from an older results version are rerun unless --reuse-old. --dry-run queues nothing and
    needs no database: it prints each cell's planned GPU memory and the matrix's GPU-hours."""
    from cotdistill import RESULTS_VERSION
    from cotdistill.errors import ConfigError
    from worker import api
    if dry_run:
        _list_cells(matrix)
        try:
            click.echo(format_estimate(api.estimate_matrix(matrix, gpu_gib=gpu_gib, tokens_per_s=tokens_per_s)))
        except ConfigError as e:
            raise click.ClickException(str(e)) from None
        return
    _existing_database()
    try:
        r = api.submit_matrix(matrix, force=force, confirm=yes, new_version=new_version, reuse_old=reuse_old)
    except ConfigError as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"experiment {r['name']!r} (id {r['experiment_id']}): {len(r['queued'])} queued, "
               f"{len(r['kept'])} already queued/running/done in it, {len(r['reused'])} reused from "
               f"identical succeeded runs, {len(r['shared'])} shared with identical queued/running runs")
    if r["reused"]:
        click.echo("reused runs (not trained again; --force reruns them): " + " ".join(map(str, r["reused"])))
    if r["shared"]:
        click.echo("shared runs (queued or running in another experiment): " + " ".join(map(str, r["shared"])))
    if r["duplicates"]:
        click.echo(f"{len(r['duplicates'])} duplicate cell(s) identical to an earlier cell, counted once: "
                   + "; ".join(map(str, r["duplicates"])))
    if r["outdated"]:
        click.echo(f"not reused: runs {' '.join(map(str, r['outdated']))} have the same settings but an "
                   f"older results version (now {RESULTS_VERSION}); their cells are rerun (--reuse-old "
                   f"reuses them)")
    if r["queued"]:
        click.echo("queued runs: " + " ".join(map(str, r["queued"])))
    unsent = sorted(set(r["queued"]) - set(r["sent"]))
    if unsent:
        click.echo(f"warning: the broker is not reachable; runs {unsent} stay queued and a worker's "
                   f"reconciler sends them once it is", err=True)


def _list_cells(path: str) -> None:
    """`submit --dry-run`: every cell of the matrix, validated, one line each, and the count."""
    from cotdistill.errors import ConfigError
    from worker.experiments import expand, load_matrix
    try:
        matrix = load_matrix(path)
        cells = expand(matrix)
    except ConfigError as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"{'cell':>5}  {'student':<20} {'dataset':<20} {'placement':<9} {'perturbation':<32} "
               f"{'seed':>4} {'devices':>7}")
    for i, (_, cfg) in enumerate(cells, 1):
        p = cfg.perturbation
        pert = p.kind + (f"/{p.level} " + ",".join(f"{k}={v}" for k, v in sorted(p.params.items()) if v is not None)
                         if p.kind != "none" else "")
        click.echo(f"{i:>5}  {cfg.student.name:<20} {cfg.data.name:<20} {cfg.placement:<9} {pert:<32} "
                   f"{cfg.seed:>4} {cfg.train.devices:>7}")
    gpus = sum(cfg.train.devices for _, cfg in cells)
    click.echo(f"experiment {matrix.name!r}: {len(cells)} cells ({gpus} GPU placements); dry run, nothing queued")


def format_estimate(e: dict) -> str:
    """The dry run's table: one line per cell, then the totals."""
    lines = [f"matrix {e['name']!r}: {len(e['cells'])} cell(s), planned for {e['gpu_gib']:g} GiB GPUs "
             f"({e['device']}; memory per GPU = weights + gradients + AdamW state + activations, of its share "
             f"on a multi-device cell; see cotdistill/estimate.py)",
             f"{'cell':<48} {'params':>9} {'trained':>9} {'weights':>8} {'grads':>8} {'adam':>8} {'activ':>8} "
             f"{'total':>8}  fits  {'GPU-h':>7}"]
    gib = lambda b: f"{b / 2 ** 30:.2f}G"
    for c in e["cells"]:
        label = ", ".join(f"{k.split('.')[-1]}={v}" for k, v in c["factors"].items()) or c["student"]
        label = label if len(label) <= 48 else label[:45] + "..."
        if "error" in c:
            lines.append(f"{label:<48} unknown: {c['error']}")
            continue
        m, hours = c["memory"], c["gpu_hours"]
        lines.append(f"{label:<48} {c['parameters'] / 1e6:>8.1f}M {c['trainable'] / 1e6:>8.2f}M {gib(m['weights']):>8} "
                     f"{gib(m['gradients']):>8} {gib(m['optimizer']):>8} {gib(m['activations']):>8} "
                     f"{gib(m['total_bytes']):>8}  {'yes ' if c['fits'] else 'NO  '}  "
                     f"{'?' if hours is None else f'{hours:.3f}':>7}")
    lines.append(f"{e['fit']} cell(s) fit, {e['too_big']} do not, {e['unknown']} unknown")
    sources = sorted({c["tokens_per_s_source"] for c in e["cells"] if c.get("tokens_per_s_source")})
    if e["gpu_hours"] is not None:
        lines.append(f"GPU-hours (training, upper bound: every sequence at max_length): {e['gpu_hours']:.3f} "
                     f"({'; '.join(sources)})")
    else:
        lines.append(f"GPU-hours unknown for {len(e['cells']) - e['gpu_hours_known_cells']} cell(s): no measured "
                     f"tokens/s for their student on this kind of device; pass --tokens-per-s")
    return "\n".join(lines)


def _progress(r: dict) -> str:
    p = r["progress"]
    if r["status"] == "running" and p.get("phase") not in (None, "train") and p.get("phase_total"):
        return f"{p['phase']} {p.get('phase_done', 0)}/{p['phase_total']}"     # load, validate, evaluate, save
    return f"{r['step']}/{r['total_steps']}" if r["total_steps"] else "-"


def _api(name: str, *args, **kwargs):
    """Call the jobs API; a missing run or experiment becomes the command's error message."""
    from worker import api
    _existing_database()
    try:
        return getattr(api, name)(*args, **kwargs)
    except api.NotFound as e:
        raise click.ClickException(str(e)) from None


@cli.command()
@click.argument("experiment", required=False)
def status(experiment) -> None:
    """Runs with status, progress and accuracy (of one experiment, by name or id, or all); a queued
    run says why it waits (no worker for its queue, behind N runs)."""
    rows = _api("list_runs", experiment=experiment)
    click.echo(f"{'run':>5}  {'experiment':<20} {'status':<10} {'try':>3} {'progress':<12} {'accuracy':<8}  config")
    for r in rows:
        label = f"{r['dataset']} {r['arm']} seed {r['seed']}" + (f"  (waiting: {r['waiting']})" if r.get("waiting") else "")
        acc = f"{r['accuracy']:.3f}" if r["accuracy"] is not None else "-"
        if _flagged(r["summary"]):
            acc += " !"
        if r["summary"].get("unparsed_rate"):
            acc += f" ({r['summary']['unparsed_rate']:.0%} unparsed)"
        click.echo(f"{r['id']:>5}  {(r['experiment'] or '-'):<20} {r['status']:<10} {r['attempt']:>3} "
                   f"{_progress(r):<12} {acc:<8}  {label}")
    if any(_flagged(r["summary"]) for r in rows):
        click.echo("! flagged: not distinguishable from a constant answer, significantly below the majority "
                   "baseline, or over 20% unparsed (see `cotdistill show RUN`)")


def _flagged(summary: dict) -> bool:
    return any(summary.get(flag) for flag in ("collapsed", "below_baseline", "high_unparsed"))


@cli.command()
@click.argument("run_id", type=int)
def show(run_id) -> None:
    """One run: config, progress, summary, its history and, for a failed run, its stored error."""
    import yaml
    r = _api("run_detail", run_id)
    click.echo(f"run {r['id']} ({r['experiment'] or 'no experiment'}): {r['status']}, attempt {r['attempt']}, "
               f"worker {r['worker'] or '-'}, artifacts {r['artifact_uri'] or '-'}")
    click.echo(yaml.safe_dump({"progress": r["progress"], "summary": r["summary"]}, sort_keys=False).rstrip())
    if r["history"]:
        click.echo("history:")
        for e in r["history"]:
            click.echo(f"  {e['at']} (attempt {e['attempt']}) {e['message']}")
    if r["error"]:
        click.echo("error:\n" + r["error"])


@cli.command()
@click.argument("experiment")
@click.option("--reference", default=None, help="The arm the others are compared with: its label as the report "
              "prints it (e.g. none, or 'after · n_train=400') or its arm key (default: the label-only arm when "
              "there is exactly one, else the first arm).")
@click.option("--scoring", default=None, help="Scoring mode every scored run computed (default: each run's own); "
              "arms evaluated by generation keep their generated accuracy.")
@click.option("--out", "out", type=click.Path(file_okay=False), default=None,
              help="Folder to write into (default: ./report-experiment-ID, from the experiment's id).")
def report(experiment, reference, scoring, out) -> None:
    """Write EXPERIMENT's report (name or id): report.html (self-contained), table.tex (booktabs),
    table.md, results.csv and figures/*.pdf and *.svg, with the numbers the Compare page shows; print
    each arm's verdict against the reference (the procedure, seeds as the unit, first; then the test set)."""
    from pathlib import Path
    from cotdistill.report import verdict_lines
    from worker.report import ReportError, build, report_folder, write
    _existing_database()
    try:
        found = build(experiment, reference=reference, scoring=scoring)
    except ReportError as e:
        raise click.ClickException(str(e)) from None
    folder = Path(out or report_folder(found))
    paths = write(found, folder)
    for line in verdict_lines(found["rows"]):
        click.echo(line)
    click.echo(f"report of {found['experiment']['name']!r} (reference {found['reference']}) written to "
               f"{folder}: {', '.join(str(p.relative_to(folder)) for p in paths)}")


@cli.command()
@click.argument("run_id", type=int)
def cancel(run_id) -> None:
    """Cancel a run: a queued one at once, a running one at its next training step."""
    status = _api("cancel", run_id)
    click.echo(f"run {run_id}: {status}" + (" (cancel requested; the worker stops at its next step)"
                                             if status == "running" else ""))


@cli.command()
@click.argument("run_id", type=int)
def retry(run_id) -> None:
    """Queue a failed or cancelled run again; it resumes from its last checkpoint."""
    r = _api("retry", run_id)
    if not r["queued"]:
        raise click.ClickException(r["reason"])
    click.echo(f"run {run_id}: queued again")


@cli.command()
@click.option("--queues", "-Q", default="gpu,cpu", show_default=True, help="Queues to consume.")
@click.option("--concurrency", "-c", default=1, show_default=True,
              help="Runs at once (1: in the worker process itself; one worker per GPU).")
@click.option("--name", default=None, help="Worker name (default: host name).")
@click.option("--loglevel", default="INFO", show_default=True)
@click.option("--gpus", default=None,
              help="One worker per GPU, CUDA_VISIBLE_DEVICES pinned: `0,1,2,3` or `all`. A run with "
                   "train.devices: N also takes N-1 free GPUs. Without GPUs, a list fakes the ids (CPU).")
def worker(queues, concurrency, name, loglevel, gpus) -> None:
    """Start a worker ($COTDISTILL_BROKER_URL and $COTDISTILL_DATABASE_URL; default: embedded)."""
    from worker.db import database_url, upgrade as do_upgrade
    _existing_database()             # `up` creates it before starting its workers
    do_upgrade(database_url())
    if gpus is not None:
        import logging
        import socket
        from worker.launch import parse_gpus, supervise
        try:
            ids = parse_gpus(gpus)
        except ValueError as e:
            raise click.ClickException(str(e)) from None
        logging.basicConfig(level=loglevel, format="%(asctime)s %(name)s: %(message)s")
        supervise(ids, ["--queues", queues, "--concurrency", "1", "--loglevel", loglevel],
                  name or socket.gethostname())
        return
    from worker.celery_app import app, is_embedded
    argv = ["worker", "--queues", queues, "--concurrency", str(concurrency), "--loglevel", loglevel,
            "--pool", "solo" if concurrency == 1 else "prefork", "--without-heartbeat"]
    if is_embedded():
        argv += ["--without-gossip", "--without-mingle"]
    if name:
        argv += ["--hostname", f"{name}@%h"]
    app.worker_main(argv)


@cli.command()
def reconcile() -> None:
    """Re-send queued runs without a message and recover runs whose worker died (workers also do this)."""
    from worker.reconcile import reconcile as do_reconcile
    from worker.tasks import sessions
    _existing_database()
    click.echo(do_reconcile(sessions()))


@cli.command()
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Training workers (queue gpu); default one per GPU, or 2 on a CPU-only machine.")
@click.option("--port", type=click.IntRange(1, 65535), default=8501, show_default=True, help="Port of the web app.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address of the web app; anything but 127.0.0.1 requires $COTDISTILL_PASSWORD.")
@click.option("--no-app", is_flag=True, help="Start only the workers.")
def up(workers, port, host, no_app) -> None:
    """Embedded stack: migrate, start the workers (and the app), stop them all on Ctrl-C."""
    from worker.stack import Stack
    Stack(workers=workers, port=port, host=host, app=not no_app).run()


def main() -> None:
    """Run the command; a database error it could not get past becomes one line and exit code 2."""
    from worker.db import database_url, explain
    try:
        cli()
    except Exception as e:
        line = explain(e, database_url())
        if line is None:
            raise
        click.echo(f"Error: {line}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
