"""What a job may touch on the worker machine: file-system roots and teacher credentials.

    check_config_paths(cfg_dict)          # every path a run config names lies inside the allowed roots
    check_teacher(teacher_spec)           # the key variable is allow-listed, the URL is allowed

Everything that reaches a worker goes through the database, whoever wrote the row (the app, the CLI's
`submit`, a script), so these checks run twice: in the jobs API before a row is written (the app shows
the refusal next to the form) and in the worker right before a job reads a file or a key (a row written
by hand is refused too). `cotdistill run` (the science core on the operator's own shell) is not
confined: the operator's shell can already read what it likes.

Roots: the data folder ($COTDISTILL_DATA_DIR), the state folder ($COTDISTILL_HOME, which holds the
rationale sets and artifacts), $COTDISTILL_ARTIFACTS, and `COTDISTILL_ALLOWED_PATHS` (os.pathsep-
separated). The policy is cotdistill.paths: a full path, `~` never expanded, resolved (`..`,
symlinks) before it is compared, so neither `..` nor a symlink inside a root leads out of it; the
options that are paths are those each dataset loader declares (cotdistill.data.option_paths). A
refusal names only the path, never a byte of the file.

Teacher keys and URLs follow cotdistill.teachers.access: a job sends only the variables the operator
names in `COTDISTILL_TEACHER_KEYS` (exact names, no default), never the app's password, a COTDISTILL_*
variable or a database or broker secret; base URLs are normalised, then compared with
`COTDISTILL_TEACHER_URLS` (comma-separated prefixes; unset, any http(s) URL).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterator, Mapping

from cotdistill.names import name_problem
from cotdistill.paths import Refused, confine as _confine
from cotdistill.teachers.access import key_problem, url_problem

ALLOWED_PATHS_ENV = "COTDISTILL_ALLOWED_PATHS"


# ------------------------------------------------------------------------------------------------ paths

def allowed_roots(environ: Mapping[str, str] | None = None) -> list[Path]:
    """The folders a job may read from, resolved."""
    env = os.environ if environ is None else environ
    from cotdistill.data import data_dir
    from cotdistill.paths import home
    roots = [Path(env["COTDISTILL_DATA_DIR"]) if env.get("COTDISTILL_DATA_DIR") else data_dir(),
             Path(env["COTDISTILL_HOME"]) if env.get("COTDISTILL_HOME") else home()]
    if env.get("COTDISTILL_ARTIFACTS"):
        roots.append(Path(env["COTDISTILL_ARTIFACTS"]))
    roots += [Path(p) for p in env.get(ALLOWED_PATHS_ENV, "").split(os.pathsep) if p.strip()]
    return [r.expanduser().resolve() for r in roots]


def confine(path: str | Path, where: str, roots: list[Path] | None = None) -> Path:
    """`path` resolved, if it is a full path (no `~`) inside one of `roots` (cotdistill.paths)."""
    return _confine(path, where, allowed_roots() if roots is None else roots)


def _looks_like_path(value: str) -> bool:
    """A model or dataset given as a file-system path rather than a hub id or built-in name: decided
    from the text alone (looking at the disk would tell a caller what exists there)."""
    from cotdistill.data import hub_id_like
    return value.startswith(("/", ".", "~", "\\")) or "\\" in value or \
        ("/" in value and not hub_id_like(value))


def dataset_paths(name: str | None, options: Mapping | None, where: str = "data") -> Iterator[tuple[str, str]]:
    """Paths a dataset reference reads: the options its loader declares as paths (a rationale set's
    bare name as its folder under the state folder), and a local folder given as its name."""
    from cotdistill.data import option_paths
    yield from option_paths(name, options, where)


def config_paths(cfg: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """Every path a run config (plain dict, as stored in a run's row) reads."""
    data = cfg.get("data") or {}
    yield from dataset_paths(data.get("name"), data.get("options"))
    scores = (cfg.get("perturbation") or {}).get("scores_file")
    if isinstance(scores, str):
        yield "perturbation.scores_file", scores
    student = (cfg.get("student") or {}).get("name")
    if isinstance(student, str) and _looks_like_path(student):
        yield "student.name", student


def check_paths(pairs: Iterator[tuple[str, str]], roots: list[Path] | None = None) -> None:
    roots = allowed_roots() if roots is None else roots
    for where, value in pairs:
        confine(value, where, roots)


def check_config_paths(cfg: Mapping[str, Any], roots: list[Path] | None = None) -> None:
    """Refused unless every path the run config names lies inside the allowed roots."""
    check_paths(config_paths(cfg), roots)


# --------------------------------------------------------------------------------------------- teachers

def key_var_allowed(name: str, environ: Mapping[str, str] | None = None) -> bool:
    """Whether a job may send the variable `name` to a teacher (cotdistill.teachers.access)."""
    return key_problem(name, environ) is None


def url_allowed(url: str, environ: Mapping[str, str] | None = None) -> bool:
    """Whether a job may call a teacher at `url` (normalised, then compared with the allow-list)."""
    return url_problem(url, environ) is None


def check_teacher(teacher: Mapping[str, Any], environ: Mapping[str, str] | None = None,
                  roots: list[Path] | None = None) -> None:
    """Refused unless an HTTP teacher's key variable and URL are allowed, and a local teacher's model
    folder (if it is a path) lies inside the roots."""
    env = os.environ if environ is None else environ
    if teacher.get("kind") == "http":
        var = teacher.get("api_key_env")
        if var and (problem := key_problem(var, env)):
            raise Refused(f"teacher.api_key_env: {problem}")
        if problem := url_problem(str(teacher.get("base_url") or ""), env):
            raise Refused(f"teacher.base_url: {problem}")
    model = teacher.get("model")
    if teacher.get("kind") == "local" and isinstance(model, str) and _looks_like_path(model):
        confine(model, "teacher.model", roots)


def job_paths(kind: str, params: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """Every path a generation or attribution job's params read."""
    data = params.get("dataset") if kind == "generation" else params.get("data")
    data = data or {}
    yield from dataset_paths(data.get("name"), data.get("options"), "dataset" if kind == "generation" else "data")
    source = params.get("source") or {}
    model = source.get("model")
    if isinstance(model, str) and _looks_like_path(model):
        yield "source.model", model
    student = (source.get("student") or {}).get("name")
    if isinstance(student, str) and _looks_like_path(student):
        yield "source.student.name", student


def check_folder_name(name: Any, where: str) -> None:
    """A name that becomes one folder under the artifacts root (cotdistill.names: no separator, no
    '..', so neither `../x` nor `a/b` can leave or nest in that root)."""
    if name is not None and (problem := name_problem(name, where)):
        raise Refused(problem)


def check_job(kind: str, params: Mapping[str, Any], roots: list[Path] | None = None) -> None:
    """Refused unless a job reads only allowed paths, keys and URLs, and writes under a plain name."""
    roots = allowed_roots() if roots is None else roots
    check_folder_name(params.get("name"), "name")
    check_paths(job_paths(kind, params), roots)
    if kind == "generation":
        check_teacher(params.get("teacher") or {}, roots=roots)
