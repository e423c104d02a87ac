"""Rationale sets in the database: a finished (immutable) set folder registered with its provenance
and examples, so that the app can list, search and compare them without reading files."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import insert, select
from sqlalchemy.orm import sessionmaker

from worker.models import ExampleRow, RationaleSet


def register(sessions: sessionmaker, path: str | Path, *, job_id: int | None = None) -> int:
    """Register a set folder (idempotent: a set with the same content hash is found, not duplicated)."""
    from cotdistill.rationale_sets import open_rationale_set
    rs = open_rationale_set(path)
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
