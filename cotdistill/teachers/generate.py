"""Teacher rationales for a dataset: batched, cached, resumable, ending in a rationale set.

    result = generate_rationales({"train": examples}, teacher, make_prompt("multiple_choice"),
                                 Decoding(max_new_tokens=128), "sets/cqa-smollm2", batch_size=8,
                                 dataset="commonsenseqa-dsbs", progress=print, should_stop=None)
    result.set_path        # the finished, immutable set (None if stopped or some examples failed)

While it runs, finished examples are appended, one JSON record each, to
`.<out_dir name>.partial/records.jsonl` next to `out_dir`, synced to disk after every batch. Run
it again after a crash, a stop or failures and only the unfinished examples are asked for; a torn
last line is dropped. A run that ends with no example recorded leaves no partial folder. Every completion is cached by content hash (`CompletionCache`): the same
teacher, decoding and prompt text is never requested twice, for this set or any other.

Per example, a completion that cannot be parsed is kept as unparsed (teacher_label None); a
request the server refused for good (HTTP 4xx) is kept with its `error`; a transient failure
(timeouts, 429/5xx after all retries) is not recorded, is listed in `result.failed`, and is asked
for again on the next run. The set is written (atomically) once every example is recorded.
`progress(event)` gets a dict after every batch: done, total, correct, unparsed, errors, failed,
teacher_accuracy (correct / done), teacher_calls, cache_hits. `should_stop()` is checked before
every batch (cooperative cancel).
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from cotdistill.data.rationale_set import canonical_line, record_of
from cotdistill.examples import UNSTORABLE, Example
from cotdistill.errors import DataError
from cotdistill.data.store import Origin, open_rationale_set, write_rationale_set
from cotdistill.teachers.base import Completion, Decoding, Teacher
from cotdistill.teachers.cache import CompletionCache
from cotdistill.teachers.prompts import Prompt

RECORDS, JOB = "records.jsonl", "job.json"
Key = tuple[str, str]   # (split, example id)


@dataclass
class GenerationResult:
    """How a call to generate_rationales ended."""

    set_path: Path | None
    """The finished rationale set; None while examples are missing (stopped or failed)."""
    done: int
    total: int
    correct: int
    unparsed: int
    errors: int
    """Examples recorded with a final error (HTTP 4xx): finished, without a rationale."""
    failed: dict[str, str] = field(default_factory=dict)
    """'split/id' -> error, for transient failures: asked for again on the next run."""
    stopped: bool = False
    teacher_calls: int = 0
    """Prompts sent to the teacher by this call (cache misses)."""
    cache_hits: int = 0

    @property
    def teacher_accuracy(self) -> float | None:
        return self.correct / self.done if self.done else None

    def event(self) -> dict[str, Any]:
        """The progress callback's payload."""
        return {"done": self.done, "total": self.total, "correct": self.correct,
                "unparsed": self.unparsed, "errors": self.errors, "failed": len(self.failed),
                "teacher_accuracy": self.teacher_accuracy, "teacher_calls": self.teacher_calls,
                "cache_hits": self.cache_hits}


