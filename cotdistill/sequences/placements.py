"""Training sequences built segment by segment, with the loss mask recorded as they are built.

    builder = SequenceBuilder(tokenizer, placement="after", rationale_weight=1.0)
    seq = builder.build(example)
    seq.input_ids, seq.labels   # labels: the token where supervised, IGNORE (-100) elsewhere
    seq.spans["label"]          # (start, end) token positions of the label

Layout (each piece is its own segment; `|` marks segment boundaries):

    none:    Question: …\\nChoices: (a) … (b) …\\nAnswer: | (c) | <eos>
    after:   Question: …\\nAnswer: | (c) | \\nExplanation: | <rationale> | <eos>
    before:  Question: …\\nAnswer: | <rationale> | \\nSo the answer is | (c) | <eos>

A tokenizer that adds a BOS by default (Llama, Gemma) gets it as a first, unsupervised `bos` segment,
and every prompt evaluation scores or generates from starts with it too (`prompt_ids`, `cut_prompt`).

The prompt is never supervised, the label (and the marker that leads to it) always is, the rationale
and its marker carry `rationale_weight`. Masks come from these recorded boundaries, never from
searching for strings in token ids. Truncation to `max_length` cuts the rationale first, then the
start of the prompt, never the label.

Loss groups (`LOSS_GROUPS`, `loss_weights`): every supervised token belongs to the label's part or the
rationale's, by the weight it carries. The label's part: the label, `before`'s answer marker and the
end-of-sequence token of `none` and `before` (it closes the label); the rationale's part: the
rationale, `after`'s marker and `after`'s end-of-sequence token (it closes the rationale). With
train.loss_normalization `segment` each part is averaged over its own tokens, per example, and the
parts combined as (label + w x rationale) / (1 + w): the label's share is 1 / (1 + w) for every
placement (`label_share`); with `token` (the default) every supervised token counts once, weighted.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from cotdistill.examples import LETTERS, Example
from cotdistill.sequences.perturbations import PerturbContext, perturb, text_units

IGNORE = -100
RATIONALE_MARKER = "\nExplanation:"
ANSWER_MARKER = "\nSo the answer is"
# Placeholders, the same for every student: word level the words '_' (mask) and '...' (filler); token
# level the last token of ' _' and of ' .' in the student's tokenizer (SequenceBuilder.placeholder_ids).
WORD_MASK, WORD_FILLER = "_", "..."
LOSS_GROUPS = {"label": "label", "answer_marker": "label", "rationale": "rationale",
               "rationale_marker": "rationale"}
"""The loss part of each supervised segment role; `eos` belongs to the part of the segment it closes."""


def prompt_text(ex: Example) -> str:
    """The question (and its choices) up to and including 'Answer:'; never supervised."""
    text = f"Question: {ex.question.strip()}\n"
    if ex.kind == "multiple_choice":
        text += "Choices: " + " ".join(f"({LETTERS[i]}) {c.strip()}" for i, c in enumerate(ex.choices)) + "\n"
    return text + "Answer:"


def default_prefix(tokenizer) -> list[int]:
    """The special tokens `tokenizer` puts in front of a text when asked to add special tokens (its
    default): [bos] for Llama- and Gemma-style tokenizers, [] for GPT-2-style ones. Tokens it appends
    at the end (an EOS some tokenizers add) are not a prefix and are ignored."""
    probe = "Question: Answer:"
    plain = tokenizer.encode(probe, add_special_tokens=False)
    full = tokenizer.encode(probe)
    special = set(tokenizer.all_special_ids)
    n = 0
    while n < len(full) and full[n] in special and full[n:n + len(plain)] != plain:
        n += 1
    return list(full[:n]) if full[n:n + len(plain)] == plain else []


def label_text(label: str, kind: str) -> str:
    """The label as the student writes it, with its leading space: ' (c)', ' yes', ' 42'."""
    return f" ({label})" if kind == "multiple_choice" else f" {label}"


@dataclass
class Segment:
    role: str            # prompt | rationale_marker | rationale | answer_marker | label | eos
    ids: list[int]
    weight: float


@dataclass
class TrainingSequence:
    example_id: str
    segments: list[Segment]
    truncated: bool = False
    rationale_weight: float | None = None
    """The rationale's weight w, for `segment` normalisation's 1 / (1 + w); None: the weight of the
    rationale's part, or 1 when the sequence has none."""
    input_ids: list[int] = field(init=False)
    weights: list[float] = field(init=False)
    spans: dict[str, tuple[int, int]] = field(init=False)

    def __post_init__(self):
        self.input_ids, self.weights, self.spans = [], [], {}
        for seg in self.segments:
            start = len(self.input_ids)
            self.input_ids += seg.ids
            self.weights += [seg.weight] * len(seg.ids)
            self.spans[seg.role] = (start, len(self.input_ids))

    @property
    def labels(self) -> list[int]:
        return [t if w > 0 else IGNORE for t, w in zip(self.input_ids, self.weights)]

    def __len__(self) -> int:
        return len(self.input_ids)

    def groups(self) -> list[str | None]:
        """Per token, its loss part: `label`, `rationale` or None (prompt, BOS: never supervised)."""
        out, last = [], None
        for seg in self.segments:
            group = last if seg.role == "eos" else LOSS_GROUPS.get(seg.role)
            last = group or last
            out += [group] * len(seg.ids)
        return out

    def _w(self) -> float:
        if self.rationale_weight is not None:
            return float(self.rationale_weight)
        return next((s.weight for s in self.segments if LOSS_GROUPS.get(s.role) == "rationale"), 1.0)

    def loss_weights(self, normalization: str = "token") -> list[float]:
        """Each token's factor in the loss. token: `weights` (the batch's loss divides by their sum).
        segment: a label-part token 1 / ((1 + w) x the part's supervised tokens), a rationale-part token
        w / ((1 + w) x its part's): the example's loss is (label mean + w x rationale mean) / (1 + w),
        and the batch's divides by its number of examples."""
        if normalization == "token":
            return list(self.weights)
        if normalization != "segment":
            raise ValueError(f"loss normalisation must be token or segment, not {normalization!r}")
        groups, scale = self.groups(), 1.0 + self._w()
        counts = {g: sum(1 for h, w in zip(groups, self.weights) if h == g and w > 0) for g in ("label", "rationale")}
        return [w / (scale * counts[g]) if g is not None and w > 0 else 0.0 for g, w in zip(groups, self.weights)]

    def label_share(self, normalization: str = "token") -> float:
        """The label's part of this example's loss: token: its tokens' weight over all supervised weight
        (1 for `none`, small beside a long rationale); segment: 1 / (1 + w) whatever the placement."""
        if normalization == "segment":
            return 1.0 / (1.0 + self._w())
        label = sum(w for g, w in zip(self.groups(), self.weights) if g == "label")
        return label / sum(self.weights)


