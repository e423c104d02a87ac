"""Rationale sets in the database: a finished (immutable) set folder registered with its provenance
and examples, so that the app can list, search and compare them without reading files.

The database mirrors the catalogue (cotdistill.data.catalogue), the one registry of sets: register()
adds a folder outside $COTDISTILL_HOME/rationale_sets (a teacher job's) to the catalogue too, and
sync() registers every catalogue set the database lacks (a set made with `cotdistill data import` or
`cotdistill data register`), so the app lists what the CLI lists."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from worker.models import ExampleRow, RationaleSet


def register(sessions: sessionmaker, path: str | Path, *, job_id: int | None = None) -> int:
    """Register a set folder (idempotent: a set with the same content hash is found, not duplicated),
    in the database and in the catalogue."""
    from cotdistill.data.catalogue import remember
    from cotdistill.data.store import open_rationale_set
    rs = open_rationale_set(path)
    remember(rs.path)
    p = rs.provenance
    with sessions() as s:
        found = s.scalar(select(RationaleSet).where(RationaleSet.content_hash == rs.content_hash))
        if found is not None:
            return found.id
        row = RationaleSet(name=p["name"], dataset=(p.get("dataset") or {}).get("name") or "?",
                           source=p["source"] if not p.get("teacher") else
                           f"{p['source']}: {p['teacher'].get('model') or p['teacher']}",
                           prompt=(p.get("prompt") or {}).get("template"), decoding=p.get("decoding"),
                           content_hash=rs.content_hash, teacher_accuracy=p.get("teacher_accuracy"),
                           provenance=p, path=str(rs.path), n_examples=p.get("n_examples"),
                           n_unparsed=p.get("n_unparsed"), job_id=job_id)
        s.add(row)
        s.flush()
        rows = [{"rationale_set_id": row.id, "example_id": str(r["id"]), "split": r["split"],
                 "question": r["question"], "choices": r.get("choices"), "label": str(r["label"]),
                 "rationale": r.get("rationale"), "teacher_label": r.get("teacher_label"),
                 "teacher_correct": r.get("teacher_correct")} for r in rs.records]
        if rows:
            s.execute(insert(ExampleRow), rows)
        s.commit()
        return row.id


def sync(sessions: sessionmaker) -> list[str]:
    """Register every catalogue set the database lacks (by content hash); returns why any set was
    left out (unreadable, or outside the folders jobs may read), one sentence each."""
    from cotdistill.data.catalogue import catalogue
    from cotdistill.errors import DataError
    from worker.guard import Refused, confine
    entries = catalogue()
    with sessions() as s:
        known = set(s.scalars(select(RationaleSet.content_hash)).all())
    skipped = []
    for entry in entries:
        if entry.error or entry.content_hash in known:
            if entry.error:
                skipped.append(f"{entry.path}: {entry.error}")
            continue
        try:
            register(sessions, confine(entry.path, "catalogue"))
        except (DataError, Refused) as e:
            skipped.append(f"{entry.path}: {e}")
        except IntegrityError:          # another process registered it meanwhile
            pass
    return skipped
