"""Typed run configuration: dataclasses mirrored by the YAML files under `configs/`.

    cfg = load_config("configs/cqa-after.yaml", overrides=["perturbation.kind=shuffle", "seed=2"])
    cfg.to_dict()      # the resolved configuration, as written to <run>/config.yaml
    cfg.hash()         # stable hash of the resolved configuration, data content and results version

Every field has a default and a one-line doc; `__post_init__` validates. Unknown keys are errors
that name the key and the section, so a typo never silently falls back to a default.

Near the bottom of the layers: imports errors, names, safe_load, sequences.perturbations (the kinds
and their parameters; a pure leaf) and fingerprint (the data's content, for `cfg.hash()`), none of
which imports this module.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cotdistill import fingerprint
from cotdistill.errors import ConfigError
from cotdistill.names import name_problem
from cotdistill.safe_load import ParseError, load_yaml, load_yaml_value, read_text

PLACEMENTS = ("none", "before", "after")
EVAL_MODES = ("auto", "score", "generate")
SCORINGS = ("letter", "text", "calibrated")
TEXT_FORMATS = ("label_and_text", "text_only")
DISTRIBUTED = ("none", "ddp", "fsdp")
LEVELS = ("token", "word", "sentence")
"""Units a perturbation works on (cotdistill.sequences.perturbations.text_units for word and sentence)."""
LOSS_NORMALIZATIONS = ("token", "segment")
LATER_KEYS = {("train", "distributed"): "none", ("train", "devices"): 1}
"""Keys added after results were first stored: left out of the hash at their default value."""
TRACKER_KINDS = ("tensorboard", "mlflow", "wandb")
"""Trackers a run can be mirrored to (cotdistill.train.trackers)."""
SPECIALS = {"eos_token": "<|endoftext|>", "pad_token": "<pad>", "mask_token": "<mask>",
            "unk_token": "<unk>"}
"""Special tokens of the tiny student's tokenizer (cotdistill.students.loading)."""
ATTN_IMPLEMENTATIONS = ("sdpa", "eager", "flash_attention_2")
DTYPES = ("auto", "float32", "bfloat16", "float16")
LORA_DEFAULTS = {"r": 8, "alpha": 16, "dropout": 0.0, "target_modules": None}
HASH_NEUTRAL = {("student", "lora"): None, ("student", "gradient_checkpointing"): False,
                ("student", "attn_implementation"): "sdpa", ("student", "dtype"): "auto",
                ("train", "packing"): None, ("train", "loss_normalization"): "token"}
"""Keys added after results were stored: left out of the settings and config hashes while at these
defaults, so a config written before they existed keeps its settings hash (and is found as outdated
rather than unknown)."""


def hashed_settings(config: dict) -> dict:
    """The settings a hash covers, from a resolved config as a dict (`RunConfig.to_dict()`, or one
    stored with a run): all but the name and the trackers; the validation keys only when validation is
    on (eval.every 0 changes no number), and keys added later (LATER_KEYS, HASH_NEUTRAL) only when not
    at their default, so that adding a key never changes the hash (and run folder) of an existing
    configuration. `config` is not changed."""
    d = json.loads(json.dumps(config))                 # a deep copy of plain data
    d.pop("name", None)
    d.pop("tracking", None)                # where a run is mirrored changes no result
    if not d["eval"].get("every"):
        for key in ("every", "val_size"):
            d["eval"].pop(key, None)
    for (section, key), default in LATER_KEYS.items():
        if d[section].get(key) == default:
            d[section].pop(key)
    for (section, key), default in HASH_NEUTRAL.items():
        if d[section].get(key, default) == default:
            d[section].pop(key, None)
    return d


