"""Teachers: the models that write rationales, and turning their output into rationale sets.

    from cotdistill.teachers import Decoding, generate_rationales, load_teacher, make_prompt
    teacher = load_teacher({"kind": "local", "model": "smollm2-135m"})
    teacher = load_teacher({"kind": "http", "base_url": "http://localhost:8000/v1",
                            "model": "Qwen/Qwen2.5-7B-Instruct", "api": "chat",
                            "api_key_env": "VLLM_API_KEY", "concurrency": 8})
    result = generate_rationales({"train": examples}, teacher, make_prompt("multiple_choice"),
                                 Decoding(max_new_tokens=128), out_dir, batch_size=8)

Modules: `base` (Decoding, Completion, the Teacher protocol), `local` (transformers, batched),
`http` (OpenAI-compatible endpoints), `prompts` (few-shot CoT templates and answer parsing),
`cache` (completions by content hash), `generate` (resumable generation ending in a set). The
published releases are data (cotdistill.data.releases). The package may import students, sequences,
data (the set store), the configuration and the bottom layer; never training, evaluation, the run
or anything above.
"""

from __future__ import annotations

import inspect
from typing import Any, Mapping

import importlib

from cotdistill.teachers.base import Completion, Decoding, Teacher
from cotdistill.errors import TeacherError
from cotdistill.teachers.prompts import Prompt, make_prompt

__all__ = ["Completion", "Decoding", "GenerationResult", "HttpTeacher", "LocalTeacher", "Prompt",
           "Teacher", "TeacherError", "generate_rationales", "load_teacher", "make_prompt"]

# The teachers and the generator load on first use: the local teacher imports torch, and the prompt
# templates must stay importable without it (the app's process shows and checks them).
_LAZY = {"LocalTeacher": "local", "HttpTeacher": "http", "GenerationResult": "generate",
         "generate_rationales": "generate"}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"cotdistill.teachers.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _kinds() -> dict:
    return {"local": __getattr__("LocalTeacher"), "http": __getattr__("HttpTeacher")}


def load_teacher(spec: Mapping[str, Any]) -> Teacher:
    """A teacher from a plain mapping: {'kind': 'local' | 'http', …the class's arguments}."""
    spec = dict(spec)
    kind = spec.pop("kind", None)
    KINDS = _kinds()                                  # noqa: N806
    if kind not in KINDS:
        raise TeacherError(f"teacher kind must be one of {', '.join(KINDS)}, not {kind!r}")
    accepted = [p for p in inspect.signature(KINDS[kind]).parameters if p != "self"]
    unknown = sorted(set(spec) - set(accepted))
    if unknown:
        raise TeacherError(f"unknown key(s) {', '.join(unknown)} for a {kind} teacher; "
                           f"accepted: {', '.join(accepted)}")
    return KINDS[kind](**spec)
