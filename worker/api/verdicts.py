"""Every arm against a reference arm: the verdicts Compare's table, the report and the CLI print.

    found = versus_reference(run_ids, reference="none")      # a label, an arm key, or None (default)
    found["rows"]      # the reference first, then every other arm: accuracy over seeds, and against
                       # the reference arm of its panel (dataset, student):
                       #  - the procedure (seeds as the unit): diff, diff_low, diff_high, p_value,
                       #    p_holm, verdict, with the seed budget (detectable, seeds_for_target,
                       #    sign_flip_floor); "needs ≥ 2 seeds" with one seed pair
                       #  - the test set (these trained models, on these items): test_low, test_high,
                       #    test_p, test_p_holm

Holm's correction runs over the comparisons printed: every arm against the reference, in every
panel (`family` of them with a procedure-level p; `test_family` with a test-set p). Arms evaluated by
generation stay in the family under a scoring switch, with their generated accuracy.
"""

from __future__ import annotations

from cotdistill.report import ALPHA, flag_messages, holm
from cotdistill.stats.inference import NEEDS_SEEDS
from worker.api.runs import compare, list_runs, mode_diagnostics, paired

N_BOOT = 10_000


def default_reference(arms: list[dict]) -> str:
    """The row key of the label-only arm (placement none, trained) when there is exactly one, else of
    the first arm."""
    label_only = list(dict.fromkeys(a["row_key"] for a in arms if a["placement"] == "none" and not a.get("untouched")))
    return label_only[0] if len(label_only) == 1 else arms[0]["row_key"]


def reference_choices(arms: list[dict]) -> dict[str, str]:
    """{row key: label} of the arms a reference can be chosen from, in the arms' order."""
    out: dict[str, str] = {}
    for a in arms:
        out.setdefault(a["row_key"], a["arm"])
    return out


def resolve_reference(arms: list[dict], wanted: str | None) -> str:
    """The row key of the reference arm named by `wanted`: a label, an arm key or a row key (None:
    `default_reference`). ValueError naming the arms when none matches."""
    if not arms:
        raise ValueError("there is no finished arm to compare")
    if wanted is None:
        return default_reference(arms)
    for a in arms:
        if wanted in (a["arm"], a["arm_key"], a["row_key"]):
            return a["row_key"]
    raise ValueError(f"{wanted!r} is not an arm of these runs; the arms are "
                     f"{', '.join(reference_choices(arms).values())}")


def versus(arms: list[dict], reference: str, *, scoring: str | None = None, n_boot: int = N_BOOT,
           target: float | None = None) -> tuple[list[dict], dict[int, dict]]:
    """(rows, paired results by row index): every arm against the arm of its panel whose row key is
    `reference`, Holm-corrected over the comparisons made (see the module's docstring)."""
    ordered = sorted(arms, key=lambda a: a["row_key"] != reference)    # the reference first; stable otherwise
    rows, results = [], {}
    for arm in ordered:
        ref = next((a for a in ordered if a["row_key"] == reference
                    and (a["dataset"], a["student"]) == (arm["dataset"], arm["student"])), None)
        row = {key: arm.get(key) for key in (
            "dataset", "student", "arm", "arm_key", "row_key", "placement", "perturbation", "perturbation_params",
            "untouched", "eval_mode", "protocol", "note", "n_seeds", "seeds", "runs", "accuracies", "mean", "low",
            "high")}
        row.update(reference=ref["arm"] if ref else None, is_reference=ref is arm)
        if ref is not None and ref is not arm:
            try:
                p = paired(arm["runs"], ref["runs"], n_boot=n_boot, scoring=scoring, target=target)
            except ValueError as e:
                row["comparison_error"] = str(e)
            else:
                results[len(rows)] = p
                budget, test = p["budget"], p["test_set"]
                row.update(diff=p["diff"], diff_low=p["low"], diff_high=p["high"], p_value=p["p_value"],
                           sd=p["procedure"]["sd"], seed_pairs=len(p["pairs"]), n_items=p["n_items"],
                           detectable=budget["detectable"], seeds_for_target=budget["seeds_for_target"],
                           sign_flip_floor=budget["sign_flip_floor"], test_low=test["low"],
                           test_high=test["high"], test_p=test["p_value"],
                           basis_warning=(p.get("basis") or {}).get("warning"))
        rows.append(row)
    tested = [i for i in results if rows[i]["p_value"] is not None]
    for i, q in zip(tested, holm([rows[i]["p_value"] for i in tested])):
        rows[i].update(p_holm=q, significant=q < ALPHA)
    for i in results:
        rows[i].setdefault("p_holm", None)
        rows[i].setdefault("significant", None)
        rows[i]["verdict"] = (NEEDS_SEEDS if rows[i]["p_value"] is None else
                              "significant" if rows[i]["significant"] else "not significant")
    compared = sorted(results)
    for i, q in zip(compared, holm([rows[i]["test_p"] for i in compared])):
        rows[i]["test_p_holm"] = q
    return rows, results


def versus_reference(run_ids: list[int], reference: str | None = None, *, scoring: str | None = None,
                     n_boot: int = N_BOOT, target: float | None = None) -> dict:
    """The runs' arms against a reference arm (see the module's docstring): {reference (its label),
    reference_key (row key), rows, family, test_family, flags (run id → its flag messages)}.
    ValueError when `reference` names no arm."""
    arms = compare(run_ids, scoring=scoring)
    key = resolve_reference(arms, reference)
    rows, _ = versus(arms, key, scoring=scoring, n_boot=n_boot, target=target)
    flags = run_flags([r for r in list_runs(run_ids=run_ids) if r["status"] == "succeeded"], scoring)
    for row in rows:
        row["flagged_runs"] = [r for r in row["runs"] if r in flags]
    return {"reference": reference_choices(arms)[key], "reference_key": key, "rows": rows,
            "family": sum(r.get("p_value") is not None for r in rows),
            "test_family": sum(r.get("test_p") is not None for r in rows),
            "flags": {str(k): v for k, v in flags.items()}}


def run_flags(done: list[dict], scoring: str | None) -> dict[int, list[str]]:
    """Run id → why its accuracy says little (constant answer, below baseline, mostly unparsed), one
    message per flag, under `scoring`: a run's own flags for its own scoring (and for generated
    answers, which have no scoring modes), else checked on that mode's answers."""
    others = [r["id"] for r in done if scoring is not None and r["summary"].get("scoring") != scoring
              and r.get("eval_mode") != "generate"]
    found = {r["id"]: r["summary"] for r in done if r["id"] not in others}
    if others:
        found.update(mode_diagnostics(others, scoring))
    return {run_id: messages for run_id, summary in found.items() if (messages := flag_messages(summary))}


def seed_budget(per_pair_diff: list[float], target: float | None = None) -> dict:
    """stats.seed_budget as plain data: what these seed pairs can detect at 80% power, how many seed
    pairs `target` (default: the observed difference) needs, the sign-flip floor."""
    from cotdistill.stats.inference import seed_budget as budget
    return budget(per_pair_diff, target=target).to_dict()