@dataclass
class DataConfig:
    name: str = "synthetic"
    """Dataset: a local release (`cotdistill datasets`), `synthetic`, `file`, or a hub id with a '/'."""
    train_split: str = "train"
    """Split the student is trained on."""
    test_split: str = "test"
    """Split the student is evaluated on."""
    n_train: int | None = None
    """Use only n training questions (after filtering, drawn as `sample` says; a question's rows,
    several rationales, come together); None = all."""
    n_test: int | None = None
    """Evaluate on n test questions (drawn as `sample` says); None = all."""
    sample: str = "random"
    """How n_train / n_test are drawn: `random` (a seeded sample of questions, the same for every arm
    and run seed) or `first` (the first n questions, in file order)."""
    sample_seed: int = 1234
    """Seed of the `random` sample; deliberately not the run seed, so every arm and seed of a
    comparison trains and tests on the same rows."""
    rationale_filter: str = "all"
    """`all`, or `teacher_correct`: train only on examples whose teacher answered right."""
    options: dict = field(default_factory=dict)
    """Loader options (e.g. `teacher: llama` for OpenBookQA, the synthetic task's knobs)."""

    def __post_init__(self):
        if self.rationale_filter not in ("all", "teacher_correct"):
            raise ConfigError(f"data.rationale_filter must be 'all' or 'teacher_correct', "
                              f"not {self.rationale_filter!r}")
        if self.sample not in ("random", "first"):
            raise ConfigError(f"data.sample must be 'random' or 'first', not {self.sample!r}")
        for key in ("n_train", "n_test"):
            value = getattr(self, key)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ConfigError(f"data.{key} must be a positive integer or null, not {value!r}")


@dataclass
class PerturbationConfig:
    kind: str = "none"
    """none | shuffle | mask | filler | truncate | random_subset | mismatch | key_tokens."""
    level: str = "token"
    """`token` (the student's tokens), `word` (whitespace-separated words) or `sentence` (sentences and
    steps: cotdistill.sequences.perturbations.split_sentences); word and sentence units are re-tokenised with the
    student's tokenizer after the perturbation."""
    params: dict = field(default_factory=dict)
    """Parameters of the kind, e.g. {p: 0.3, mode: replace} for mask, {k: 5} for key_tokens."""
    scores_file: str | None = None
    """key_tokens only: JSONL of {example_id, scores} aligned with the rationale's units."""

    def __post_init__(self):
        from cotdistill.sequences.perturbations import PERTURBATIONS, validate_params
        if self.kind not in PERTURBATIONS:
            raise ConfigError(f"perturbation.kind {self.kind!r} is unknown; "
                              f"choose one of {', '.join(PERTURBATIONS)}")
        if self.level not in LEVELS:
            raise ConfigError(f"perturbation.level: must be one of {', '.join(LEVELS)}, not {self.level!r}")
        if self.level == "sentence" and self.kind == "key_tokens":
            raise ConfigError("perturbation.level: key_tokens needs one score per unit, and attribution scores "
                              "words or tokens, not sentences; use perturbation.level word or token for key_tokens")
        try:
            self.params = validate_params(self.kind, self.params)
        except ValueError as e:
            raise ConfigError(f"perturbation.params: {e}") from None
        if self.kind == "key_tokens" and not self.scores_file:
            raise ConfigError("perturbation.kind key_tokens needs perturbation.scores_file "
                              "(per-token scores of each example's rationale)")


