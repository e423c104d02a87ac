"""The `cotdistill` command: the science subcommands (mounted from cotdistill.cli) plus the job
system's. So far: `cotdistill db upgrade|downgrade|current`.
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


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
