"""Jobs (attribution, generation) and what attribution produces: scores, key-token statistics, the key-token study."""

from __future__ import annotations

from sqlalchemy import func, select

from worker import state
from worker.api.core import NotFound, iso as _iso, session
from worker.api.runs import submit_matrix

# ------------------------------------------------------------------------------------------ jobs

def _job_row(job) -> dict:
    return {"id": job.id, "kind": job.kind, "name": job.name, "params": job.params, "status": job.status,
            "attempt": job.attempt, "step": job.step, "total_steps": job.total_steps,
            "progress": job.progress or {}, "worker": job.worker, "error": job.error,
            "summary": job.summary or {}, "created_at": _iso(job.created_at),
            "started_at": _iso(job.started_at), "finished_at": _iso(job.finished_at),
            "heartbeat_at": _iso(job.heartbeat_at), "artifact_uri": job.artifact_uri,
            "enqueued_at": _iso(job.enqueued_at), "waiting": None}


def submit_job(kind: str, params: dict, *, name: str | None = None) -> int:
    """Queue a generation or attribution job (worker/jobs.py); returns its id."""
    from worker.jobs import create
    from worker.models import Job
    from worker.guard import check_job
    from worker.reconcile import send
    check_job(kind, params)
    with session() as s:
        job_id = create(s, kind, params, name=name)
        send(s, [job_id], model=Job)
    return job_id


def submit_attribution(source: dict, data: dict, *, method: str = "ig", steps: int = 32,
                       baseline: str = "zero", batch_size: int = 64, name: str | None = None) -> int:
    """Token attribution for a dataset's rationales. source: {run_id} (a `before` run),
    {student: {...}} or {model: id/path}; data: {name, options, splits, n}."""
    from cotdistill.attribution import BASELINES, METHODS
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
    if baseline not in BASELINES:
        raise ValueError(f"baseline must be one of {', '.join(BASELINES)}, not {baseline!r}")
    if not any(k in source for k in ("run_id", "student", "model")):
        raise ValueError("source needs one of run_id, student, model")
    return submit_job("attribution", {"source": source, "data": data, "method": method, "steps": steps,
                                      "baseline": baseline, "batch_size": batch_size}, name=name)


def list_jobs(kind: str | None = None) -> list[dict]:
    from worker.models import Job
    with session() as s:
        query = select(Job).order_by(Job.id.desc())
        if kind:
            query = query.where(Job.kind == kind)
        rows = [_job_row(j) for j in s.scalars(query).all()]
        if any(r["status"] == "queued" for r in rows):
            from worker.presence import queue_reasons
            reasons = queue_reasons(s, kind="job")
            for r in rows:
                r["waiting"] = reasons.get(r["id"]) if r["status"] == "queued" else None
        return rows


def job_detail(job_id: int) -> dict:
    from worker.models import Job
    with session() as s:
        job = s.get(Job, job_id)
        if job is None:
            raise NotFound(f"no job {job_id}")
        return _job_row(job)


def cancel_job(job_id: int) -> str:
    from worker.models import Job
    with session() as s:
        status = state.request_cancel(s, job_id, model=Job)
    if status is None:
        raise NotFound(f"no job {job_id}")
    return status


def retry_job(job_id: int) -> bool:
    """Queue a failed or cancelled job again; it skips what it already stored."""
    from worker.models import Job
    from worker.reconcile import send
    with session() as s:
        if not state.requeue(s, job_id, from_status=("failed", "cancelled"), new_attempt=True, model=Job):
            return False
        send(s, [job_id], model=Job)
    return True


def list_attributions() -> list[dict]:
    """Every attribution with its lineage (job, scoring source, method, dataset) and size."""
    from worker.models import Attribution, AttributionScore
    with session() as s:
        counts = dict(s.execute(select(AttributionScore.attribution_id, func.count())
                                .group_by(AttributionScore.attribution_id)).all())
        return [{"id": a.id, "source": a.source, "method": a.method, "dataset": a.dataset,
                 "params": a.params or {}, "job_id": a.job_id, "created_at": _iso(a.created_at),
                 "n": counts.get(a.id, 0)}
                for a in s.scalars(select(Attribution).order_by(Attribution.id.desc())).all()]


def attribution_scores(attribution_id: int, *, example_ids: list[str] | None = None,
                       limit: int | None = 500) -> list[dict]:
    """Per-example tokens and scores (and words, word scores, completeness error)."""
    from worker.models import AttributionScore
    with session() as s:
        query = select(AttributionScore).where(AttributionScore.attribution_id == attribution_id) \
            .order_by(AttributionScore.id)
        if example_ids is not None:
            query = query.where(AttributionScore.example_id.in_(example_ids))
        if limit:
            query = query.limit(limit)
        return [{"example_id": r.example_id, "tokens": r.tokens, "scores": r.scores, "words": r.words,
                 "word_scores": r.word_scores, "completeness_error": r.completeness_error}
                for r in s.scalars(query).all()]