@dataclass
class StudentConfig:
    name: str = "tiny"
    """`tiny` (GPT-2 shape, random init, tokenizer trained on the data), `smollm2-135m`
    (offline pretrained), or a Hugging Face model id / local path."""
    size: str = "tiny"
    """Size of the built-in tiny student: tiny (2x128), small (4x256), base (6x384)."""
    vocab_size: int = 2048
    """Vocabulary of the tokenizer trained for the tiny student."""
    max_length: int = 256
    """Longest training sequence in tokens; the rationale is cut first, never the label."""
    lora: dict | None = None
    """LoRA adapters through `peft` instead of a full fine-tune: {r, alpha, dropout, target_modules}
    (missing keys: r 8, alpha 16, dropout 0, target_modules null = peft's default for the family, or
    a list of module names, or `all-linear`). Merged into the weights when the run saves its model.
    null: full fine-tune."""
    gradient_checkpointing: bool = False
    """Recompute each layer's activations in the backward pass: less memory, about a third more time."""
    attn_implementation: str = "sdpa"
    """Attention kernel: sdpa | eager | flash_attention_2 (needs the flash-attn package and a GPU)."""
    dtype: str = "auto"
    """Dtype of the weights: auto (the checkpoint's own; float32 for `tiny` and `smollm2-135m`) |
    float32 | bfloat16 | float16. train.precision decides autocast on top of it."""

    def __post_init__(self):
        if self.attn_implementation not in ATTN_IMPLEMENTATIONS:
            raise ConfigError(f"student.attn_implementation must be one of {', '.join(ATTN_IMPLEMENTATIONS)}, "
                              f"not {self.attn_implementation!r}")
        if self.dtype not in DTYPES:
            raise ConfigError(f"student.dtype must be one of {', '.join(DTYPES)}, not {self.dtype!r}")
        if not isinstance(self.gradient_checkpointing, bool):
            raise ConfigError(f"student.gradient_checkpointing must be true or false, "
                              f"not {self.gradient_checkpointing!r}")
        if self.lora is not None:
            self.lora = check_lora(self.lora)


def check_lora(lora) -> dict:
    """The LoRA settings with defaults filled in; ConfigError naming the key (student.lora.r, ...)."""
    if not isinstance(lora, dict):
        raise ConfigError(f"student.lora must be a mapping {{r, alpha, dropout, target_modules}} or null, "
                          f"not {lora!r}")
    unknown = sorted(set(lora) - set(LORA_DEFAULTS))
    if unknown:
        raise ConfigError(f"unknown key(s) {', '.join('student.lora.' + k for k in unknown)}; accepted in "
                          f"student.lora: {', '.join(LORA_DEFAULTS)}")
    out = {**LORA_DEFAULTS, **lora}
    r, alpha, dropout, targets = out["r"], out["alpha"], out["dropout"], out["target_modules"]
    if isinstance(r, bool) or not isinstance(r, int) or r < 1:
        raise ConfigError(f"student.lora.r must be a positive integer, not {r!r}")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not alpha > 0:
        raise ConfigError(f"student.lora.alpha must be a number > 0, not {alpha!r}")
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise ConfigError(f"student.lora.dropout must be a number in [0, 1), not {dropout!r}")
    if targets is not None and targets != "all-linear" and not (
            isinstance(targets, list) and targets and all(isinstance(t, str) and t for t in targets)):
        raise ConfigError(f"student.lora.target_modules must be null (peft's default for the family), "
                          f"'all-linear' or a list of module names such as [q_proj, v_proj], not {targets!r}")
    return out


