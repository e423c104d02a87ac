"""The run entry point: one training + evaluation of one student on one configuration and seed.

    summary = run(load_config("configs/cqa-after.yaml"), Path("runs/cqa-after"))

Writes into the run folder: `config.yaml` (resolved), `metrics.jsonl` (training curve),
`predictions.jsonl` (one record per test example), `summary.json` (its `data_warnings`: train/test
overlap and answer leaks of the items used, from cotdistill.data.report.run_data_check), `model/`
(the trained student, loadable with `from_pretrained`; LoRA adapters are merged into its weights
first, cotdistill.students.lora; the untouched student writes none, its summary says `model_saved: false`)
and, while training, `checkpoint/` (deleted once the run succeeds, unless `keep_checkpoint`). The data warnings also go out with the `start` event, before training.
A folder holding an unfinished run of the same configuration is resumed exactly from its newest
checkpoint that verifies (cotdistill.train.checkpoints); a corrupt one is moved aside and reported as a
{"phase": "checkpoint"} event. A file of the folder that vanishes while the run is in progress fails it
(ArtifactsMissing) instead of leaving a finished-looking, incomplete folder. The curves (`metrics.jsonl`): total, label and rationale loss, lr, tokens/s, tokens seen and epoch
every `train.log_every` steps, validation accuracy every `eval.every` steps (see cotdistill.train.curves).
The summary records the software and hardware it ran on (`environment`: threads, versions, device).
`train.steps: 0` evaluates the untouched student (no optimizer, no checkpoint, an empty curve; the
summary says `fine_tuned: false`), in one process whatever train.devices.
This is the only
place that seeds random number generators. Progress leaves through `callback(event: dict)`.

`python -m cotdistill.run CONFIG OUT EVENTS` is one rank of a multi-process run (rank_main), started by
cotdistill.train.distributed.launch. The orchestrator sits above every part it composes (data,
students, train, evaluate); none of them imports it: the loop raises cotdistill.errors' exceptions and
takes callbacks.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import shutil
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import yaml

from cotdistill import data
from cotdistill.errors import ArtifactsMissing, RunError, Superseded, WriteFailed
from cotdistill.students import logits
from cotdistill.data import sample_rows
from cotdistill.data.report import run_data_check
from cotdistill.config import RunConfig
from cotdistill.train.curves import curve_values
from cotdistill.evaluate.evaluation import evaluate, scoring_options, summarize_with_diagnostics
from cotdistill.examples import Example, question_id
from cotdistill.files import os_error_of, write_failure
from cotdistill.sequences.placements import (ANSWER_MARKER, RATIONALE_MARKER, SequenceBuilder, label_text,
                                             prompt_text)
from cotdistill.students.loading import check_runtime, load_student


PHASES = ("load", "train", "validate", "evaluate", "save")
"""The phases a run reports as {"phase", "done", "total"} events (see run)."""


@contextmanager
def writing(what: str, path: Path, checkpoint_dir: Path, fence: Callable[[Path], None] | None = None):
    """Around a write of the run folder: first `fence(path)` (a job system's check that this process
    still owns the run; it raises to stop), then an OS error (a full disk, also when torch or
    safetensors wrap it) becomes WriteFailed, one sentence naming the folder and the checkpoint kept."""
    from cotdistill.train import checkpoints
    if fence is not None:
        fence(path)
    try:
        yield
    except RunError:
        raise
    except Exception as e:
        error = os_error_of(e)
        if error is None or isinstance(error, FileNotFoundError):   # a vanished folder: ArtifactsMissing's
            raise
        folder = path if path.is_dir() or not path.suffix else path.parent
        raise WriteFailed(write_failure(error, what, folder, checkpoints.kept(checkpoint_dir))) from None


def missing_artifact(out: Path, summary: dict | None = None, *, finished: bool = False) -> str | None:
    """One sentence naming the first missing or incomplete artifact of the run folder `out`, None when
    nothing is missing. Without `summary` only what exists while training is checked (config.yaml,
    metrics.jsonl); with it also predictions.jsonl (one record per test example, summary["n"]) and the
    saved model (config.json and its weights); `finished` adds summary.json."""
    out = Path(out)
    if not out.is_dir():
        return f"the run folder {out} vanished while the run was in progress"
    needed = ["config.yaml", "metrics.jsonl"]
    model = summary is not None and summary.get("model_saved", True)     # older summaries: always saved
    if summary is not None:
        needed += ["predictions.jsonl"] + (["model/config.json"] if model else []) + \
            (["summary.json"] if finished else [])
    for name in needed:
        if not (out / name).is_file():
            return f"{out / name} vanished while the run was in progress"
    if summary is None:
        return None
    if model and not any((out / "model").glob("*.safetensors")) and not any((out / "model").glob("*.bin")):
        return f"{out / 'model'} holds no model weights: they vanished while the run was in progress"
    with open(out / "predictions.jsonl", encoding="utf-8") as f:
        n = sum(1 for line in f if line.strip())
    if summary.get("n") is not None and n != summary["n"]:
        return f"{out / 'predictions.jsonl'} holds {n} predictions, the summary counts {summary['n']}: it is incomplete"
    return None


def check_artifacts(out: Path, summary: dict | None = None, *, finished: bool = False) -> None:
    """Raise ArtifactsMissing with missing_artifact's sentence, if any."""
    if (problem := missing_artifact(out, summary, finished=finished)) is not None:
        raise ArtifactsMissing(problem + ": run it again")