def key_token_study(attribution_id: int, *, ks: list[int], seeds: list[int], base: dict,
                    name: str | None = None, order: str = "original") -> dict:
    """Queue the key-token study of a finished attribution (key_token_study_matrix); submit_matrix's
    answer (queued, reused, kept, ...)."""
    return submit_matrix(key_token_study_matrix(attribution_id, ks=ks, seeds=seeds, base=base, name=name,
                                                order=order))


def key_token_study_matrix(attribution_id: int, *, ks: list[int], seeds: list[int], base: dict,
                           name: str | None = None, order: str = "original") -> dict:
    """The key-token study of a finished attribution as an experiment matrix (plan_matrix shows what
    queueing it would do): {label only, full rationale after, key tokens top-k after for each k,
    random k after for each k} x seeds, on top of `base` (a run config: dataset, student, training).
    Runs record the scores file, hence the attribution, they used."""
    attribution = next((a for a in list_attributions() if a["id"] == attribution_id), None)
    if attribution is None or not attribution["params"].get("scores_file"):
        raise NotFound(f"attribution {attribution_id} does not exist or has not finished")
    scores_file = attribution["params"]["scores_file"]
    variants = [{"placement": "none", "perturbation": {"kind": "none"}},
                {"placement": "after", "perturbation": {"kind": "none"}}]
    for k in ks:
        variants.append({"placement": "after", "perturbation": {
            "kind": "key_tokens", "level": "word", "params": {"k": k, "order": order}, "scores_file": scores_file}})
        variants.append({"placement": "after", "perturbation": {
            "kind": "random_subset", "level": "word", "params": {"k": k}}})
    return {"name": name or f"key-tokens-a{attribution_id}", "base": base,
            "factors": {"variant": variants, "seed": list(seeds)}}


def _attribution(attribution_id: int) -> dict:
    found = next((a for a in list_attributions() if a["id"] == attribution_id), None)
    if found is None:
        raise NotFound(f"no attribution {attribution_id}")
    return found


def attributed_examples(attribution_id: int) -> list[dict]:
    """The examples an attribution scored, as its job loaded them (dataset, options, splits, n): id,
    split, kind, question, choices, gold label, rationale."""
    from worker.attribution_job import load
    d = _attribution(attribution_id)["params"].get("data") or {}
    out = []
    for split, examples in load({"data": d}).items():      # the job's own selection (sampled as a run's)
        for ex in examples:
            out.append({"example_id": ex.id, "split": split, "kind": ex.kind, "question": ex.question,
                        "choices": list(ex.choices) if ex.choices else None, "label": ex.label,
                        "rationale": ex.rationale})
    return out


FUNCTION_WORDS = frozenset("""
a an the and or but nor so yet if then than that this these those there here it its it's they them their
he him his she her we us our you your i me my of to in on at by for with from into onto over under about
as is are was were be been being am do does did done have has had having can could will would shall should
may might must not no yes also too very just only all any some each every both either neither such
what which who whom whose when where why how because since while until after before again more most
other another same own out up down off above below between through during again once
""".split())
"""Function words of the key-token breakdown (a small English stopword list); 'yes' and 'no' count as
answers where they are the gold label."""


def _word(text: str) -> str:
    import string
    return text.strip(string.punctuation + "“”‘’«»").casefold()


def _answer_words(example: dict) -> set[str]:
    """The words that name an example's gold answer: its label ('b', '(b)', 'yes', '42') and, for
    multiple choice, the gold choice's text."""
    names = {_word(example["label"])}
    if example["kind"] == "multiple_choice" and example.get("choices"):
        index = "abcdefghijklmnopqrstuvwxyz".find(example["label"])
        if 0 <= index < len(example["choices"]):
            names.add(_word(example["choices"][index]))
    return {n for n in names if n}


def key_token_stats(attribution_id: int, *, k: int = 3) -> list[dict]:
    """The words most often among an example's k highest-scoring rationale words (ties to the earlier
    word, as the key_tokens perturbation ranks them), counted over the attribution's examples: rows
    {token, count (examples whose top k hold it), share (of the examples), category}, most frequent
    first. category: `answer` (the word names the example's gold answer: its label or the gold
    choice's text), `function` (a function word, FUNCTION_WORDS) or `content`. A word that names the
    answer in some examples only has one row per category."""
    from collections import Counter
    if k < 1:
        raise ValueError(f"k must be at least 1, not {k}")
    gold = {ex["example_id"]: _answer_words(ex) for ex in attributed_examples(attribution_id)}
    rows = attribution_scores(attribution_id, limit=None)
    counts: Counter = Counter()
    for r in rows:
        words, scores = r["words"] or [], r["word_scores"] or []
        top = sorted(range(len(words)), key=lambda i: (-scores[i], i))[:k]
        answers = gold.get(r["example_id"], set())
        for word in dict.fromkeys(_word(words[i]) for i in top):
            if word:
                category = "answer" if word in answers else "function" if word in FUNCTION_WORDS else "content"
                counts[(word, category)] += 1
    n = len(rows) or 1
    return [{"token": word, "count": c, "share": c / n, "category": category}
            for (word, category), c in sorted(counts.items(), key=lambda item: (-item[1], item[0]))]