@dataclass
class TrainConfig:
    steps: int = 200
    """Optimizer steps. 0: the untouched student, evaluated without fine-tuning (the pretrained model as
    loaded; the tiny student's seeded initialisation) by its placement's protocol: a baseline arm."""
    batch_size: int = 16
    """Sequences per micro-batch."""
    grad_accum: int = 1
    """Micro-batches per optimizer step."""
    lr: float = 1e-3
    """Peak learning rate."""
    weight_decay: float = 0.01
    warmup_steps: int = 20
    """Linear warmup, then cosine decay to `min_lr_ratio` x lr."""
    min_lr_ratio: float = 0.1
    clip: float = 1.0
    """Max gradient norm (0 disables clipping)."""
    precision: str = "auto"
    """auto (bf16 autocast on CUDA, fp32 on CPU) | bf16 | fp32. bf16 autocast on a CPU without
    native bf16 support is very slow (measured here: 20x slower than fp32 for SmolLM2)."""
    group_by_length: bool = True
    """Batch sequences of similar length together (less padding)."""
    checkpoint_every: int = 0
    """Save a resumable checkpoint every N steps (0: only at the end)."""
    log_every: int = 10
    """Write a metrics row every N steps."""
    # --- several devices (cotdistill/train/distributed.py, worker/launch.py) ---
    distributed: str = "none"
    """none (one process) | ddp (torchrun + DistributedDataParallel, one process per device; gloo on
    CPU, NCCL on GPUs) | fsdp (torchrun + PyTorch's FSDP2: weights, gradients and AdamW state sharded
    across the devices, for a model that does not fit one). The global batch stays batch_size x
    grad_accum whatever the device count: each device takes a slice of every micro-batch."""
    devices: int = 1
    """Processes (GPUs) the run trains on; > 1 needs distributed ddp or fsdp."""
    packing: bool | None = None
    """Pack the sequences of a micro-batch into as few rows as fit the longest of them, attention kept
    within each sequence and position ids restarting (cotdistill.train.packing). null (auto): on when the
    student passes packing's load-time check (its attention separates sequences by position ids:
    sdpa, eager and flash_attention_2 in transformers 5), else padded; true: packed or an error;
    false: padded."""
    loss_normalization: str = "token"
    """How the supervised tokens' cross-entropies are averaged. token: one mean over every supervised
    token of the batch, each weighted (label 1, rationale rationale_weight): the label's share of the
    loss shrinks as the rationale grows, so it differs between placements. segment: per example, the
    mean over the label's tokens and the mean over the rationale's, combined as (label + w x
    rationale) / (1 + w) and averaged over the examples of the (global) batch: the label weighs
    1 / (1 + w) in every placement, `none` included. The end-of-sequence token and the markers go with
    the part whose weight they carry (cotdistill.sequences.placements.LOSS_GROUPS)."""

    def __post_init__(self):
        if self.steps < 0 or self.batch_size < 1 or self.grad_accum < 1:
            raise ConfigError("train.steps must be >= 0, train.batch_size and train.grad_accum >= 1")
        if self.loss_normalization not in LOSS_NORMALIZATIONS:
            raise ConfigError(f"train.loss_normalization: must be one of {', '.join(LOSS_NORMALIZATIONS)}, "
                              f"not {self.loss_normalization!r}")
        if self.precision not in ("auto", "bf16", "fp32"):
            raise ConfigError(f"train.precision must be auto, bf16 or fp32, not {self.precision!r}")
        if self.distributed not in DISTRIBUTED:
            raise ConfigError(f"train.distributed: must be one of {', '.join(DISTRIBUTED)}, "
                              f"not {self.distributed!r}")
        if self.devices < 1:
            raise ConfigError(f"train.devices: must be >= 1, not {self.devices!r}")
        if self.devices > 1 and self.distributed == "none":
            raise ConfigError(f"train.devices: {self.devices} devices need train.distributed: ddp or "
                              f"fsdp (one process per device)")