KEEP_CHECKPOINTS = "COTDISTILL_KEEP_CHECKPOINTS"


def keep_checkpoints() -> bool:
    """Whether $COTDISTILL_KEEP_CHECKPOINTS asks to keep what a run deletes by default: its checkpoint
    once it succeeded (and, in a job system, once it was cancelled), and the untouched student's model
    copy. Set it to 1 (or true, yes) on the workers; it changes no result and no hash."""
    return os.environ.get(KEEP_CHECKPOINTS, "").strip().lower() in ("1", "true", "yes")


def runs_root() -> Path:
    return Path(os.environ.get("COTDISTILL_ARTIFACTS") or "runs")


def _run_name(cfg: RunConfig) -> str:
    return cfg.name or f"{cfg.data.name.replace('/', '_')}-{cfg.placement}-{cfg.perturbation.kind}-s{cfg.seed}"


def default_run_dir(cfg: RunConfig, device: str | None = None) -> Path:
    return runs_root() / f"{_run_name(cfg)}-{cfg.hash(device)}"


def older_runs(cfg: RunConfig, device: str | None = None) -> list[Path]:
    """Default run folders of the same settings made by an older results version or on other data
    (their folder names carry another hash), newest first; never reused without being asked."""
    root = runs_root()
    if not root.is_dir():
        return []
    mine = default_run_dir(cfg, device)
    found = [p for p in root.glob(f"{_run_name(cfg)}-*") if p != mine and p.is_dir()
             and folder_state(cfg, p, device) == "outdated"]
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def load_examples(cfg: RunConfig) -> tuple[list[Example], list[Example]]:
    """The training and test examples as configured (filtered, then sampled to n_train / n_test
    questions: a question's rows, several rationales, are drawn together)."""
    d = cfg.data
    train = data.load_examples(d.name, d.train_split, **d.options)
    test = data.load_examples(d.name, d.test_split, **d.options)
    if d.rationale_filter == "teacher_correct":
        train = [ex for ex in train if ex.teacher_correct]
    # Every placement trains on the same examples (those with a rationale), so arms compare fairly.
    with_rationale = [ex for ex in train if ex.rationale]
    if with_rationale:
        train = with_rationale
    elif cfg.placement != "none":
        raise RunError(f"placement {cfg.placement!r} needs rationales, but split {d.train_split!r} "
                       f"of {d.name!r} has none: use placement none or a split with rationales")
    train = sample_rows(train, d.n_train, d.sample, d.sample_seed, key=question_id)
    test = sample_rows(test, d.n_test, d.sample, d.sample_seed, key=question_id)
    if not train or not test:
        raise RunError(f"{d.name}: {len(train)} training and {len(test)} test examples left after filtering")
    return train, test


