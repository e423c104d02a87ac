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

Each cell's resolved config has a stable hash. A cell whose identical config already succeeded (in any
experiment) is reused, not rerun, unless forced; re-submitting an experiment queues only its missing,
failed or cancelled cells.
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from cotdistill.config import ConfigError, RunConfig, from_dict
from worker.models import Experiment, Run, utcnow


@dataclass
class Matrix:
    name: str
    base: dict
    factors: dict[str, list]


@dataclass
class SubmitResult:
    experiment_id: int
    queued: list[int] = field(default_factory=list)      # new or re-queued runs
    reused: list[int] = field(default_factory=list)      # identical configs that already succeeded
    kept: list[int] = field(default_factory=list)        # this experiment's queued/running/succeeded cells


def load_matrix(path: str | Path) -> Matrix:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"{path}: {e}") from None
    unknown = set(raw) - {"name", "base", "factors"}
    if unknown or not raw.get("name") or not isinstance(raw.get("factors"), dict):
        raise ConfigError(f"{path}: a matrix needs `name` and `factors` (a mapping of dotted keys to lists)"
                          + (f"; unknown key(s) {', '.join(sorted(unknown))}" if unknown else ""))
    base = {}
    if isinstance(raw.get("base"), dict):                 # an inline run config
        base = raw["base"]
    elif raw.get("base"):
        base_path = (path.parent / raw["base"]).resolve()
        if not base_path.is_file():
            raise ConfigError(f"{path}: base config {raw['base']} not found (looked at {base_path})")
        base = yaml.safe_load(base_path.read_text(encoding="utf-8")) or {}
    for key, values in raw["factors"].items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{path}: factor {key!r} must be a non-empty list")
        if key == "variant" and not all(isinstance(v, dict) for v in values):
            raise ConfigError(f"{path}: factor 'variant' must be a list of mappings of dotted keys")
    return Matrix(raw["name"], base, raw["factors"])


def set_dotted(data: dict, key: str, value) -> None:
    *parents, last = key.split(".")
    for part in parents:
        data = data.setdefault(part, {})
    data[last] = copy.deepcopy(value)


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
        except ConfigError as e:
            raise ConfigError(f"matrix {matrix.name!r}, cell {dict(zip(keys, combo))}: {e}") from None
        cells.append((dict(zip(keys, combo)), cfg))
    return cells


def submit(session: Session, matrix: Matrix, *, force: bool = False) -> SubmitResult:
    """Create or update the experiment and queue its missing cells; commits."""
    experiment = session.scalar(select(Experiment).where(Experiment.name == matrix.name))
    if experiment is None:
        experiment = Experiment(name=matrix.name, factors=matrix.factors)
        session.add(experiment)
        session.flush()
    cells = expand(matrix)
    experiment.factors, experiment.base = matrix.factors, matrix.base
    experiment.cells = [{"config_hash": cfg.hash(), "factors": factors} for factors, cfg in cells]
    result = SubmitResult(experiment.id)
    for _, cfg in cells:
        digest = cfg.hash()
        mine = session.scalars(select(Run).where(Run.experiment_id == experiment.id, Run.config_hash == digest)
                               .order_by(Run.id.desc())).first()
        in_flight = mine is not None and mine.status in ("queued", "running")
        if in_flight or (mine is not None and mine.status == "succeeded" and not force):
            result.kept.append(mine.id)
            continue
        done = None if force else session.scalars(
            select(Run).where(Run.config_hash == digest, Run.status == "succeeded")).first()
        if done is not None:
            result.reused.append(done.id)
            continue
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