@dataclass
class EvalConfig:
    mode: str = "auto"
    """auto (generate for `before`, score otherwise) | score | generate. One protocol per placement:
    a `before` student answers after its own rationale, so it is evaluated by generation, and
    `placement: before` with `score` is refused when a config is loaded or a matrix expanded
    (RunConfig.check_protocol)."""
    batch_size: int = 32
    max_new_tokens: int = 128
    """Generation budget per example (the rationale too, for `before`)."""
    n_boot: int = 10_000
    """Bootstrap resamples for the accuracy interval."""
    scoring: str = "letter"
    """Score mode only: how candidates are ranked for the record's `predicted`, `correct` and `scores`.
    letter (summed log-likelihood of the label as trained, e.g. ' (c)') | text (mean per-token
    log-likelihood of the choice's answer text, see text_format) | calibrated (the calibration_base
    score minus the same score under a content-free prompt, the question replaced by 'N/A')."""
    all_modes: bool = True
    """Score mode only: also compute the other scorings into each record's `by_mode`, so the run can be
    compared across scorings without re-evaluating (about twice the evaluation time of letter alone)."""
    text_format: str = "label_and_text"
    """Text scoring: label_and_text (' (c) blue': the label as trained, then the choice) | text_only (' blue')."""
    calibration_base: str = "letter"
    """Calibrated scoring: which score is corrected by the content-free prompt, letter | text."""
    every: int = 0
    """Validation accuracy every N training steps (and at the last step), for the curves; 0 = off."""
    val_size: int = 64
    """Validation items: a fixed sample (data.sample_seed) of the run's test items, scored by the
    run's own evaluation mode and scoring; for curves only, never for choosing a checkpoint."""

    def __post_init__(self):
        if self.mode not in EVAL_MODES:
            raise ConfigError(f"eval.mode must be one of {EVAL_MODES}, not {self.mode!r}")
        for key, allowed in (("scoring", SCORINGS), ("text_format", TEXT_FORMATS),
                             ("calibration_base", ("letter", "text"))):
            if getattr(self, key) not in allowed:
                raise ConfigError(f"eval.{key} must be one of {', '.join(allowed)}, "
                                  f"not {getattr(self, key)!r}")
        if not isinstance(self.all_modes, bool):
            raise ConfigError(f"eval.all_modes must be true or false, not {self.all_modes!r}")
        for key, low in (("every", 0), ("val_size", 1)):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"eval.{key} must be an integer >= {low}, not {value!r}")
        if self.mode == "generate" and self.scoring != "letter":
            raise ConfigError(f"eval.scoring={self.scoring} ranks candidate labels, which only "
                              f"eval.mode=score does: use eval.mode=score (or auto) or drop eval.scoring")


@dataclass
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    placement: str = "after"
    """Where the rationale goes in the target: none | before | after."""
    rationale_weight: float = 1.0
    """Loss weight of rationale tokens (0 = rationale as context only)."""
    perturbation: PerturbationConfig = field(default_factory=PerturbationConfig)
    student: StudentConfig = field(default_factory=StudentConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    seed: int = 0
    """Seeds model init, data order and perturbations."""
    name: str | None = None
    """Run name (folder name prefix); default from dataset and placement."""
    tracking: list = field(default_factory=list)
    """Trackers this run is mirrored to besides $COTDISTILL_TRACKERS: tensorboard, mlflow, wandb
    (cotdistill/train/trackers.py). Like `name`, not part of the config hash: it changes no result."""

    def __post_init__(self):
        if self.name is not None and (problem := name_problem(self.name, "name")):
            raise ConfigError(problem)
        if self.placement not in PLACEMENTS:
            raise ConfigError(f"placement must be one of {PLACEMENTS}, not {self.placement!r}")
        if self.rationale_weight < 0:
            raise ConfigError(f"rationale_weight must be >= 0, not {self.rationale_weight}")
        if not isinstance(self.tracking, list) or any(t not in TRACKER_KINDS for t in self.tracking):
            raise ConfigError(f"tracking must be a list of tracker names from {', '.join(TRACKER_KINDS)}, "
                              f"not {self.tracking!r}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def _hashed(self) -> dict:
        """The settings a hash covers (see `hashed_settings`)."""
        return hashed_settings(self.to_dict())

    def settings_hash(self) -> str:
        """12-hex-digit hash of the settings alone (name excluded): equal for the same config made
        by another results version or on other data content; used to find outdated results."""
        d = self._hashed()
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]

    def identity(self, device: str | None = None) -> dict:
        """What besides the settings decides a result: the results version, the data and scores
        files' content, the device kind and precision actually used (device None: this machine's
        default, cuda if available): cotdistill.fingerprint.identity."""
        return fingerprint.identity(self, device)

    def hash(self, device: str | None = None) -> str:
        """Stable 12-hex-digit hash of everything that changes a result: the settings (name
        excluded) and `identity(device)`. The one function behind run folders and job reuse."""
        d = self._hashed()
        d["identity"] = self.identity(device)
        d["train"]["precision"] = d["identity"]["precision"]    # auto on CUDA is bf16: one result
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]

    def check_protocol(self) -> None:
        """Refuse an evaluation protocol the placement's training did not prepare the student for.
        Called where a run is asked for (load_config, a matrix's expansion, the run entry point), not
        in __post_init__: configs of runs stored before the rule still load to be listed and shown."""
        if self.placement == "before" and self.eval.mode == "score":
            raise ConfigError("eval.mode: score is refused for placement before: a `before` student answers "
                              "after its own rationale, so it is evaluated by generation; use eval.mode auto "
                              "or generate")

    @property
    def eval_mode(self) -> str:
        if self.eval.mode != "auto":
            return self.eval.mode
        return "generate" if self.placement == "before" else "score"


