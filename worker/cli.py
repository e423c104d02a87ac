"""The `cotdistill` command: the science subcommands (mounted from cotdistill.cli) plus the job
system's. So far: `cotdistill db upgrade|downgrade|current`, `submit`, `status`.
"""

from __future__ import annotations

import click

from cotdistill.cli import science

cli = science                     # one command; the science group is extended here, never the reverse


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
    do_downgrade(database_url(), revision)
    click.echo(f"database at revision {current()}")


@db.command(name="current")
def show_current() -> None:
    """Print the database's revision."""
    from worker.db import current
    click.echo(current() or "empty (run `cotdistill db upgrade`)")


def _session():
    from worker.db import database_url, make_engine, session_factory, upgrade as do_upgrade
    do_upgrade(database_url())                     # idempotent: a new database is created at head
    return session_factory(make_engine())()


@cli.command()
@click.argument("matrix", type=click.Path(dir_okay=False, exists=True))
@click.option("--force", is_flag=True, help="Rerun cells whose identical config already succeeded.")
def submit(matrix, force) -> None:
    """Expand an experiment matrix into runs and queue the missing ones; prints the run ids."""
    from cotdistill.config import ConfigError
    from worker.experiments import load_matrix, submit as do_submit
    try:
        m = load_matrix(matrix)
        with _session() as session:
            r = do_submit(session, m, force=force)
    except ConfigError as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"experiment {m.name!r} (id {r.experiment_id}): {len(r.queued)} queued, "
               f"{len(r.kept)} already queued/running/done, {len(r.reused)} reused from identical runs")
    if r.queued:
        click.echo("queued runs: " + " ".join(map(str, r.queued)))


@cli.command()
@click.argument("experiment", required=False)
def status(experiment) -> None:
    """Runs with status, progress and accuracy (of one experiment, by name or id, or all)."""
    from sqlalchemy import or_, select
    from worker.models import Experiment, Run
    with _session() as session:
        query = select(Run, Experiment.name).join(Experiment, isouter=True).order_by(Run.id)
        if experiment:
            cond = Experiment.name == experiment
            query = query.where(or_(cond, Experiment.id == int(experiment)) if experiment.isdigit() else cond)
        rows = session.execute(query).all()
    click.echo(f"{'run':>5}  {'experiment':<20} {'status':<10} {'progress':<11} {'accuracy':<8}  config")
    for run, name in rows:
        c = run.config
        label = f"{c['data']['name']} {c['placement']}/{c['perturbation']['kind']} seed {c['seed']}"
        progress = f"{run.step}/{run.total_steps}" if run.total_steps else "-"
        acc = f"{run.accuracy:.3f}" if run.accuracy is not None else "-"
        click.echo(f"{run.id:>5}  {(name or '-'):<20} {run.status:<10} {progress:<11} {acc:<8}  {label}")


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
