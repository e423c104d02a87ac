"""Evaluation: one record per test example, in two modes.

    records = evaluate(model, builder, examples, mode="score", batch_size=32, device="cpu",
                       scoring="letter", modes=SCORINGS)    # every scoring, letter the primary one
    summary = summarize(records)                 # accuracy with its 95% bootstrap interval
    summary = summarize_with_diagnostics(records)   # + label-bias diagnostics (cotdistill.evaluate.diagnostics)

- `score`: rank the candidate labels of a multiple-choice or yes/no example. Each prompt runs once;
  its KV cache is repeated for the candidates, whose continuation tokens then go through the model
  together in a short second pass (one per continuation set). Scorings (`SCORINGS`):
  - `letter`: summed log-likelihood of the label as trained, right after the prompt (' (c)'; for
    `before`, 'So the answer is (c)', the rationale skipped).
  - `text`: mean per-token log-likelihood of the choice's answer text (`TEXT_FORMATS`:
    `label_and_text` ' (c) blue', `text_only` ' blue'; for `before` after the answer marker, which
    is not counted). The mean keeps short choices from winning just by being short.
  - `calibrated`: a letter (or text) score minus the same score under a content-free prompt (the
    question replaced by 'N/A', same choices): the PMI correction of surface-form competition. A
    student that prefers one letter whatever the question prefers it under 'N/A' too, so the
    preference cancels.
- `generate`: greedy decoding with the KV cache, stopping each example as soon as its label is
  complete (after the rationale for `before`), then parsing the label from the text. When no label
  can be parsed from a multiple-choice or yes/no generation, the answer is forced: the answer marker
  is appended to the generated rationale (`before`; the label position after the prompt otherwise)
  and the candidate labels are scored there (`forced_answers`). The record says `forced: true` and
  keeps the raw generation; the summary counts them (`unparsed_rate`, `forced`, `forced_ids`).

Records: example_id, gold, predicted (None when no label could be parsed nor forced), correct,
scores ({label: score} of the primary scoring in score mode, of the forced scoring for a forced
answer, else None), generated (the text, in generate mode) and, in generate mode, forced. Score mode adds `scoring` (the primary scoring's name) and `by_mode`:
{scoring: {"predicted", "correct", "scores"}} for every scoring computed, so a run can be compared
across scorings without evaluating again; by_mode["calibrated"] also holds `content_free`, the base
scores under the content-free prompt (the student's prior over the labels).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from typing import Mapping, Sequence

import torch

from cotdistill.config import SCORINGS, TEXT_FORMATS, EvalConfig
from cotdistill.evaluate.diagnostics import COLLAPSE_THRESHOLD, diagnose
from cotdistill.examples import LETTERS, Example, labels_equal
from cotdistill.students.logits import logits_at
from cotdistill.sequences.placements import ANSWER_MARKER, SequenceBuilder, label_text, parse_label
from cotdistill.stats.inference import bootstrap_ci, cluster_bootstrap_ci

CONTENT_FREE = "N/A"
"""The question of the content-free prompt that calibrated scoring subtracts."""


def evaluate(model, builder: SequenceBuilder, examples: Sequence[Example], *, mode: str,
             batch_size: int = 32, max_new_tokens: int = 128, device="cpu", progress=None,
             stop_at_label: bool = True, scoring: str = "letter", modes: Sequence[str] = (),
             text_format: str = "label_and_text", calibration_base: str = "letter") -> list[dict]:
    """One record per example. `stop_at_label=False` lets generation run on to the end of sequence
    (to read the rationale an `after` student writes); the label is parsed the same way.
    Score mode ranks by `scoring`, and also computes the scorings in `modes` into `by_mode`;
    generate mode ignores the scoring arguments.

    `progress(done, total)` (examples finished) is called before the first batch, after every batch
    and, in generate mode, at every decoding step, so that a caller hears from a long evaluation every
    few seconds; an exception it raises stops the evaluation (how a job system cancels it)."""
    if mode not in ("score", "generate"):
        raise ValueError(f"evaluation mode must be 'score' or 'generate', not {mode!r}")
    if mode == "score":
        _check_scoring(scoring, modes, text_format, calibration_base)
        missing = next((ex for ex in examples if ex.label_options is None), None)
        if missing is not None:
            raise ValueError(f"score evaluation needs candidate labels, but example {missing.id!r} "
                             f"is {missing.kind}: use eval.mode=generate")
    options = dict(scoring=scoring, modes=modes, text_format=text_format, calibration_base=calibration_base)
    model.to(device).eval()
    pad = builder.tok.pad_token_id if builder.tok.pad_token_id is not None else builder.tok.eos_token_id
    records = []
    total = len(examples)
    report = progress or (lambda done, total: None)
    report(0, total)
    with torch.inference_mode():
        for start in range(0, total, batch_size):
            batch = examples[start:start + batch_size]
            if mode == "score":
                records += score_batch(model, builder, batch, pad, device, **options)
            else:
                records += generate_batch(model, builder, batch, pad, max_new_tokens, device, stop_at_label,
                                          tick=lambda finished, start=start: report(start + finished, total))
            report(min(start + batch_size, total), total)
    return records


def scoring_options(cfg: EvalConfig) -> dict:
    """evaluate()'s scoring arguments as an EvalConfig sets them (all scorings when cfg.all_modes)."""
    return {"scoring": cfg.scoring, "modes": SCORINGS if cfg.all_modes else (),
            "text_format": cfg.text_format, "calibration_base": cfg.calibration_base}


