"""The generation job: a teacher writes a rationale for every example of a dataset → a rationale set.

params:
    dataset:  {"name": ..., "options": {...}, "splits": ["train"], "n": 100 (per split; a sample to try first)}
    teacher:  {"kind": "local", "model": "smollm2-135m", ...} | {"kind": "http", "base_url": ..., "model": ...,
               "api_key_env": "NAME_OF_THE_VARIABLE"}   (the key itself is read from the worker's environment)
    prompt:   {"template": optional string, "rationalize": bool}
    decoding: Decoding fields;  batch_size;  name (of the set)

The science core appends every finished example to the set's partial folder and caches completions
by content hash, so a recovered or retried job asks the teacher only for what is missing. Progress
(done/total and teacher accuracy so far) reaches the app through the job's heartbeat. At the end the
immutable set is registered in the database (rationale_sets + examples) with its provenance.
"""

from __future__ import annotations

from worker.execution import artifacts_root
from worker.jobs import JobContext
from worker.rationale_sets import register


class GenerationIncomplete(RuntimeError):
    """Some examples failed transiently (timeouts, 429/5xx after retries); a retry asks only for them."""


def examples(params: dict):
    from cotdistill import data
    d = params["dataset"]
    out = {}
    for split in d.get("splits", ["train"]):
        items = data.load_examples(d["name"], split, **d.get("options", {}))
        out[split] = items[:d["n"]] if d.get("n") else items
    return out


def set_dir(params: dict, job_id: int):
    """Where the job's set is written (its partial records beside it while it runs); a name that
    would leave the rationale_sets folder is refused here too, on the worker."""
    from worker.guard import check_folder_name
    check_folder_name(params.get("name"), "name")
    name = params.get("name") or f"{params['dataset']['name'].replace('/', '_')}-job{job_id}"
    return artifacts_root() / "rationale_sets" / name


def run(ctx: JobContext) -> dict:
    from cotdistill.teachers import Decoding, generate_rationales, load_teacher, make_prompt
    p = ctx.params
    splits = examples(p)
    kind = next(ex.kind for items in splits.values() for ex in items)
    total = sum(len(v) for v in splits.values())
    ctx.beat.update(phase="loading teacher", step=0, total=total)
    prompt = make_prompt(kind, template=(p.get("prompt") or {}).get("template"),
                         rationalize=bool((p.get("prompt") or {}).get("rationalize")))
    decoding = Decoding(**{k: (tuple(v) if k == "stop" else v) for k, v in (p.get("decoding") or {}).items()})
    teacher = load_teacher(p["teacher"])
    ctx.beat.update(phase="generate")

    def progress(e: dict) -> None:
        ctx.beat.update(step=e["done"], total=e["total"], teacher_accuracy=e["teacher_accuracy"],
                        unparsed=e["unparsed"], errors=e["errors"], failed=e["failed"],
                        teacher_calls=e["teacher_calls"], cache_hits=e["cache_hits"])

    def should_stop() -> bool:
        ctx.beat.check()                         # raises on cancel or shutdown; the partial records stay
        return False

    out = set_dir(p, ctx.job_id)
    result = generate_rationales(splits, teacher, prompt, decoding, out, batch_size=p.get("batch_size", 8),
                                 dataset={"name": p["dataset"]["name"], "options": p["dataset"].get("options", {})},
                                 name=out.name, progress=progress, should_stop=should_stop)
    if result.set_path is None:
        failed = ", ".join(f"{k}: {v}" for k, v in list(result.failed.items())[:5])
        raise GenerationIncomplete(f"{len(result.failed)} of {result.total} examples failed transiently "
                                   f"({failed}); retry the job to ask only for those")
    set_id = register(ctx.sessions, result.set_path, job_id=ctx.job_id)
    return {"rationale_set_id": set_id, "path": str(result.set_path), "n": result.total,
            "teacher_accuracy": result.teacher_accuracy, "unparsed": result.unparsed, "errors": result.errors,
            "teacher_calls": result.teacher_calls, "cache_hits": result.cache_hits}