def from_dict(cls, data: dict | None, where: str = ""):
    """Build dataclass `cls` from a nested dict; unknown keys raise ConfigError naming them."""
    data = dict(data or {})
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(str(k) for k in set(data) - set(fields))
    if unknown:
        raise ConfigError(f"unknown key(s) {', '.join(where + k for k in unknown)}; "
                          f"accepted in {where.rstrip('.') or 'the top level'}: {', '.join(fields)}")
    kwargs = {}
    for name, value in data.items():
        sub = fields[name].default_factory if fields[name].default_factory is not dataclasses.MISSING else None
        if sub is not None and dataclasses.is_dataclass(sub):
            if not isinstance(value, dict):
                raise ConfigError(f"{where}{name} must be a mapping, not {value!r}")
            value = from_dict(sub, value, f"{where}{name}.")
        else:
            value = _coerce(value, str(fields[name].type), f"{where}{name}")
            _check_plain(value, f"{where}{name}")
        kwargs[name] = value
    _check_ranges(kwargs, where)
    try:
        return cls(**kwargs)
    except TypeError as e:
        raise ConfigError(f"{where or 'config'}: {e}") from None


# Ranges checked at load time, so a bad value fails before any data is read or folder made:
# key -> (lowest or None, highest or None, why the upper bound). Every float must also be finite.
SEED_MAX = 2**32 - 1
_RANGES: dict[str, tuple[float | None, float | None, str]] = {
    "seed": (0, SEED_MAX, "numpy's seed range"), "data.sample_seed": (0, SEED_MAX, "numpy's seed range"),
    "data.n_train": (None, 10**9, ""), "data.n_test": (None, 10**9, ""),  # >= 1: DataConfig
    "rationale_weight": (0, None, ""),
    "train.steps": (0, 10**9, ""), "train.warmup_steps": (0, 10**9, ""),
    "train.batch_size": (1, 65_536, ""), "train.grad_accum": (1, 65_536, ""),
    "train.lr": (0, None, ""), "train.weight_decay": (0, None, ""),
    "train.min_lr_ratio": (0, 1, "the share of the peak learning rate the schedule ends at"),
    "train.clip": (0, None, ""),
    "train.checkpoint_every": (0, 10**9, ""), "train.log_every": (1, 10**9, ""),
    "train.devices": (1, 4096, ""),
    # max_length 8: the label and end-of-text token need room beside the prompt.
    "student.max_length": (8, 1_048_576, "a million tokens is beyond any student's positions"),
    "student.vocab_size": (0, 1_000_000, "the tiny tokenizer's training time and the embedding "
                                         "grow with it"),
    "eval.batch_size": (1, 65_536, ""),
    "eval.max_new_tokens": (1, 32_768, ""),
    "eval.n_boot": (1, 1_000_000, "each resample keeps a mean in memory and the interval stops "
                                  "changing long before"),
    "eval.every": (0, 10**9, ""), "eval.val_size": (1, 10**6, ""),
}
_OPEN_BELOW = ("train.lr",)
"""Keys whose lower bound is excluded (> 0)."""


