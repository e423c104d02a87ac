"""Rationale sets and teachers: generation jobs, their outputs, registered sets, prompt templates."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from worker.api.core import NotFound, iso as _iso, session, sessions
from worker.api.jobs import job_detail, submit_job

# ------------------------------------------------------------------------------------------ rationale sets

def submit_generation(dataset: dict, teacher: dict, *, prompt: dict | None = None, decoding: dict | None = None,
                      batch_size: int = 8, name: str | None = None) -> int:
    """Queue a teacher generation job (worker/generation_job.py). An HTTP teacher's API key is never
    passed here: `teacher["api_key_env"]` names the worker's environment variable that holds it."""
    if teacher.get("kind") not in ("local", "http"):
        raise ValueError(f"teacher kind must be 'local' or 'http', not {teacher.get('kind')!r}")
    if any("key" in k.lower() and k != "api_key_env" for k in teacher):
        raise ValueError("an API key is never stored: give api_key_env, the name of the environment "
                         "variable that holds it on the workers")
    return submit_job("generation", {"dataset": dataset, "teacher": teacher, "prompt": prompt or {},
                                     "decoding": decoding or {}, "batch_size": batch_size, "name": name},
                      name=name)


def generation_outputs(job_id: int, *, limit: int = 200) -> list[dict]:
    """What a generation job has written so far (or its finished set): per example the question, gold,
    the teacher's raw output, parsed rationale and label, and whether it matches gold."""
    import json
    from worker.generation_job import set_dir
    folder = set_dir(job_detail(job_id)["params"], job_id)
    files = [folder / "examples.jsonl", folder.with_name(f".{folder.name}.partial") / "records.jsonl"]
    for path in files:
        if path.exists():
            out = []
            for line in path.read_text(encoding="utf-8").splitlines()[:limit]:
                try:
                    out.append(json.loads(line))
                except ValueError:                  # the line being written
                    break
            return out
    return []


def register_rationale_set(path: str | Path) -> int:
    """Register an existing set folder (generated or imported) in the database."""
    from worker.guard import confine
    from worker.rationale_sets import register
    from cotdistill.data.rationale_set import resolve
    from cotdistill.paths import is_bare_name
    if not is_bare_name(str(path)):              # a path, not a set's name under the state folder
        confine(path, "path")
    return register(sessions(), confine(resolve(path), "path"))


def list_rationale_sets() -> list[dict]:
    """Registered sets with their provenance (teacher, prompt, decoding, counts, teacher accuracy):
    the catalogue's sets (cotdistill.data.catalogue), registered here first if they are new."""
    from worker.models import RationaleSet
    from worker.rationale_sets import sync
    sync(sessions())
    with session() as s:
        return [{"id": r.id, "name": r.name, "dataset": r.dataset, "source": r.source,
                 "content_hash": r.content_hash, "teacher_accuracy": r.teacher_accuracy,
                 "n_examples": r.n_examples, "n_unparsed": r.n_unparsed, "path": r.path,
                 "job_id": r.job_id, "created_at": _iso(r.created_at), "provenance": r.provenance or {}}
                for r in s.scalars(select(RationaleSet).order_by(RationaleSet.id.desc())).all()]


def rationale_set_examples(set_id: int, *, split: str | None = None, search: str | None = None,
                           teacher_correct: bool | None = None, limit: int = 200) -> list[dict]:
    from worker.models import ExampleRow
    with session() as s:
        q = select(ExampleRow).where(ExampleRow.rationale_set_id == set_id).order_by(ExampleRow.id)
        if split:
            q = q.where(ExampleRow.split == split)
        if teacher_correct is not None:
            q = q.where(ExampleRow.teacher_correct.is_(teacher_correct))
        if search:
            like = f"%{search}%"
            q = q.where(ExampleRow.question.ilike(like) | ExampleRow.rationale.ilike(like))
        return [{"example_id": r.example_id, "split": r.split, "question": r.question, "choices": r.choices,
                 "label": r.label, "rationale": r.rationale, "teacher_label": r.teacher_label,
                 "teacher_correct": r.teacher_correct} for r in s.scalars(q.limit(limit)).all()]


def compare_rationale_sets(set_a: int, set_b: int) -> dict:
    """Two sets side by side: sizes, rationale lengths, accuracy against gold, overlap, agreement."""
    from cotdistill.data.store import compare_sets
    paths = {r["id"]: r["path"] for r in list_rationale_sets()}
    for i in (set_a, set_b):
        if i not in paths:
            raise NotFound(f"no rationale set {i}")
    return compare_sets(paths[set_a], paths[set_b])


# ------------------------------------------------------------------------------------------ for the app's screens

def _prompts_module():
    """cotdistill.teachers.prompts: importable without torch (the teachers load lazily)."""
    from cotdistill.teachers import prompts
    return prompts


def prompt_templates() -> dict[str, str]:
    """The built-in few-shot CoT template of each dataset kind (multiple_choice, yes_no, numeric)."""
    return dict(_prompts_module().TEMPLATES)


def prompt_problem(kind: str, template: str, rationalize: bool = False) -> str | None:
    """Why a (possibly edited) template cannot prompt a teacher for examples of `kind`, or None."""
    try:
        _prompts_module().check_template(template, kind, rationalize)
    except ValueError as e:
        return str(e)
    return None
