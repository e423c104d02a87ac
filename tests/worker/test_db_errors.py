"""A database that cannot be used ends a command with one line naming its URL (password masked), exit
code 2 and no traceback; a SQLite file that does not exist is created only by `db upgrade` and `up`."""

import os
import shutil
import subprocess
import tempfile

import pytest

from tests.worker.test_job_commands import cli
from worker.db import masked, upgrade

NEXT_STEP = "run `cotdistill db upgrade` or `cotdistill up` first"


def commands(tmp_path, url: str):
    return cli({**os.environ, "COTDISTILL_HOME": str(tmp_path), "COTDISTILL_DATABASE_URL": url})


def one_line_error(result) -> str:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_masked_hides_only_the_password():
    assert masked("postgresql://postgres:hunter2@127.0.0.1:1/test") == "postgresql://postgres:***@127.0.0.1:1/test"
    assert masked("sqlite:///file:/x/c.db?mode=ro&uri=true") == "sqlite:///file:/x/c.db?mode=ro&uri=true"
    assert masked("postgres//u:hunter2@h/db") == "postgres//u:hunter2@h/db"       # no `://`: nothing to mask
    assert masked("nope://u:hunter2@h/db") == "nope://u:***@h/db"


@pytest.mark.parametrize("command", [("status",), ("db", "current"), ("cancel", "1"), ("show", "1"),
                                     ("submit", "configs/matrix-cqa.yaml"), ("reconcile",)])
def test_a_missing_sqlite_file_is_not_created_by_other_commands(tmp_path, command):
    path = tmp_path / "typo.db"
    line = one_line_error(commands(tmp_path, f"sqlite:///{path}")(*command))
    assert line == f"Error: no database at {path}; {NEXT_STEP}"
    assert not path.exists()


def test_db_upgrade_creates_the_missing_file(tmp_path):
    path = tmp_path / "new" / "c.db"
    run = commands(tmp_path, f"sqlite:///{path}")
    assert run("db", "upgrade").returncode == 0 and path.exists()
    assert run("status").returncode == 0


def test_a_read_only_sqlite_file(tmp_path):
    """Opened read-only (a `mode=ro` URI), a database that needs migrating cannot be written."""
    path = tmp_path / "ro.db"
    path.touch()
    url = f"sqlite:///file:{path}?mode=ro&uri=true"
    line = one_line_error(commands(tmp_path, url)("db", "upgrade"))
    assert line == f"Error: cannot connect to {url}: attempt to write a readonly database"


def test_a_sqlite_file_this_user_may_not_write(tmp_path):
    """The file and its folder read-only for the user running the command (root ignores file modes, so
    the command runs as `nobody`)."""
    folder = tempfile.mkdtemp()
    try:
        upgrade(f"sqlite:///{folder}/c.db")
        for name in os.listdir(folder):
            os.chmod(os.path.join(folder, name), 0o444)
        os.chmod(folder, 0o555)
        env = {**os.environ, "COTDISTILL_HOME": folder, "COTDISTILL_DATABASE_URL": f"sqlite:///{folder}/c.db"}
        result = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                                 *cli_argv("status")], env=env, capture_output=True, text=True, timeout=120)
        line = one_line_error(result)
        assert line.startswith(f"Error: cannot use the database at sqlite:///{folder}/c.db: no permission to write ")
    finally:
        os.chmod(folder, 0o755)
        shutil.rmtree(folder)


def cli_argv(*args) -> list[str]:
    import sys
    return [sys.executable, "-m", "worker.cli", *args]


def test_a_missing_postgresql_database(tmp_path):
    url = "postgresql+psycopg://postgres@127.0.0.1:5432/cotdistill_no_such_db"
    for command in (("db", "upgrade"), ("status",)):
        line = one_line_error(commands(tmp_path, url)(*command))
        assert line == f'Error: cannot connect to {url}: database "cotdistill_no_such_db" does not exist'


def test_an_unreachable_port_names_the_url_without_its_password(tmp_path):
    result = commands(tmp_path, "postgresql://postgres:hunter2@127.0.0.1:1/test")("submit", "configs/matrix-cqa.yaml")
    assert one_line_error(result) == "Error: cannot connect to postgresql://postgres:***@127.0.0.1:1/test: connection refused"
    assert "hunter2" not in result.stderr + result.stdout


@pytest.mark.parametrize("url, reason", [
    ("postgres//postgres@127.0.0.1/test", "not a database URL"),
    ("mysqlx://u:hunter2@127.0.0.1/test", "unknown database kind"),
])
def test_a_malformed_url(tmp_path, url, reason):
    for command in (("db", "upgrade"), ("status",)):
        line = one_line_error(commands(tmp_path, url)(*command))
        assert line == f"Error: cannot connect to {masked(url)}: {reason} (use sqlite:///PATH or postgresql+psycopg://…)"