def generate_rationales(examples: Mapping[str, Sequence[Example]], teacher: Teacher,
                        prompt: Prompt, decoding: Decoding, out_dir: str | Path, *,
                        batch_size: int = 8, dataset: str | Mapping[str, Any] | None = None,
                        name: str | None = None, cache_dir: str | Path | None = None,
                        use_cache: bool = True,
                        progress: Callable[[dict[str, Any]], None] | None = None,
                        should_stop: Callable[[], bool] | None = None) -> GenerationResult:
    """Ask `teacher` for a rationale for every example ({split: examples}); write the set to
    `out_dir` when all are recorded. Safe to call again to resume; returns at once if done."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, not {batch_size}")
    todo = _flatten(examples, prompt)
    job = _job(todo, teacher, prompt, decoding)
    out_dir = Path(out_dir).expanduser()
    if out_dir.exists():
        return _already_written(out_dir, job, len(todo))
    run = _Run(todo, teacher, prompt, decoding, CompletionCache(cache_dir) if use_cache else None)
    with _WorkDir(out_dir, job) as work:
        result = run.resume(work, batch_size, progress, should_stop)
        if not (result.stopped or result.failed):
            origin = Origin("teacher", _dataset(dataset), teacher.describe(), prompt.to_dict(),
                            decoding.to_dict(), prompt.rationalize, True,
                            {"generation_key": job["key"]})
            result.set_path = write_rationale_set(out_dir, run.ordered(), origin, name=name)
    if result.set_path is not None or result.done == 0:      # finished, or nothing to resume
        shutil.rmtree(_partial(out_dir), ignore_errors=True)
    return result


class _Run:
    """One generation's state: what is finished, the tallies, the cache."""

    def __init__(self, todo: list[tuple[str, Example]], teacher: Teacher, prompt: Prompt,
                 decoding: Decoding, cache: CompletionCache | None):
        self.todo, self.teacher, self.prompt, self.decoding = todo, teacher, prompt, decoding
        self.cache, self.identity = cache, teacher.identity()
        self.finished: dict[Key, dict[str, Any]] = {}
        self.result = GenerationResult(None, 0, len(todo), 0, 0, 0)

    def resume(self, work: Path, batch_size: int, progress, should_stop) -> GenerationResult:
        for record in read_log(work / RECORDS).values():
            self._count(record)
        pending = [(s, ex) for s, ex in self.todo if (s, ex.id) not in self.finished]
        with (work / RECORDS).open("a", encoding="utf-8") as log:
            for start in range(0, len(pending), batch_size):
                if should_stop is not None and should_stop():
                    self.result.stopped = True
                    break
                records = self._batch(pending[start:start + batch_size])
                _append(log, records)
                for record in records:
                    self._count(record)
                if progress is not None:
                    progress(self.result.event())
        return self.result

    def _count(self, record: dict[str, Any]) -> None:
        self.finished[(record["split"], record["id"])] = record
        r = self.result
        r.done, r.correct = r.done + 1, r.correct + bool(record["teacher_correct"])
        r.errors += record["error"] is not None
        r.unparsed += record["teacher_label"] is None and record["error"] is None

    def _batch(self, batch: list[tuple[str, Example]]) -> list[dict[str, Any]]:
        """Records of the examples of one batch that finished (transient failures left out)."""
        texts = [self.prompt.render(ex) for _, ex in batch]
        completions = self._complete(texts)
        records = []
        for (split, ex), completion in zip(batch, completions):
            if completion.ok or not completion.retryable:
                records.append(self._record(split, ex, completion))
            else:
                self.result.failed[f"{split}/{ex.id}"] = completion.error or "no completion"
        return records

    def _complete(self, texts: list[str]) -> list[Completion]:
        """Completions from the cache where possible, from the teacher for the rest."""
        keys = [CompletionCache.key(self.identity, self.decoding, t) for t in texts]
        cached = [self.cache.get(k) if self.cache else None for k in keys]
        missing = [i for i, text in enumerate(cached) if text is None]
        fresh = self.teacher.complete([texts[i] for i in missing], self.decoding) if missing else []
        out = [Completion(text=t) if t is not None else None for t in cached]
        for i, completion in zip(missing, fresh):
            if completion.ok:                # NUL and lone surrogates: never cached nor stored
                completion = dataclasses.replace(completion, text=UNSTORABLE.sub("", completion.text))
            out[i] = completion
            if self.cache is not None and completion.ok:
                self.cache.put(keys[i], completion.text)
        self.result.teacher_calls += len(missing)
        self.result.cache_hits += len(texts) - len(missing)
        return out

    def _record(self, split: str, ex: Example, completion: Completion) -> dict[str, Any]:
        if not completion.ok:
            bare = dataclasses.replace(ex, rationale=None, teacher_label=None)
            return record_of(bare, split, error=completion.error)
        text = UNSTORABLE.sub("", completion.text)          # also from a cache written before
        rationale, label = self.prompt.parse(text, ex)
        made = dataclasses.replace(ex, rationale=rationale, teacher_label=label)
        return record_of(made, split, raw_output=text)

    def ordered(self) -> list[dict[str, Any]]:
        return [self.finished[(split, ex.id)] for split, ex in self.todo]