def _coerce(value, annotation: str, key: str):
    """Turn a YAML value into the field's annotated type (int, float, bool, str, dict, optional):
    YAML 1.1 reads `3e-4` as a string, so numbers in any notation are parsed here; True is not an
    int; a float must be finite."""
    types = [t.strip() for t in annotation.split("|")]
    if value is None:
        if "None" in types:
            return None
        raise ConfigError(f"{key}: expected a {types[0]}, got null")
    kind = types[0]
    if kind == "int":
        if isinstance(value, bool) or isinstance(value, float) and not value.is_integer():
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        if isinstance(value, (int, float)):
            return int(value)
        try:
            return int(str(value).strip())
        except ValueError:
            raise ConfigError(f"{key}: expected an integer, got {_short(value)}") from None
    if kind == "float":
        if isinstance(value, bool) or isinstance(value, (dict, list)):
            raise ConfigError(f"{key}: expected a number, got {_short(value)}")
        if isinstance(value, int):
            if not _fits_float(value):
                raise ConfigError(f"{key}: expected a finite number, got an integer of "
                                  f"{len(str(abs(value)))} digits")
            return value    # kept an int: the config hash of existing configs must not change
        try:
            number = float(value) if not isinstance(value, float) else value
        except (TypeError, ValueError):
            raise ConfigError(f"{key}: expected a number, got {_short(value)}") from None
        if not math.isfinite(number):
            raise ConfigError(f"{key}: expected a finite number, got {number!r}")
        return number
    if kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {_short(value)}")
        return value
    if kind == "dict":
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {_short(value)}")
        return value
    if kind == "str":
        if isinstance(value, (dict, list)):
            raise ConfigError(f"{key}: expected a string, got {_short(value)}")
        return str(value)
    return value


def _fits_float(value: int) -> bool:
    try:
        float(value)
    except OverflowError:
        return False
    return True