def _check_scoring(scoring: str, modes: Sequence[str], text_format: str, calibration_base: str) -> None:
    checks = (("scoring", [scoring, *modes], SCORINGS), ("text_format", [text_format], TEXT_FORMATS),
              ("calibration_base", [calibration_base], ("letter", "text")))
    for name, values, allowed in checks:
        bad = [v for v in values if v not in allowed]
        if bad:
            raise ValueError(f"{name} {bad[0]!r} is unknown; choose one of {', '.join(allowed)}")


def _record(ex: Example, predicted: str | None, **extra) -> dict:
    return {"example_id": ex.id, "gold": ex.label, "predicted": predicted,
            "correct": labels_equal(ex.kind, predicted, ex.label), **extra}


def _pad(rows: Sequence[list[int]], pad: int, device, *, left: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad to the longest row; left padding makes every row end at the same column. -> ids, mask (B, T)."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for r, row in enumerate(rows):
        cols = slice(width - len(row), width) if left else slice(0, len(row))
        ids[r, cols] = torch.tensor(row)
        mask[r, cols] = 1
    return ids.to(device), mask.to(device)


# ---------------------------------------------------------------- scoring arithmetic (pure)

def letter_scores(token_logps: Mapping[str, Sequence[float]]) -> dict[str, float]:
    """{label: summed log-likelihood} from each candidate's per-token log-probabilities."""
    return {label: float(sum(lps)) for label, lps in token_logps.items()}


def text_scores(token_logps: Mapping[str, Sequence[float]], lead: int = 0) -> dict[str, float]:
    """{label: mean per-token log-likelihood}, skipping the first `lead` tokens (a lead-in shared by
    every candidate, like the answer marker of `before`): length-normalized, so a choice does not
    win only because it has fewer tokens to pay for."""
    return {label: float(sum(lps[lead:]) / len(lps[lead:])) for label, lps in token_logps.items()}


def calibrate(scores: Mapping[str, float], content_free: Mapping[str, float]) -> dict[str, float]:
    """{label: score - content-free score}: removes a preference the model has without the question."""
    return {label: scores[label] - content_free[label] for label in scores}


def best(scores: Mapping[str, float]) -> str:
    """The highest-scoring label (the first in candidate order on ties)."""
    return max(scores, key=scores.get)


# ---------------------------------------------------------------- score mode

def _answer_text(ex: Example, label: str, text_format: str) -> str:
    """What text scoring scores: the label as trained then the choice, or the choice only. A yes/no
    label is its own text."""
    if ex.kind != "multiple_choice":
        return label_text(label, ex.kind)
    choice = " " + ex.choices[LETTERS.index(label)].strip()
    return label_text(label, ex.kind) + choice if text_format == "label_and_text" else choice


def text_continuation_ids(builder: SequenceBuilder, ex: Example, label: str, text_format: str) -> list[int]:
    """Token ids of one candidate's answer text, encoded piece by piece like a training sequence
    (for `before` the answer marker leads in)."""
    if text_format == "label_and_text" and ex.kind == "multiple_choice":
        ids = builder.label_ids(label, ex.kind) + builder.encode(_answer_text(ex, label, "text_only"))
    else:
        ids = builder.encode(_answer_text(ex, label, text_format))
    return builder.encode(ANSWER_MARKER) + ids if builder.placement == "before" else ids


def score_batch(model, builder: SequenceBuilder, batch: Sequence[Example], pad: int, device, *,
                scoring: str = "letter", modes: Sequence[str] = (), text_format: str = "label_and_text",
                calibration_base: str = "letter") -> list[dict]:
    """Score records for one batch: the primary `scoring` on top, every scoring computed in `by_mode`."""
    wanted = {scoring, *modes}
    needed = {"letter", "text"} & (wanted | ({calibration_base} if "calibrated" in wanted else set()))
    options = [list(ex.label_options) for ex in batch]
    letter_conts = [[builder.continuation_ids(o, ex.kind) for o in opts] for ex, opts in zip(batch, options)]
    conts = {"letter": letter_conts} if "letter" in needed else {}
    if "text" in needed:
        conts["text"] = [[text_continuation_ids(builder, ex, o, text_format) for o in opts]
                         for ex, opts in zip(batch, options)]
    budget = builder.max_length - max(len(c) for cs in letter_conts for c in cs)   # prompt cut as in training
    prompts = [builder.cut_prompt(builder.prompt_ids(ex), budget) for ex in batch]
    logps = continuation_logps(model, prompts, conts, pad, device)
    content_free = None
    if "calibrated" in wanted:
        blank = [builder.cut_prompt(builder.prompt_ids(dataclasses.replace(ex, question=CONTENT_FREE)), budget)
                 for ex in batch]
        content_free = continuation_logps(model, blank, {calibration_base: conts[calibration_base]}, pad,
                                          device)[calibration_base]
    lead = len(builder.encode(ANSWER_MARKER)) if builder.placement == "before" else 0
    records = []
    for i, (ex, opts) in enumerate(zip(batch, options)):
        per_set = {name: dict(zip(opts, rows[i])) for name, rows in logps.items()}
        cf = dict(zip(opts, content_free[i])) if content_free is not None else None
        by_mode = _by_mode(ex, per_set, cf, lead, calibration_base)
        top = by_mode[scoring]
        records.append({**_record(ex, top["predicted"], scores=top["scores"], generated=None),
                        "scoring": scoring, "by_mode": by_mode})
    return records


def _by_mode(ex: Example, per_set: dict, content_free: dict | None, lead: int, base: str) -> dict:
    """{scoring: {predicted, correct, scores}} for one example from its per-token log-probabilities."""
    scores = {}
    if "letter" in per_set:
        scores["letter"] = letter_scores(per_set["letter"])
    if "text" in per_set:
        scores["text"] = text_scores(per_set["text"], lead)
    cf_scores = None
    if content_free is not None:
        cf_scores = letter_scores(content_free) if base == "letter" else text_scores(content_free, lead)
        scores["calibrated"] = calibrate(scores[base], cf_scores)
    by_mode = {}
    for name in SCORINGS:
        if name in scores:
            predicted = best(scores[name])
            by_mode[name] = {"predicted": predicted, "correct": labels_equal(ex.kind, predicted, ex.label),
                             "scores": scores[name]}
    if cf_scores is not None:
        by_mode["calibrated"]["content_free"] = cf_scores
    return by_mode


def continuation_logps(model, prompts: Sequence[list[int]], conts: Mapping[str, list[list[list[int]]]],
                       pad: int, device) -> dict[str, list[list[list[float]]]]:
    """Per-token log-probabilities of candidate continuations: {set: [example][candidate] -> [logp]}.

    Each prompt runs once; its KV cache is repeated for the candidates, whose continuation tokens then
    go through the model together in a second, short forward pass, one per continuation set (the
    cache is cut back to the prompt between sets). Every set has the same candidates per example."""
    n_cand = max(len(cs) for per_example in conts.values() for cs in per_example)
    ids, mask = _pad(prompts, pad, device, left=True)
    positions = (mask.cumsum(1) - 1).clamp(min=0)
    last, out = logits_at(model, input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True,
                          last_only=True)
    first_logp = torch.log_softmax(last[:, -1], -1)                  # (B, vocab): the first continuation token
    cache = _cache_of(out)
    cache.batch_repeat_interleave(n_cand)
    rep_mask = mask.repeat_interleave(n_cand, 0)
    rep_first = first_logp.repeat_interleave(n_cand, 0)
    result = {}
    for k, (name, per_example) in enumerate(conts.items()):
        padded = [c + [c[-1]] * (n_cand - len(c)) for c in per_example]   # pad with a duplicate, dropped below
        flat = _continuation_pass(model, cache, rep_mask, rep_first, [c for cs in padded for c in cs], pad, device)
        result[name] = [flat[e * n_cand:e * n_cand + len(cs)] for e, cs in enumerate(per_example)]
        if k + 1 < len(conts):
            cache.crop(-max(len(c) for cs in padded for c in cs))    # back to the prompt for the next set
    return result


def _continuation_pass(model, cache, rep_mask: torch.Tensor, rep_first: torch.Tensor, flat: list[list[int]],
                       pad: int, device) -> list[list[float]]:
    """Per-token log-probs of each row of `flat` after its (repeated) prompt cache."""
    longest = max(len(c) for c in flat)
    cont_ids, cont_mask = _pad(flat, pad, device, left=False)          # (B * n_cand, longest)
    cont_pos = rep_mask.sum(1, keepdim=True) + torch.arange(longest, device=device)[None]
    logits, _ = logits_at(model, (slice(None), slice(None, -1)), input_ids=cont_ids, cache=cache,
                          attention_mask=torch.cat([rep_mask, cont_mask], 1), position_ids=cont_pos,
                          use_cache=True)
    logp = torch.log_softmax(logits, -1)                               # (B*C, longest-1, vocab)
    later = logp.gather(2, cont_ids[:, 1:, None]).squeeze(2)          # (B*C, longest-1)
    first = rep_first.gather(1, cont_ids[:, :1])                      # (B*C, 1)
    rows = torch.cat([first, later], 1).tolist()
    return [row[:len(c)] for row, c in zip(rows, flat)]


def generate_batch(model, builder: SequenceBuilder, batch: Sequence[Example], pad: int,
                   max_new_tokens: int, device, stop_at_label: bool = True, tick=None) -> list[dict]:
    """Greedy generation records for one batch; `tick(finished)` is called after every decoding step
    with the number of this batch's examples that are finished (see evaluate's `progress`)."""
    tok, eos = builder.tok, builder.tok.eos_token_id
    prompts = [builder.cut_prompt(builder.prompt_ids(ex), builder.max_length) for ex in batch]   # cut like training does
    ids, mask = _pad(prompts, pad, device, left=True)
    out_tokens: list[list[int]] = [[] for _ in batch]
    labels: list[str | None] = [None] * len(batch)
    done = [False] * len(batch)
    cache, step_ids = None, ids
    for _ in range(max_new_tokens):
        positions = (mask.cumsum(1) - 1).clamp(min=0)[:, -step_ids.shape[1]:]
        out = model(input_ids=step_ids, attention_mask=mask, position_ids=positions,
                    use_cache=True, **{_cache_arg(type(model)): cache})
        cache = _cache_of(out)
        nxt = out.logits[:, -1].argmax(-1)               # greedy
        for r, t in enumerate(nxt.tolist()):
            if done[r]:
                continue
            if t == eos:
                done[r] = True
                labels[r] = parse_label(tok.decode(out_tokens[r]), batch[r].kind, builder.placement, True)
                continue
            out_tokens[r].append(t)
            if stop_at_label:
                labels[r] = parse_label(tok.decode(out_tokens[r]), batch[r].kind, builder.placement, False)
                done[r] = labels[r] is not None
        if tick is not None:
            tick(sum(done))
        if all(done):
            break
        step_ids = nxt[:, None]
        mask = torch.cat([mask, torch.ones_like(step_ids)], dim=1)
    for r, ex in enumerate(batch):                      # out of budget: parse what there is
        if labels[r] is None:
            labels[r] = parse_label(tok.decode(out_tokens[r]), ex.kind, builder.placement, True)
    texts = [tok.decode(t) for t in out_tokens]
    unparsed = [r for r, ex in enumerate(batch) if labels[r] is None and ex.label_options is not None]
    forced = forced_answers(model, builder, [batch[r] for r in unparsed], [out_tokens[r] for r in unparsed],
                            [texts[r] for r in unparsed], pad, device) if unparsed else []
    by_row = dict(zip(unparsed, forced))
    records = []
    for r, ex in enumerate(batch):
        if r in by_row:
            label, scores = by_row[r]
            records.append(_record(ex, label, scores=scores, generated=texts[r], forced=True))
        else:
            records.append(_record(ex, labels[r], scores=None, generated=texts[r], forced=False))
    return records


def forced_answer_prompt(builder: SequenceBuilder, ex: Example, generated_ids: list[int], text: str) -> list[int]:
    """The prompt a forced answer is scored after: for `before`, the prompt, the generated rationale
    (cut where a started answer marker begins) and the answer marker, as the training sequence lays
    them out; for `none`/`after`, whose label comes first, the prompt alone."""
    prompt = builder.prompt_ids(ex)
    if builder.placement != "before":
        return prompt
    at = text.find(ANSWER_MARKER.strip())
    rationale = generated_ids if at < 0 else builder.encode(text[:at].rstrip())
    return prompt + rationale + builder.encode(ANSWER_MARKER)


def forced_answers(model, builder: SequenceBuilder, examples: Sequence[Example],
                   generated_ids: Sequence[list[int]], texts: Sequence[str], pad: int,
                   device) -> list[tuple[str, dict[str, float]]]:
    """(label, {label: score}) for generations that gave no label: the candidates' labels are scored
    (summed log-likelihood, as `letter` scoring) right where the trained label would follow, so every
    arm can always answer; the caller records `forced: True` and keeps the raw generation."""
    options = [list(ex.label_options) for ex in examples]
    conts = [[builder.label_ids(o, ex.kind) for o in opts] for ex, opts in zip(examples, options)]
    budget = builder.max_length - max(len(c) for cs in conts for c in cs)   # cut the start, as training does
    prompts = [builder.cut_prompt(forced_answer_prompt(builder, ex, ids, text), budget)
               for ex, ids, text in zip(examples, generated_ids, texts)]
    logps = continuation_logps(model, prompts, {"letter": conts}, pad, device)["letter"]
    out = []
    for opts, rows in zip(options, logps):
        scores = letter_scores(dict(zip(opts, rows)))
        out.append((best(scores), scores))
    return out


@functools.cache
def _cache_arg(model_class) -> str:
    """transformers renamed `past_key_values` to `cache` during v5; accept both (looked up once per class)."""
    return "cache" if "cache" in inspect.signature(model_class.forward).parameters else "past_key_values"


def _cache_of(out):
    return out.cache if getattr(out, "cache", None) is not None else out.past_key_values


def summarize(records: Sequence[dict], *, n_boot: int = 10_000, seed: int = 0,
              clusters: Sequence[object] | None = None) -> dict:
    """Accuracy with its 95% bootstrap interval, and how many generations gave no parseable label:
    `unparsed` (count) and `unparsed_rate` count forced answers and answers left None (open-ended
    labels cannot be forced); `forced` counts the answers forced by scoring and `forced_ids` names them.
    `clusters` (one per record: its question's id) makes the interval resample questions, not rows,
    when a question has several rows; `n_questions` says how many there are."""
    if not records:
        raise ValueError("no evaluation records")
    correct = [r["correct"] for r in records]
    n_questions = len(set(clusters)) if clusters is not None else len(records)
    interval = cluster_bootstrap_ci(correct, clusters, n_boot=n_boot, seed=seed) \
        if n_questions < len(records) else bootstrap_ci(correct, n_boot=n_boot, seed=seed)
    forced_ids = [r["example_id"] for r in records if r.get("forced")]
    unparsed = sum(bool(r.get("forced")) or r["predicted"] is None for r in records)
    return {"n": len(records), "n_questions": n_questions, "interval_unit":
            "question" if n_questions < len(records) else "row",
            "accuracy": interval.estimate, "accuracy_low": interval.low,
            "accuracy_high": interval.high, "unparsed": unparsed, "unparsed_rate": unparsed / len(records),
            "forced": len(forced_ids), "forced_ids": forced_ids}


def summarize_with_diagnostics(records: Sequence[dict], *, n_boot: int = 10_000, seed: int = 0,
                               threshold: float = COLLAPSE_THRESHOLD,
                               clusters: Sequence[object] | None = None) -> dict:
    """summarize() plus the label-bias diagnostics of cotdistill.evaluate.diagnostics (distributions, majority
    baseline, per-label accuracy, accuracy by scoring, the collapse flag): the run summary's numbers."""
    stats = summarize(records, n_boot=n_boot, seed=seed, clusters=clusters)
    return {**stats, **diagnose(records, accuracy_low=stats["accuracy_low"],
                                accuracy_high=stats["accuracy_high"], threshold=threshold)}
