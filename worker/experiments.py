"""Experiments: a named matrix of factors expanded into runs, submitted idempotently.

    matrix = load_matrix("configs/matrix-cqa.yaml")
    cells = expand(matrix)                     # [(overrides, RunConfig)], one per combination
    result = submit(session, matrix)           # queues only what is missing or failed

A matrix file:

    name: cqa-placements
    base: cqa-after.yaml                       # a run config (relative to the matrix file, or inline), optional
    factors:                                   # dotted keys; the cartesian product is taken
      placement: [none, before, after]
      perturbation: [{kind: none}, {kind: shuffle}]
      seed: [0, 1, 2]

The factor `variant` is a list of mappings of dotted keys that vary together (arms that are not a full
cartesian product, such as {placement: none} and {placement: after, perturbation.kind: key_tokens}):

      variant: [{placement: none}, {placement: after, perturbation: {kind: key_tokens, params: {k: 3}}}]

A cell with `train.steps: 0` is the untouched student (evaluated without fine-tuning), one run per
evaluation protocol: `after` becomes `none` and the perturbation is dropped (see `untouched`), e.g.

      train.steps: [200, 0]                    # every arm trained, plus the untouched baseline

A cell with `placement: before` and `eval.mode: score` is refused (RunConfig.check_protocol).

Each cell's resolved config has a stable hash (RunConfig.hash: settings, data and scores content,
results version, device kind and precision). A cell whose identical config already succeeded (in any
experiment) is reused, not rerun, unless forced, and one queued or running elsewhere is shared;
re-submitting an experiment queues only its missing, failed or cancelled cells. The same name with
another matrix is an error (`new_version` makes `name@2`); a matrix above CONFIRM_ABOVE cells needs
`confirm`; duplicate cells are reported as such; results of an older results version are reused only
with `reuse_old`.

Concurrent submits of one experiment (four terminals, two app tabs) are serialized on the experiment's
row: the first creates it and queues the cells, the others wait for it and then find those cells
queued (`kept`), so no cell is queued twice and nobody sees a unique-name error.
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cotdistill.errors import ConfigError
from cotdistill.config import RunConfig, from_dict, read_config_file
from cotdistill.names import name_problem
from worker.models import Experiment, Run, utcnow


@dataclass
class Matrix:
    name: str
    base: dict
    factors: dict[str, list]

    def __post_init__(self):
        if problem := name_problem(self.name, "experiment name"):
            raise ConfigError(problem)


CONFIRM_ABOVE = 500
"""A matrix with more cells than this is queued only when confirmed (`submit --yes`, `confirm=True`)."""


class NeedsConfirmation(ConfigError):
    """The matrix is larger than CONFIRM_ABOVE cells and was not confirmed."""


@dataclass
class SubmitResult:
    experiment_id: int
    name: str = ""                                       # the experiment's name (name@2 with new_version)
    queued: list[int] = field(default_factory=list)      # new or re-queued runs
    reused: list[int] = field(default_factory=list)      # identical configs that already succeeded
    kept: list[int] = field(default_factory=list)        # this experiment's queued/running/succeeded cells
    shared: list[int] = field(default_factory=list)      # identical cells queued/running in another experiment
    duplicates: list[dict] = field(default_factory=list)  # factors of cells identical to an earlier cell
    outdated: list[int] = field(default_factory=list)    # same settings succeeded under an older results
                                                         # version: not reused, their cells queued anew


def load_matrix(path: str | Path) -> Matrix:
    """The matrix of a YAML file (its `base` file, if one is named, read relative to it);
    ConfigError naming the file and what is wrong."""
    path = Path(path)
    return matrix_of(read_config_file(path) or {}, str(path), path.parent)


def matrix_of(raw, where: str = "matrix", folder: Path | None = None) -> Matrix:
    """A Matrix from its plain data {name, base, factors}; `base` is an inline run config, or
    (with `folder`, for a file) the name of a run config file relative to `folder`."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: a matrix is a mapping with `name` and `factors`, not a "
                          f"{type(raw).__name__}")
    unknown = set(map(str, raw)) - {"name", "base", "factors"}
    if unknown or not raw.get("name") or not isinstance(raw.get("factors"), dict):
        raise ConfigError(f"{where}: a matrix needs `name` and `factors` (a mapping of dotted keys to lists)"
                          + (f"; unknown key(s) {', '.join(sorted(unknown))}" if unknown else ""))
    if not isinstance(raw["name"], str):
        raise ConfigError(f"{where}: name must be text, not {raw['name']!r}")
    base = raw.get("base")
    if isinstance(base, str) and base and folder is not None:
        base_path = (folder / base).resolve()
        if not base_path.is_file():
            raise ConfigError(f"{where}: base config {base} not found (looked at {base_path})")
        base = read_config_file(base_path, "base config")
        if base is not None and not isinstance(base, dict):
            raise ConfigError(f"base config {base_path}: the top level must be a mapping")
    elif base is not None and not isinstance(base, dict):
        expected = "a run config file name or" if folder is not None else "an inline run config:"
        raise ConfigError(f"{where}: base must be {expected} a mapping of run settings, not "
                          f"{_short(base)}")
    for key, values in raw["factors"].items():
        if not isinstance(key, str) or not all(part.strip() for part in key.split(".")):
            raise ConfigError(f"{where}: factor {key!r} is not a dotted key like train.lr")
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{where}: factor {key!r} must be a non-empty list")
        if key == "variant" and not all(isinstance(v, dict) for v in values):
            raise ConfigError(f"{where}: factor 'variant' must be a list of mappings of dotted keys")
    return Matrix(raw["name"], base or {}, raw["factors"])