def _check_plain(value, key: str) -> None:
    """Refuse what no setting can hold, anywhere inside a value (loader options, perturbation
    parameters, LoRA settings included): a NaN or infinite float, an integer beyond 64 bits,
    text with a NUL character, a key that is not text."""
    stack = [(key, value)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            raise ConfigError(f"{where}: expected a finite number, got {item!r}")
        if isinstance(item, int) and not isinstance(item, bool) and not -2**63 <= item < 2**63:
            raise ConfigError(f"{where}: expected a number that fits 64 bits, got an integer of "
                              f"{len(str(abs(item)))} digits")
        if isinstance(item, str) and "\x00" in item:
            raise ConfigError(f"{where}: the text holds a NUL character (\\x00)")
        if isinstance(item, dict):
            for k, v in item.items():
                if not isinstance(k, str):
                    raise ConfigError(f"{where}: the key {k!r} is not text; write it in quotes")
                stack.append((f"{where}.{k}", v))
        elif isinstance(item, (list, tuple)):
            stack.extend((f"{where}[{i}]", v) for i, v in enumerate(item))


def _check_ranges(kwargs: dict, where: str) -> None:
    for name, value in kwargs.items():
        key = where + name
        if key not in _RANGES or value is None or isinstance(value, bool) \
                or not isinstance(value, (int, float)):
            continue
        low, high, why = _RANGES[key]
        why = f" ({why})" if why else ""
        if key in _OPEN_BELOW and not value > low:
            raise ConfigError(f"{key}: expected a number > {low}, got {value!r}")
        if low is not None and value < low:
            raise ConfigError(f"{key}: expected a number >= {low}, got {value!r}")
        if high is not None and value > high:
            raise ConfigError(f"{key}: expected a number <= {high:,}{why}, got {value:,}")
    if where == "student." and kwargs.get("vocab_size") is not None:
        low = 256 + len(SPECIALS)      # byte alphabet plus special tokens: the tokenizer's floor
        if kwargs["vocab_size"] < low:
            raise ConfigError(f"student.vocab_size: expected an integer >= {low} (the tiny "
                              f"tokenizer's byte alphabet and special tokens), got {kwargs['vocab_size']!r}")


def _short(value, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


def parse_override(override: str) -> tuple[list[str], Any]:
    """(the dotted key's parts, the value parsed as YAML) of one `dotted.key=value` override;
    ConfigError naming the override if either is malformed or the value breaks a parsing limit."""
    if not isinstance(override, str) or "=" not in override:
        raise ConfigError(f"override {_short(override)} is not key=value (e.g. perturbation.kind=shuffle)")
    key, raw = override.split("=", 1)
    parts = key.strip().split(".")
    if not all(p.strip() for p in parts):
        raise ConfigError(f"override {_short(override)}: {key.strip()!r} is not a dotted key like "
                          f"train.lr")
    try:
        value = load_yaml_value(raw)
    except ParseError as e:
        raise ConfigError(f"override {_short(override)}: {key.strip()}: {e}") from None
    return [p.strip() for p in parts], value


def apply_override(data: dict, override: str) -> None:
    """Apply one `dotted.key=value` override (value parsed as YAML) to a nested dict in place."""
    parts, value = parse_override(override)
    node = data
    for i, part in enumerate(parts[:-1]):
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {_short(override)}: {'.'.join(parts[:i + 1])} is not a section")
    node[parts[-1]] = value


def read_config_file(path: str | Path, what: str = "") -> Any:
    """The YAML value of a config-like file (config, matrix, mapping); ConfigError naming the file
    (and `what` it is) if it is missing, not UTF-8, not valid YAML or breaks a parsing limit."""
    label = f"{what} {path}".strip()
    try:
        return load_yaml(read_text(path))
    except FileNotFoundError:
        raise ConfigError(f"{label}: file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{label}: is a folder, not a file") from None
    except OSError as e:
        raise ConfigError(f"{label}: cannot read it ({e.strerror or e})") from None
    except ParseError as e:
        raise ConfigError(f"{label}: {e}") from None


def load_config(path: str | Path | None, overrides: list[str] = (), defaults: bool = False) -> RunConfig:
    """Read a YAML config (or defaults when path is None) and apply key=value overrides. An empty
    file is refused unless `defaults`: it would otherwise silently run the full default run. An
    error is blamed on the file, or on the override that brought it in."""
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} not found")
        data = read_config_file(path)
        if data is None:
            if not defaults:
                raise ConfigError(f"{path.name} is empty; pass --defaults to run the default config")
            data = {}
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: the top level must be a mapping")
    overrides = list(overrides)
    states = [data]
    for override in overrides:
        states.append(copy.deepcopy(states[-1]))
        apply_override(states[-1], override)
    try:
        return _checked_config(states[-1])
    except ConfigError as e:
        final = str(e)
    # Blame the step that brought the error in: walk back while the error stays the same.
    k = len(overrides)
    while k > 0 and _error_of(states[k - 1]) == final:
        k -= 1
    source = f"override {_short(overrides[k - 1])}" if k else (path or "config")
    raise ConfigError(f"{source}: {final}") from None


def _error_of(data: dict) -> str | None:
    try:
        _checked_config(data)
    except ConfigError as e:
        return str(e)
    return None


def _checked_config(data: dict) -> RunConfig:
    cfg = from_dict(RunConfig, data)
    cfg.check_protocol()
    # Checked here, not in from_dict: configs saved with finished runs are rebuilt by from_dict
    # and must still load after their scores file has moved.
    scores = cfg.perturbation.scores_file
    if scores and not Path(scores).is_file():
        raise ConfigError(f"perturbation.scores_file: file {scores} not found")
    if cfg.data.name == "file":
        options = cfg.data.options
        paths = options.get("paths") or {}
        if not isinstance(paths, dict):
            raise ConfigError(f"data.options.paths: expected a mapping of split names to files, "
                              f"got {_short(paths)}")
        named = [("data.options.path", options.get("path"))] + \
            [(f"data.options.paths.{k}", v) for k, v in paths.items()]
        for key, file in named:
            if file and not Path(str(file)).is_file():
                raise ConfigError(f"{key}: file {file} not found")
    return cfg