def tokenizer_texts(train: list[Example]) -> list[str]:
    """The text the tiny student's tokenizer is trained on: every piece of every training sequence."""
    texts = [RATIONALE_MARKER, ANSWER_MARKER]
    for ex in train:
        texts += [prompt_text(ex), ex.rationale or ""]
        texts += [label_text(option, ex.kind) for option in (ex.label_options or (ex.label,))]
    return texts


def load_scores(path: str | None, level: str | None = None, *, signed: bool = False
                ) -> dict[str, list[float]] | None:
    """key_tokens scores: JSONL rows {example_id, scores: [...]} plus, in files written since results
    version 2, `level` (word | token), `method` and `sign` (signed | absolute).

    Rules: a row whose `level` differs from `level` is refused, naming the file and row; a row without
    `level` (an older file) is taken to be at the configured level. Scores of `method: grad_x_input`
    that are signed are ranked by magnitude (|score|: its sign is unreliable, see cotdistill.attribution)
    unless `signed`; a row without `method` is used as written."""
    if not path:
        return None
    scores = {}
    with open(path, encoding="utf-8") as f:
        for row, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                values = [float(s) for s in rec["scores"]]
                example_id = str(rec["example_id"])
            except (ValueError, KeyError, TypeError) as e:
                raise RunError(f"{path}, row {row}: expected {{example_id, scores: [numbers]}}: {e}") from None
            if level is not None and rec.get("level") not in (None, level):
                raise RunError(f"{path}, row {row}: scores are at level {rec['level']!r}, but "
                               f"perturbation.level is {level!r}: set perturbation.level={rec['level']} "
                               f"or write the scores at level {level!r}")
            if rec.get("method") == "grad_x_input" and rec.get("sign", "signed") == "signed" and not signed:
                values = [abs(v) for v in values]
            scores[example_id] = values
    return scores


def config_scores(cfg: RunConfig) -> dict[str, list[float]] | None:
    """The configured key-token scores, checked against perturbation.level (see load_scores)."""
    p = cfg.perturbation
    return load_scores(p.scores_file, p.level, signed=bool(p.params.get("signed", False)))


def make_builder(cfg: RunConfig, tokenizer, train: list[Example], scores=None) -> SequenceBuilder:
    p = cfg.perturbation
    return SequenceBuilder(tokenizer, cfg.placement, rationale_weight=cfg.rationale_weight,
                           perturbation=p.kind, perturbation_params=p.params, level=p.level,
                           seed=cfg.seed, max_length=cfg.student.max_length, pool=train,
                           scores=scores if scores is not None else config_scores(cfg))


def write_json(path: Path, obj) -> None:
    write_jsonl(path, [obj], indent=2)


def write_jsonl(path: Path, rows, *, indent: int | None = None) -> None:
    """Write through a temporary file renamed into place: `path` is whole or untouched, and a failed
    write (a full disk) leaves no temporary file behind."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, indent=indent) + "\n")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


SAVED_META = ("config_hash", "results_version", "identity")
"""Keys of a run folder's config.yaml written beside the settings, not settings themselves."""


def saved_config(run_dir: Path) -> tuple[RunConfig | None, dict]:
    """(the settings, the meta keys) of a run folder's config.yaml; settings None when unreadable.
    A folder without `results_version` was made by version 1."""
    from cotdistill.errors import ConfigError
    from cotdistill.config import from_dict, read_config_file
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        return None, {}
    try:
        data = read_config_file(path) or {}
    except ConfigError:
        data = None
    if not isinstance(data, dict):                  # not a config this program wrote
        return None, {k: None for k in SAVED_META} | {"results_version": 1}
    meta = {k: data.pop(k, None) for k in SAVED_META}
    meta["results_version"] = meta["results_version"] or 1
    try:
        return from_dict(RunConfig, data), meta
    except ConfigError:
        return None, meta


def folder_state(cfg: RunConfig, out: Path, device: str | None = None) -> str:
    """What `out` holds for `cfg`: empty | finished | partial (this config) | outdated (these settings
    from an older results version, or on other data) | other (another configuration)."""
    previous, meta = saved_config(out)
    if not meta:
        return "empty"
    if meta.get("config_hash") == cfg.hash(device):
        return "finished" if (Path(out) / "summary.json").exists() else "partial"
    if previous is not None and previous.settings_hash() == cfg.settings_hash():
        return "outdated"
    return "other"


