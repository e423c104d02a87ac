"""The attribution job: token importance for a dataset's rationales, stored per example.

params:
    source:  {"run_id": N}  a succeeded `before` run (its trained model)
           | {"student": {...}}  an untrained student (StudentConfig fields)
           | {"model": "id or path"}  any causal LM
    data:    {"name": ..., "options": {...}, "splits": ["train", "test"], "n": 500 (per split, optional)}
    method:  ig | grad_x_input | occlusion;  steps (IG), baseline, batch_size

Scores are stored as they are computed, a chunk of examples per transaction, in one `attributions`
row (lineage: the job, the scoring source, method and parameters); a recovered job skips the examples
already stored. At the end the word-level scores file for the `key_tokens` perturbation is written
to the job's folder and recorded in the attribution's params (`scores_file`); where the examples
know their key words (built-in tasks: `meta["key_indices"]`), the result's `key_agreement` says how
well the scores found them (cotdistill.attribution.key_agreement).
"""

from __future__ import annotations

import os
import time

from sqlalchemy import select

from worker.jobs import JobContext
from worker.models import Attribution, AttributionScore, Run

CHUNK = int(os.environ.get("COTDISTILL_ATTRIBUTION_CHUNK", 32))   # examples per stored batch


def scoring_model(ctx: JobContext, train_examples):
    from cotdistill.attribution import load_scoring_model
    from cotdistill.config import StudentConfig, from_dict
    from cotdistill.run import tokenizer_texts
    source = ctx.params["source"]
    if "run_id" in source:
        with ctx.sessions() as s:
            run = s.get(Run, int(source["run_id"]))
            if run is None or run.status != "succeeded" or not run.artifact_uri:
                raise ValueError(f"attribution source: run {source['run_id']} is not a succeeded run "
                                 f"with artifacts")
            return load_scoring_model(run.artifact_uri), f"run {run.id}"
    if "student" in source:
        cfg = from_dict(StudentConfig, source["student"])
        return load_scoring_model(cfg, train_texts=tokenizer_texts(train_examples)), f"student {cfg.name}"
    return load_scoring_model(source["model"]), f"model {source['model']}"


def load(params: dict) -> dict:
    """{split: examples with a rationale}, each split cut to `n` the way a run's data.n_train is
    (`sample`: random | first, `sample_seed`: DataConfig's defaults), so the scores cover the rows a
    run of the same data trains on."""
    from cotdistill import data
    from cotdistill.config import DataConfig
    from cotdistill.data import sample_rows
    d = params["data"]
    how, seed = d.get("sample", DataConfig.sample), d.get("sample_seed", DataConfig.sample_seed)
    out = {}
    for split in d.get("splits", ["train"]):
        examples = [ex for ex in data.load_examples(d["name"], split, **d.get("options", {})) if ex.rationale]
        out[split] = sample_rows(examples, d.get("n") or None, how, seed)
    return out


def attribution_row(ctx: JobContext, source_label: str) -> int:
    """The job's attributions row, created once (a recovered job finds it again)."""
    with ctx.sessions() as s:
        row = s.scalar(select(Attribution).where(Attribution.job_id == ctx.job_id))
        if row is None:
            params = {k: v for k, v in ctx.params.items() if k != "method"}
            row = Attribution(source=source_label, method=ctx.params.get("method", "ig"),
                              dataset=ctx.params["data"]["name"], params=params, job_id=ctx.job_id)
            s.add(row)
            s.commit()
        return row.id


def stored_ids(ctx: JobContext, attribution_id: int) -> set[str]:
    with ctx.sessions() as s:
        return set(s.scalars(select(AttributionScore.example_id)
                             .where(AttributionScore.attribution_id == attribution_id)).all())


def store(ctx: JobContext, attribution_id: int, results: list[dict]) -> None:
    with ctx.sessions() as s:
        s.add_all([AttributionScore(attribution_id=attribution_id, example_id=r["example_id"],
                                    tokens=r["tokens"], scores=r["scores"], words=r["words"],
                                    word_scores=r["word_scores"], completeness_error=r["completeness_error"])
                   for r in results])
        s.commit()


def write_scores_file(ctx: JobContext, attribution_id: int) -> str:
    """All stored word-level scores as the key_tokens scores file (JSONL {example_id, scores, tokens})."""
    import json
    path = ctx.out / f"attribution-{attribution_id}-word.jsonl"
    with ctx.sessions() as s:
        rows = s.execute(select(AttributionScore.example_id, AttributionScore.words, AttributionScore.word_scores)
                         .where(AttributionScore.attribution_id == attribution_id)
                         .order_by(AttributionScore.id)).all()
        attribution = s.get(Attribution, attribution_id)
        method = attribution.method
        tmp = path.with_suffix(".tmp")
        tmp.write_text("".join(json.dumps({"example_id": ex, "scores": sc, "tokens": w, "level": "word",
                                           "method": method, "sign": "signed"}) + "\n"
                               for ex, w, sc in rows), encoding="utf-8")
        tmp.replace(path)
        attribution.params = {**(attribution.params or {}), "scores_file": str(path)}
        s.commit()
    return str(path)


def agreement(ctx: JobContext, attribution_id: int, examples: list, method: str) -> dict | None:
    """The stored scores' agreement with the examples' known key words (None without ground truth)."""
    from cotdistill.attribution import key_agreement, key_positions
    keys = {ex.id: positions for ex in examples if (positions := key_positions(ex)) is not None}
    if not keys:
        return None
    with ctx.sessions() as s:
        scores = dict(s.execute(select(AttributionScore.example_id, AttributionScore.word_scores)
                                .where(AttributionScore.attribution_id == attribution_id)).all())
    return key_agreement(scores, keys, absolute=method == "grad_x_input")


def run(ctx: JobContext) -> dict:
    from cotdistill.attribution import attribute
    p = ctx.params
    splits = load(p)
    total = sum(len(v) for v in splits.values())
    ctx.beat.update(phase="loading", step=0, total=total)
    student, source_label = scoring_model(ctx, splits.get("train") or next(iter(splits.values())))
    attribution_id = attribution_row(ctx, source_label)
    done = stored_ids(ctx, attribution_id)
    todo = [ex for examples in splits.values() for ex in examples if ex.id not in done]
    ctx.beat.update(phase="attribute", step=total - len(todo), total=total, attribution_id=attribution_id)
    t0, errors = time.perf_counter(), []
    for start in range(0, len(todo), CHUNK):
        chunk = todo[start:start + CHUNK]
        results = attribute(student.model, student.tokenizer, chunk, method=p.get("method", "ig"),
                            steps=p.get("steps", 32), batch_size=p.get("batch_size", 64),
                            baseline=p.get("baseline", "zero"))
        store(ctx, attribution_id, results)
        errors += [r["completeness_error"] for r in results if r["completeness_error"] is not None]
        done_now = total - len(todo) + start + len(chunk)
        rate = (start + len(chunk)) / (time.perf_counter() - t0)
        ctx.beat.update(step=done_now, examples_per_s=rate, eta_s=(total - done_now) / rate if rate else None)
    scores_file = write_scores_file(ctx, attribution_id)
    found = agreement(ctx, attribution_id, [ex for examples in splits.values() for ex in examples],
                      p.get("method", "ig"))
    return {"key_agreement": found, "attribution_id": attribution_id, "n": total, "computed_now": len(todo), "source": source_label,
            "method": p.get("method", "ig"), "scores_file": scores_file,
            "mean_completeness_error": sum(errors) / len(errors) if errors else None,
            "max_completeness_error": max(errors) if errors else None}