def label_share(seqs: Sequence[TrainingSequence], normalization: str = "token") -> float | None:
    """The label's share of the loss of a batch of `seqs` (None for no sequence). token: the label
    part's weight over all supervised weight, the examples pooled as a batch pools them; segment:
    the mean of each example's 1 / (1 + w)."""
    if not seqs:
        return None
    if normalization == "segment":
        shares = [s.label_share("segment") for s in seqs]
        return shares[0] if len(set(shares)) == 1 else sum(shares) / len(shares)
    label = sum(w for s in seqs for g, w in zip(s.groups(), s.weights) if g == "label")
    return label / sum(sum(s.weights) for s in seqs)


class SequenceBuilder:
    """Turns examples into token sequences for one placement, perturbation and tokenizer."""

    def __init__(self, tokenizer, placement: str = "after", *, rationale_weight: float = 1.0,
                 perturbation: str = "none", perturbation_params: Mapping | None = None,
                 level: str = "token", seed: int = 0, max_length: int = 256,
                 pool: Sequence[Example] = (), scores: Mapping[str, Sequence[float]] | None = None):
        if tokenizer.eos_token_id is None:
            raise ValueError("the tokenizer has no end-of-sequence token")
        self.tok, self.placement, self.rw = tokenizer, placement, rationale_weight
        self.kind, self.params, self.level = perturbation, dict(perturbation_params or {}), level
        self.seed, self.max_length, self.scores = seed, max_length, scores or {}
        self._pool_ids = {ex.id: i for i, ex in enumerate(pool)}
        self._pool_units = [self.rationale_units(ex) for ex in pool] if perturbation == "mismatch" else []

    # --- tokens ----------------------------------------------------------------------------
    def encode(self, text: str) -> list[int]:
        return self.tok.encode(text, add_special_tokens=False)

    @functools.cached_property
    def bos_ids(self) -> list[int]:
        """The special tokens the tokenizer puts in front of a text by default (Llama's and Gemma's
        BOS), found by encoding a probe with and without them; [] for GPT-2, Phi, SmolLM2 and the
        tiny student. Every sequence the student sees starts with them, exactly once."""
        return default_prefix(self.tok)

    def prompt_ids(self, ex: Example) -> list[int]:
        """The prompt as the student sees it at test time: BOS (if the tokenizer adds one) then the text."""
        return self.bos_ids + self.encode(prompt_text(ex))

    def cut_prompt(self, ids: list[int], budget: int) -> list[int]:
        """`ids` (a prompt starting with `bos_ids`) cut to at most `budget` tokens from the start of its
        text, as training cuts it: the BOS stays."""
        n = len(self.bos_ids)
        if len(ids) <= budget:
            return list(ids)
        return list(ids[:n]) + list(ids[len(ids) - max(budget - n, 1):])

    def label_ids(self, label: str, kind: str) -> list[int]:
        return self.encode(label_text(label, kind))

    @property
    def text_level(self) -> bool:
        """Units are text (words, sentences), re-tokenised after the perturbation."""
        return self.level in ("word", "sentence")

    def rationale_units(self, ex: Example) -> list:
        """The rationale's units: words or sentences (cotdistill.sequences.perturbations.text_units), or the
        student's token ids with every special token left out (a rationale that spells '<|endoftext|>'
        must not put an end-of-sequence inside the target)."""
        text = (ex.rationale or "").strip()
        if self.text_level:
            return text_units(text, self.level)
        return self.ordinary_ids(" " + text) if text else []

    def ordinary_ids(self, text: str) -> list[int]:
        """`text` encoded, special tokens left out: structure, never content."""
        special = set(self.tok.all_special_ids)
        return [t for t in self.encode(text) if t not in special]

    def placeholder_ids(self) -> tuple[int, int]:
        """Token-level (mask, filler) units: the last token of ' _' and of ' .' in the student's own
        tokenizer, the same rule for every student, never a special token (GPT-2's and Phi's unk is
        their eos, SmolLM2's unk is id 0, the tiny student has a <mask>: none of them is used)."""
        special = set(self.tok.all_special_ids)
        units = []
        for text in (" " + WORD_MASK, " ."):
            ids = self.encode(text)
            if not ids or ids[-1] in special:
                raise ValueError(f"the student's tokenizer has no ordinary token for the placeholder {text!r}")
            units.append(ids[-1])
        return units[0], units[1]

    def _context(self, ex: Example) -> PerturbContext:
        if self.text_level:
            mask_unit, filler_unit = WORD_MASK, WORD_FILLER
        else:
            mask_unit, filler_unit = self.placeholder_ids()
        return PerturbContext(mask_unit=mask_unit, filler_unit=filler_unit, pool=self._pool_units,
                              self_index=self._pool_ids.get(ex.id), scores=self.scores.get(ex.id))

    def rationale_ids(self, ex: Example) -> list[int]:
        """The rationale as trained on: perturbed at the configured level, as token ids."""
        units = self.rationale_units(ex)
        if self.kind == "key_tokens" and ex.id not in self.scores:
            raise ValueError(f"key_tokens: no scores for example {ex.id!r} in the scores file")
        units = perturb(self.kind, units, seed=self.seed, example_id=ex.id, params=self.params,
                        context=self._context(ex))
        if self.text_level:
            return self.ordinary_ids(" " + " ".join(units)) if units else []
        return list(units)

    # --- sequences -------------------------------------------------------------------------
    def segments(self, ex: Example) -> list[Segment]:
        lead = [Segment("bos", list(self.bos_ids), 0.0)] if self.bos_ids else []
        prompt = Segment("prompt", self.encode(prompt_text(ex)), 0.0)
        label = Segment("label", self.label_ids(ex.label, ex.kind), 1.0)
        if self.placement == "none":
            return lead + [prompt, label, Segment("eos", [self.tok.eos_token_id], 1.0)]
        rationale = Segment("rationale", self.rationale_ids(ex), self.rw)
        if self.placement == "after":
            return lead + [prompt, label, Segment("rationale_marker", self.encode(RATIONALE_MARKER), self.rw),
                           rationale, Segment("eos", [self.tok.eos_token_id], self.rw)]
        return lead + [prompt, rationale, Segment("answer_marker", self.encode(ANSWER_MARKER), 1.0), label,
                       Segment("eos", [self.tok.eos_token_id], 1.0)]

    def build(self, ex: Example) -> TrainingSequence:
        segs = self.segments(ex)
        excess = sum(len(s.ids) for s in segs) - self.max_length
        truncated = excess > 0
        for role in ("rationale", "prompt"):          # cut the rationale's end, then the prompt's start
            if excess <= 0:
                break
            seg = next((s for s in segs if s.role == role), None)
            if seg is None:
                continue
            cut = min(excess, len(seg.ids) - (1 if role == "prompt" else 0))
            seg.ids = seg.ids[:len(seg.ids) - cut] if role == "rationale" else seg.ids[cut:]
            excess -= cut
        if excess > 0:
            raise ValueError(f"example {ex.id!r}: label and markers alone exceed max_length "
                             f"{self.max_length}")
        return TrainingSequence(ex.id, segs, truncated, rationale_weight=self.rw)

    # --- evaluation ------------------------------------------------------------------------
    def continuation_ids(self, label: str, kind: str) -> list[int]:
        """What `score` evaluation scores right after the prompt for one candidate label
        (for `before` the answer marker leads in, the rationale is skipped)."""
        ids = self.label_ids(label, kind)
        return self.encode(ANSWER_MARKER) + ids if self.placement == "before" else ids


_LABEL_PATTERNS = {
    "multiple_choice": re.compile(r"\s*\(\s*([a-z])\s*\)"),
    "yes_no": re.compile(r"\s*(yes|no)(?![a-z])", re.IGNORECASE),
    "numeric": re.compile(r"\s*(-?\d[\d,]*(?:\.\d+)?)(?![\d.,]*\d)"),
}


def parse_label(text: str, kind: str, placement: str, finished: bool = True) -> str | None:
    """The label in generated `text`, or None if it is not (yet) complete.

    For `before`, the label follows the answer marker; otherwise it starts the text. An open-ended
    label (a word, a number) counts as complete once a character follows it or generation finished.
    """
    if placement == "before":
        at = text.find(ANSWER_MARKER.strip())
        if at < 0:
            return None
        text = text[at + len(ANSWER_MARKER.strip()):]
    m = _LABEL_PATTERNS[kind].match(text)
    if m is None:
        return None
    rest = text[m.end():]
    if not finished and (rest == "" if kind == "yes_no" else kind == "numeric" and rest in ("", ".", ",")):
        return None                                   # 'no' may become 'not', '4' '42' or '4.5'
    value = m.group(1).lower()
    return value.replace(",", "") if kind == "numeric" else value