def _flatten(examples: Mapping[str, Sequence[Example]],
             prompt: Prompt) -> list[tuple[str, Example]]:
    """(split, example) pairs in order; every example of the prompt's kind, every key unique."""
    if not isinstance(examples, Mapping):
        raise TypeError("examples must map split names to examples, e.g. {'train': examples}")
    todo, seen = [], set()
    for split, exs in examples.items():
        for ex in exs:
            if ex.kind != prompt.kind:
                raise ValueError(f"example {ex.id!r} of split {split!r} is {ex.kind}, but the "
                                 f"prompt is for {prompt.kind}")
            if (split, ex.id) in seen:
                raise DataError(f"example id {ex.id!r} repeats in split {split!r}", field="id")
            seen.add((split, ex.id))
            todo.append((split, ex))
    if not todo:
        raise ValueError("no examples to generate rationales for")
    return todo


def _job(todo: list[tuple[str, Example]], teacher: Teacher, prompt: Prompt,
         decoding: Decoding) -> dict[str, Any]:
    """What a generation is: teacher, prompt, decoding and the input examples, with its key."""
    inputs = hashlib.sha256()
    for split, ex in todo:
        record = record_of(dataclasses.replace(ex, rationale=None, teacher_label=None), split)
        inputs.update(canonical_line(record).encode("utf-8") + b"\n")
    job = {"teacher": teacher.identity(), "prompt": prompt.to_dict(),
           "decoding": decoding.to_dict(), "examples": inputs.hexdigest(), "n": len(todo)}
    job["key"] = hashlib.sha256(canonical_line(job).encode("utf-8")).hexdigest()
    return job


def _already_written(out_dir: Path, job: dict[str, Any], total: int) -> GenerationResult:
    rs = open_rationale_set(out_dir)
    if rs.provenance.get("extra", {}).get("generation_key") != job["key"]:
        raise DataError(f"{out_dir} already holds a rationale set made otherwise (another "
                        f"teacher, prompt, decoding or examples); sets are immutable: choose "
                        f"another folder", file=str(out_dir))
    p = rs.provenance
    correct = sum(1 for r in rs.records if r["teacher_correct"])
    return GenerationResult(out_dir, total, total, correct, p["n_unparsed"], p["n_errors"])


def _partial(out_dir: Path) -> Path:
    return out_dir.with_name(f".{out_dir.name}.partial")


class _WorkDir:
    """The partial folder of a generation, locked while in use, checked against the job."""

    def __init__(self, out_dir: Path, job: dict[str, Any]):
        self.path, self.job = _partial(out_dir), job

    def __enter__(self) -> Path:
        self.path.mkdir(parents=True, exist_ok=True)
        self.lock = (self.path / "lock").open("w")
        try:
            fcntl.flock(self.lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.lock.close()
            raise DataError(f"another process is generating into {self.path}",
                            file=str(self.path)) from None
        self._check_job()
        return self.path

    def _check_job(self) -> None:
        file = self.path / JOB
        if file.exists() and json.loads(file.read_text(encoding="utf-8"))["key"] != self.job["key"]:
            self.__exit__()
            raise DataError(f"{self.path} holds an unfinished generation with another teacher, "
                            f"prompt, decoding or examples; delete it to start over, or choose "
                            f"another out_dir", file=str(file))
        if not file.exists():
            file.write_text(json.dumps(self.job, indent=1) + "\n", encoding="utf-8")

    def __exit__(self, *exc) -> None:
        fcntl.flock(self.lock, fcntl.LOCK_UN)
        self.lock.close()


def read_log(path: Path) -> dict[Key, dict[str, Any]]:
    """Finished records by (split, id); a torn last line (a crash mid-write) is cut off."""
    if not path.exists():
        return {}
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    if end < len(data):
        with path.open("r+b") as f:
            f.truncate(end)
    records = {}
    for number, line in enumerate(data[:end].split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            raise DataError("damaged progress record; delete the partial folder to start over",
                            file=str(path), row=number) from None
        records[(record["split"], record["id"])] = record
    return records


def _append(log, records: list[dict[str, Any]]) -> None:
    """One write per batch, then flush and fsync: a crash loses at most this batch."""
    if records:
        log.write("".join(canonical_line(r) + "\n" for r in records))
    log.flush()
    os.fsync(log.fileno())


def _dataset(dataset: str | Mapping[str, Any] | None) -> dict[str, Any]:
    if isinstance(dataset, str):
        return {"name": dataset}
    return dict(dataset) if dataset is not None else {"name": None}