def _short(value, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


def set_dotted(data: dict, key: str, value) -> None:
    *parents, last = str(key).split(".")
    for i, part in enumerate(parents):
        data = data.setdefault(part, {})
        if not isinstance(data, dict):
            raise ConfigError(f"{'.'.join(parents[:i + 1])} is not a section, so {key} cannot be set")
    data[last] = copy.deepcopy(value)


def untouched(data: dict, cfg: RunConfig) -> None:
    """A `train.steps: 0` cell (the untouched student) in place: it trains on nothing, so only its
    evaluation protocol is left of the placement: `after` is scored like `none` (the label right after
    the prompt) and becomes `none`; the perturbation and rationale weight are dropped. Cells that differ
    only in those settings are then one run (a duplicate), one per protocol: none, and before."""
    if cfg.placement == "after":
        data["placement"] = "none"
    data["perturbation"] = {}
    data.pop("rationale_weight", None)


def expand(matrix: Matrix) -> list[tuple[dict, RunConfig]]:
    """Every combination of the factors as (the factor values, the resolved config)."""
    keys = list(matrix.factors)
    cells = []
    for combo in itertools.product(*(matrix.factors[k] for k in keys)):
        data = copy.deepcopy(matrix.base)
        data.pop("name", None)
        for key, value in zip(keys, combo):
            if key == "variant":                         # several keys that vary together
                for sub_key, sub_value in value.items():
                    set_dotted(data, sub_key, sub_value)
            else:
                set_dotted(data, key, value)
        data["name"] = matrix.name
        try:
            cfg = from_dict(RunConfig, data)
            if cfg.train.steps == 0:
                untouched(data, cfg)
            if cfg.placement == "none" and data.get("perturbation", {}) != {}:
                # Label-only trains on no rationale: its perturbation cells are one run (a duplicate).
                data["perturbation"] = {}
            cfg = from_dict(RunConfig, data)
            cfg.check_protocol()
        except ConfigError as e:
            raise ConfigError(f"matrix {matrix.name!r}, cell {dict(zip(keys, combo))}: {e}") from None
        cells.append((dict(zip(keys, combo)), cfg))
    return cells


def _experiment(session: Session, matrix: Matrix, new_version: bool) -> Experiment:
    """The experiment of this name and matrix: a new one, the same one, or `name@k` with new_version.
    The same name with another matrix is an error: its earlier runs would vanish from `status`."""
    name, version = matrix.name, 1
    while True:
        found = session.scalar(select(Experiment).where(Experiment.name == name))
        if found is None:
            experiment = Experiment(name=name, factors=matrix.factors)
            session.add(experiment)
            session.flush()
            return experiment
        if found.factors == matrix.factors and (found.base or {}) == (matrix.base or {}):
            return found
        if not new_version:
            raise ConfigError(f"experiment {name!r} already exists with another matrix (factors or base "
                              f"differ); give the new matrix another name, or submit it with "
                              f"--new-version to make {matrix.name}@{version + 1}")
        version += 1
        name = f"{matrix.name}@{version}"


def _older_successes(session: Session) -> dict[str, Run]:
    """Succeeded runs by settings hash (settings alone, no data content or results version)."""
    from cotdistill import RESULTS_VERSION
    found: dict[str, Run] = {}
    for run in session.scalars(select(Run).where(Run.status == "succeeded").order_by(Run.id.desc())):
        if (run.summary or {}).get("results_version", 1) >= RESULTS_VERSION:
            continue
        try:
            found.setdefault(from_dict(RunConfig, dict(run.config)).settings_hash(), run)
        except (ConfigError, TypeError, ValueError):
            continue
    return found


def submit(session: Session, matrix: Matrix, *, force: bool = False, confirm: bool = False,
           new_version: bool = False, reuse_old: bool = False) -> SubmitResult:
    """Create or update the experiment and queue its missing cells; commits.

    Every cell is expanded and validated (a RunConfig built) before any is queued. A cell identical to
    an earlier one is a duplicate, reported and queued once; one identical to a queued or running run of
    another experiment shares that run; one whose identical config succeeded anywhere reuses it (unless
    forced). A success of the same settings under an older results version is not reused (reported in
    `outdated`) unless `reuse_old`."""
    cells = expand(matrix)
    if len(cells) > CONFIRM_ABOVE and not confirm:
        raise NeedsConfirmation(f"matrix {matrix.name!r} expands to {len(cells)} cells, more than "
                                f"{CONFIRM_ABOVE}: check the factors, then confirm (submit --yes)")
    digests = [cfg.hash() for _, cfg in cells]
    for tries in range(SUBMIT_TRIES):
        try:
            return _submit(session, matrix, cells, digests, force=force, new_version=new_version,
                           reuse_old=reuse_old)
        except IntegrityError:                   # another submit created the experiment meanwhile
            session.rollback()
            if tries + 1 == SUBMIT_TRIES:
                raise
    raise AssertionError("unreachable")


SUBMIT_TRIES = 3


def _lock(session: Session, experiment: Experiment) -> None:
    """Hold the experiment's row until this transaction commits (a row lock on PostgreSQL, the write
    lock on SQLite): a concurrent submit of the same experiment waits here, then sees these runs."""
    session.execute(update(Experiment).where(Experiment.id == experiment.id).values(name=Experiment.name)
                    .execution_options(synchronize_session=False))


def _submit(session: Session, matrix: Matrix, cells: list, digests: list[str], *, force: bool,
            new_version: bool, reuse_old: bool) -> SubmitResult:
    experiment = _experiment(session, matrix, new_version)
    _lock(session, experiment)
    experiment.factors, experiment.base = matrix.factors, matrix.base
    experiment.cells = [{"config_hash": d, "factors": factors} for (factors, _), d in zip(cells, digests)]
    result = SubmitResult(experiment.id, experiment.name)
    older = None
    seen: set[str] = set()
    for (factors, cfg), digest in zip(cells, digests):
        if digest in seen:
            result.duplicates.append(factors)
            continue
        seen.add(digest)
        mine = session.scalars(select(Run).where(Run.experiment_id == experiment.id, Run.config_hash == digest)
                               .order_by(Run.id.desc())).first()
        in_flight = mine is not None and mine.status in ("queued", "running")
        if in_flight or (mine is not None and mine.status == "succeeded" and not force):
            result.kept.append(mine.id)
            continue
        elsewhere = session.scalars(select(Run).where(Run.config_hash == digest,
                                                      Run.status.in_(("queued", "running")))).first()
        if elsewhere is not None:
            result.shared.append(elsewhere.id)
            continue
        done = None if force else session.scalars(
            select(Run).where(Run.config_hash == digest, Run.status == "succeeded")).first()
        if done is not None:
            result.reused.append(done.id)
            continue
        if not force:
            older = _older_successes(session) if older is None else older
            old = older.get(cfg.settings_hash())
            if old is not None and reuse_old:
                result.reused.append(old.id)
                continue
            if old is not None:
                result.outdated.append(old.id)
        if mine is not None and mine.status in ("failed", "cancelled"):
            mine.status, mine.error, mine.cancel_requested = "queued", None, False
            mine.attempt += 1
            mine.created_at = utcnow()
            result.queued.append(mine.id)
            continue
        run = Run(experiment_id=experiment.id, config=cfg.to_dict(), config_hash=digest, status="queued",
                  total_steps=cfg.train.steps)
        session.add(run)
        session.flush()
        result.queued.append(run.id)
    session.commit()
    return result