def prepare_dir(cfg: RunConfig, out: Path, device: str | None = None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    saved = out / "config.yaml"
    digest = cfg.hash(device)
    if saved.exists():
        _, meta = saved_config(out)
        if meta.get("config_hash") != digest:
            raise RunError(f"{out} holds a run of another configuration, results version or data "
                           f"(hash {meta.get('config_hash')} != {digest}): choose another folder")
    else:
        identity = cfg.identity(device)
        saved.write_text(yaml.safe_dump({**cfg.to_dict(), "config_hash": digest,
                                         "results_version": identity["results_version"],
                                         "identity": identity}, sort_keys=False), encoding="utf-8")


def validation_examples(cfg: RunConfig, test: list[Example]) -> list[Example]:
    """The fixed validation subset: eval.val_size of the run's test items, drawn with data.sample_seed
    (the same items for every arm and seed of a comparison)."""
    return sample_rows(test, cfg.eval.val_size, "random", cfg.data.sample_seed)


def make_validator(cfg: RunConfig, model, builder: SequenceBuilder, examples: list[Example], mode: str,
                   device: str, progress=None) -> Callable[[], dict]:
    """validate() -> {val_accuracy, val_n}: the run's evaluation protocol (mode and primary scoring,
    without the extra scorings) on the validation subset; `progress(done, total)` as evaluate's."""
    options = {**scoring_options(cfg.eval), "modes": ()}

    def validate() -> dict:
        records = evaluate(model, builder, examples, mode=mode, batch_size=cfg.eval.batch_size,
                           max_new_tokens=cfg.eval.max_new_tokens, device=device, progress=progress,
                           **options)
        return {"val_accuracy": sum(bool(r["correct"]) for r in records) / len(records), "val_n": len(records)}
    return validate


def environment(device: str) -> dict:
    """What besides the config can move a result (the CPU thread count changes a seed's accuracy):
    threads, torch, transformers and Python versions, and the device used (with its name on CUDA).
    Recorded in the summary; not part of the config hash or the arm."""
    import platform

    import transformers
    name = str(device)
    if name.startswith("cuda") and torch.cuda.is_available():
        name = f"{name} ({torch.cuda.get_device_name(torch.device(name))})"
    return {"threads": torch.get_num_threads(), "torch": torch.__version__,
            "transformers": transformers.__version__, "python": platform.python_version(), "device": name}


def trained(result) -> dict:
    """The summary's training fields; `result` None: the untouched student (train.steps 0)."""
    if result is None:
        return {"fine_tuned": False, "train_steps": 0, "final_loss": None, "train_seconds": 0.0,
                "tokens_per_s": None, "resumed_from_step": 0, "packed": False}
    return {"fine_tuned": True, "train_steps": result.steps, "final_loss": result.final_loss,
            "train_seconds": round(result.seconds, 3), "tokens_per_s": round(result.tokens_per_s, 1),
            "resumed_from_step": result.resumed_from, "packed": result.packed}


def open_metrics(path: Path, resumed_step: int):
    """The metrics file, keeping only the rows up to the step a resumed run continues from (a line
    torn by a full disk is dropped)."""
    kept = []
    if resumed_step and path.exists():
        kept = [line for line in path.read_text(encoding="utf-8", errors="replace").splitlines()
                if (row := _json_or_none(line)) is not None and row.get("step", resumed_step + 1) <= resumed_step]
    f = open(path, "w", encoding="utf-8")
    f.writelines(line + "\n" for line in kept)
    f.flush()                                    # readable at once (a job system restores its curve)
    return f


def _json_or_none(line: str) -> dict | None:
    try:
        row = json.loads(line)
    except ValueError:
        return None
    return row if isinstance(row, dict) else None


def run(cfg: RunConfig, out: Path, *, callback: Callable[[dict], None] | None = None,
        device: str | None = None, checkpoint_every: int | None = None,
        trackers: list[str] | None = None, dist=None,
        before_write: Callable[[Path], None] | None = None, keep_checkpoint: bool | None = None) -> dict:
    """Train and evaluate; returns the summary (also written to out/summary.json).

    `checkpoint_every` overrides cfg.train.checkpoint_every without changing the run's identity
    (a job system checkpoints often so that a recovered run loses little; the results are the same).
    An exception raised by `callback` stops the run; its checkpoint stays for a later resume.
    Besides `start`, `checkpoint` and `done`, the callback gets each phase's progress as
    {"phase": "load"|"train"|"validate"|"evaluate"|"save", "done", "total"} (PHASES; a `train` event
    also carries step, loss, lr, tokens/s, ETA), at least every few seconds while a phase lasts, so a
    job system can stop a run (cancel) in any phase by raising from it.
    `before_write(path)` is called before every write into `out` (config, metrics, checkpoint,
    predictions, model, summary); it raises to stop the run untouched (a job system's check that it
    still owns the run). An OS error while writing (a full disk) is WriteFailed: one sentence naming
    the folder; the last good checkpoint stays.
    `trackers` (default: $COTDISTILL_TRACKERS) and the config's `tracking` mirror the curve, config
    and summary to TensorBoard, MLflow or W&B (cotdistill/train/trackers.py).
    A run with train.devices > 1 (and steps > 0) is launched as a torchrun job (cotdistill.train.distributed);
    `dist` is that job's rank: rank 0 writes the folder and evaluates, the others only train ({} returned).
    `keep_checkpoint` keeps `checkpoint/` once the run has succeeded (default: deleted) and has the
    untouched student (train.steps 0) save its model copy too (default: none, its weights are the
    student's own); None reads $COTDISTILL_KEEP_CHECKPOINTS (keep_checkpoints). Like
    `checkpoint_every` it changes nothing else, and no hash."""
    from cotdistill.train import distributed
    from cotdistill.train.trackers import open_mirror, requested
    out = Path(out)
    keep_checkpoint = keep_checkpoints() if keep_checkpoint is None else keep_checkpoint
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    distributed.check_supported(cfg.train, device)
    cfg.check_protocol()                         # a `before` run scored: refused before any work
    fine_tune = cfg.train.steps > 0              # 0: the untouched student, evaluated as loaded
    if cfg.train.devices > 1 and dist is None and fine_tune:
        config_scores(cfg)                       # a bad scores file fails before anything starts
        return distributed.launch(cfg, out, callback=callback, checkpoint_every=checkpoint_every)
    ctx = dist or distributed.SINGLE
    emit = callback or (lambda event: None)
    fence = before_write if ctx.is_main else None

    def write(what: str, path: Path):
        return writing(what, path, out / "checkpoint", fence)

    emit({"phase": "load", "done": 0, "total": 2})
    scores = config_scores(cfg)                  # a mismatched scores file fails before any work
    check_runtime(cfg.student, device)           # so does an attention kernel this machine lacks
    tracker_names = requested(",".join([*(requested() if trackers is None else trackers), *cfg.tracking]))
    seed_everything(cfg.seed)
    train_ex, test_ex = load_examples(cfg)       # bad data fails before the run folder is made
    with ctx.main_first():
        if ctx.is_main:
            with write("run configuration", out / "config.yaml"):
                prepare_dir(cfg, out, device)
    # overlap and answer leaks of the items actually trained and tested on, told before training
    data_check = run_data_check(train_ex, test_ex, rationales_trained=cfg.placement != "none")
    emit({"phase": "load", "done": 1, "total": 2})
    with ctx.main_first():                       # rank 0 trains (and caches) the tiny tokenizer
        student = load_student(cfg.student, train_texts=tokenizer_texts(train_ex))
    emit({"phase": "load", "done": 2, "total": 2})
    if ctx.rank > 0:
        torch.manual_seed(cfg.seed + 7919 * ctx.rank)    # its own dropout stream; weights come from rank 0
    builder = make_builder(cfg, student.tokenizer, train_ex, scores)
    sequences = [builder.build(ex) for ex in train_ex]

    from cotdistill.train import checkpoints
    from cotdistill.students.lora import merged, parameter_counts, prepare_for_training
    from cotdistill.train.loop import train
    model = prepare_for_training(student.model, cfg.student) if fine_tune else student.model
    counts = parameter_counts(model)
    found = None
    if fine_tune:
        with ctx.main_first():                   # rank 0 moves bad checkpoints aside and reports them
            if fence is not None:
                fence(out / "checkpoint")
            found = checkpoints.latest(out / "checkpoint", report=emit if ctx.is_main else (lambda e: None))
    resumed = found.step if found else 0
    if found:
        emit({"phase": "checkpoint", "kind": "resumed", "path": str(found.path), "resume_step": resumed,
              "message": f"resuming from step {resumed}: checkpoint {found.path} verified"})
    if ctx.is_main:
        with write("training curve", out / "metrics.jsonl"):
            metrics = open_metrics(out / "metrics.jsonl", resumed)
            mirror = open_mirror({**cfg.to_dict(), "config_hash": cfg.hash(device)}, out, out.name, tracker_names)
    else:
        metrics, mirror = open(os.devnull, "w"), None
    emit({"phase": "start", "total": cfg.train.steps, "resumed_step": resumed,
          "data_warnings": data_check["warnings"]})

    def on_step(p: dict) -> None:
        values = curve_values(p, cfg.train.log_every)
        if values:
            with write("training curve", out / "metrics.jsonl"):
                metrics.write(json.dumps({"step": p["step"], **values}) + "\n")
                metrics.flush()
                if mirror is not None:
                    mirror.log(p["step"], {k: p[k] for k in ("loss", "lr", "tokens_per_s")})
        emit({"phase": "train", "done": p["step"], **p})

    mode = cfg.eval_mode if test_ex[0].kind != "numeric" or cfg.eval.mode != "auto" else "generate"
    validate = make_validator(cfg, student.model, builder, validation_examples(cfg, test_ex), mode, device,
                              progress=lambda done, total: emit({"phase": "validate", "done": done, "total": total})) \
        if cfg.eval.every else None
    with metrics:                                # steps 0: no optimizer, no checkpoint, an empty curve
        train_cfg = cfg.train if checkpoint_every is None else \
            dataclasses.replace(cfg.train, checkpoint_every=checkpoint_every)
        result = train(model, sequences, train_cfg, seed=cfg.seed, device=device,
                       pad_id=student.tokenizer.pad_token_id, callback=on_step,
                       checkpoint_dir=out / "checkpoint", resume=found or False,
                       validate=validate, validate_every=cfg.eval.every, dist=dist,
                       before_write=fence) if fine_tune else None
    if fine_tune:                                # FSDP: the sharded weights gathered into an ordinary copy
        model = ctx.plain_model(model, lambda: prepare_for_training(
            load_student(cfg.student, train_texts=tokenizer_texts(train_ex)).model, cfg.student))
    if not ctx.is_main:
        return {}                                # rank 0 evaluates on the full test set alone
    check_artifacts(out)                         # a folder deleted while training: no evaluation
    student.model = merged(model)                # evaluated as saved: adapters folded into the weights
    t0 = time.perf_counter()
    records = evaluate(student.model, builder, test_ex, mode=mode, batch_size=cfg.eval.batch_size,
                       max_new_tokens=cfg.eval.max_new_tokens, device=device, **scoring_options(cfg.eval),
                       progress=lambda done, total: emit({"phase": "evaluate", "done": done, "total": total}))
    eval_s = time.perf_counter() - t0
    check_artifacts(out)
    emit({"phase": "save", "done": 0, "total": 3})
    with write("predictions", out / "predictions.jsonl"):
        write_jsonl(out / "predictions.jsonl", records)
    # accuracy with its interval + label-bias diagnostics (prediction/gold distributions, majority
    # baseline, per-label accuracy, accuracy_by_mode, collapsed/collapse_reason): see cotdistill.evaluate.diagnostics
    # a test question kept with several rows is one item: the interval resamples questions
    questions = {ex.id: question_id(ex) for ex in test_ex}
    summary = {**summarize_with_diagnostics(records, n_boot=cfg.eval.n_boot, seed=cfg.seed,
                                            clusters=[questions[r["example_id"]] for r in records]),
               "eval_mode": mode, "scoring": cfg.eval.scoring if mode == "score" else None,
               "eval_seconds": round(eval_s, 3), "n_train": len(train_ex),
               "n_train_questions": len({question_id(ex) for ex in train_ex}), **trained(result),
               "truncated_sequences": sum(s.truncated for s in sequences), "student": student.name,
               "parameters": counts["parameters"], "trainable_parameters": counts["trainable"] if fine_tune else 0,
               "lora_merged": fine_tune and cfg.student.lora is not None,
               "student_source": student.source, **logits.describe(student.model),
               "bos": student.tokenizer.decode(builder.bos_ids) if builder.bos_ids else None,
               "device": device, "devices": cfg.train.devices if fine_tune else 1, "config_hash": cfg.hash(device),
               "data_check": data_check, "data_warnings": data_check["warnings"],
               "environment": environment(device),
               **{k: v for k, v in cfg.identity(device).items() if k != "device"}}
    summary["model_saved"] = fine_tune or keep_checkpoint
    emit({"phase": "save", "done": 1, "total": 3})
    if summary["model_saved"]:
        with write("model", out / "model"):
            student.model.save_pretrained(out / "model")
            student.tokenizer.save_pretrained(out / "model")
    emit({"phase": "save", "done": 2, "total": 3})
    check_artifacts(out, summary)                # before summary.json marks the folder finished
    with write("summary", out / "summary.json"):
        write_json(out / "summary.json", summary)
    emit({"phase": "save", "done": 3, "total": 3})
    if not keep_checkpoint:
        if fence is not None:
            fence(out / "checkpoint")
        shutil.rmtree(out / "checkpoint", ignore_errors=True)
    if mirror is not None:
        mirror.finish(summary)
    emit({"phase": "done", "summary": summary})
    return summary


def rank_main(config_path: str, out: str, events: str, checkpoint_every: int | None = None) -> int:
    """One rank: the run as runner.run does it, with this rank's share of every batch."""
    from cotdistill.train.distributed import (DDP, FSDP, OWNER_ENV, SUPERSEDED_EXIT, die_with_parent, is_peer_loss,
                                              owner_fence)
    die_with_parent()
    folder = Path(events).parent
    rank = int(os.environ.get("RANK", 0))
    fence = owner_fence(folder, os.environ.get(OWNER_ENV))
    try:
        fence(folder)
    except Superseded:
        return SUPERSEDED_EXIT
    (folder / f"rank{rank}.pid").write_text(str(os.getpid()))
    ctx = None
    try:
        from cotdistill.config import RunConfig, from_dict, read_config_file
        cfg = from_dict(RunConfig, read_config_file(config_path))
        ctx = FSDP() if cfg.train.distributed == "fsdp" else DDP()
        ctx.fence = fence
        emit = None
        if ctx.is_main:
            stream = open(events, "a", encoding="utf-8")

            def emit(event: dict) -> None:
                stream.write(json.dumps(event, default=str) + "\n")
                stream.flush()
        run(cfg, Path(out), callback=emit, device=ctx.device, checkpoint_every=checkpoint_every, dist=ctx,
            before_write=fence)
        ctx.close()
        return 0
    except Superseded:
        return SUPERSEDED_EXIT                      # another launch owns the folder: write nothing
    except BaseException as e:                      # noqa: BLE001 - reported to the launcher, then exit 1
        try:
            fence(folder)
        except Superseded:
            return SUPERSEDED_EXIT                  # a peer left because it was superseded
        from cotdistill.errors import RunError
        text = str(e) if isinstance(e, RunError) else f"{type(e).__name__}: {e}"
        # A collective that failed because another rank vanished is that rank's death, not our error.
        kind = "peer" if is_peer_loss(e) else "error"
        (folder / f"{kind}-{rank}.txt").write_text(f"rank {rank}: {text}", encoding="utf-8")
        raise


if __name__ == "__main__":         # one rank of a multi-process run, started by train.distributed.launch
    sys.exit(rank_main(*sys.argv[1:3], sys.argv[3], int(sys.argv[4]) if len(sys.argv) > 4 else None))
