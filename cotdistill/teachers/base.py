"""What every teacher shares: the decoding settings, one completion per prompt, the interface.

    decoding = Decoding(max_new_tokens=128)              # greedy (temperature 0)
    completions = teacher.complete(prompts, decoding)    # one Completion per prompt, same order
    [c.text if c.ok else c.error for c in completions]

A teacher never raises for one bad prompt: the failure comes back as `Completion.error`, with
`retryable` saying whether asking again later may help (a timeout, HTTP 429/5xx) or not (HTTP 400).
It raises only when it cannot work at all (a model that does not load, a missing API key).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Protocol, Sequence, runtime_checkable


@dataclass(frozen=True)
class Decoding:
    """How the teacher decodes. Part of the cache key and of a rationale set's provenance."""

    max_new_tokens: int = 256
    """Longest completion in tokens."""
    temperature: float = 0.0
    """0 is greedy decoding; above 0, sampling at this temperature."""
    top_p: float = 1.0
    """Nucleus sampling mass (sampling only)."""
    seed: int = 0
    """Sampling seed (local teachers seed each batch; HTTP servers get it as `seed`)."""
    stop: tuple[str, ...] = ("\nQ:",)
    """Strings that end a completion: the model's own next few-shot question starts with 'Q:'."""

    def __post_init__(self):
        if not isinstance(self.max_new_tokens, int) or self.max_new_tokens < 1:
            raise ValueError(f"decoding.max_new_tokens must be a positive integer, "
                             f"not {self.max_new_tokens!r}")
        numbers = (self.temperature, self.top_p)
        if any(isinstance(x, bool) or not isinstance(x, (int, float)) for x in numbers) \
                or not 0 <= self.temperature < float("inf") or not 0 < self.top_p <= 1:
            raise ValueError(f"decoding needs a finite temperature >= 0 and 0 < top_p <= 1, found "
                             f"temperature {self.temperature!r}, top_p {self.top_p!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 2**32:
            raise ValueError(f"decoding.seed must be an integer from 0 to {2**32 - 1:,}, "
                             f"not {self.seed!r}")
        object.__setattr__(self, "stop", tuple(self.stop))

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "stop": list(self.stop)}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "Decoding":
        """From `to_dict()` output or a user's mapping; unknown keys are an error naming them."""
        data = dict(data or {})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown decoding key(s) {', '.join(unknown)}; accepted: "
                             f"{', '.join(sorted(known))}")
        return cls(**data)


@dataclass(frozen=True)
class Completion:
    """The teacher's answer to one prompt: its text, or why there is none."""

    text: str | None = None
    error: str | None = None
    retryable: bool = False
    """Whether asking again later may succeed (timeouts, 429, 5xx); False for 4xx and the like."""

    @property
    def ok(self) -> bool:
        return self.error is None and self.text is not None


@runtime_checkable
class Teacher(Protocol):
    """Anything that completes prompts: a local causal LM, an OpenAI-compatible endpoint."""

    def complete(self, prompts: Sequence[str], decoding: Decoding) -> list[Completion]:
        """One Completion per prompt, in order."""

    def identity(self) -> dict[str, Any]:
        """What determines the outputs (model, API flavour): part of the cache key."""

    def describe(self) -> dict[str, Any]:
        """`identity()` plus how it was reached (URL, device): for provenance. Never secrets."""
