from cotdistill.studies.demo import format_table
from cotdistill.stats.inference import procedure_diff, seed_paired_diff


def row(placement, kind, correct_by_seed):
    summaries = [{"accuracy": sum(c) / len(c), "n": len(c)} for c in correct_by_seed]
    return {"placement": placement, "perturbation": kind, "seeds": list(range(len(correct_by_seed))),
            "summaries": summaries, "correct": correct_by_seed}


def test_table_compares_every_arm_with_label_only_seeds_first():
    base = [[True] * 10 + [False] * 10, [True] * 9 + [False] * 11]
    better = [[True] * 16 + [False] * 4, [True] * 13 + [False] * 7]     # +0.30 and +0.20
    table = format_table([row("none", "none", base), row("after", "none", better)]).splitlines()
    assert table[1].split()[:3] == ["none", "none", "0.475"]
    after = table[2]
    assert after.split()[:3] == ["after", "none", "0.725"]
    p = procedure_diff([0.3, 0.2])
    assert f"+0.250 [{p.low:+.3f}, {p.high:+.3f}] p={p.p_value:.3g}" in after      # the procedure first
    d = seed_paired_diff(better, base)
    assert after.endswith(f"[{d.interval.low:+.3f}, {d.interval.high:+.3f}] p={d.p_value:.3g}".ljust(36))
    assert "20 test examples" in table[-1] and "2 seed(s) per arm" in table[-1]


def test_one_seed_needs_two_seeds_and_shows_the_test_set():
    base = [[True] * 10 + [False] * 10]
    better = [[True] * 16 + [False] * 4]                # fixes 6 items, breaks none
    after = format_table([row("none", "none", base), row("after", "none", better)]).splitlines()[2]
    assert "+0.300, needs ≥ 2 seeds" in after
    d = seed_paired_diff(better, base)
    assert abs(d.p_value - 2 * 0.5 ** 6) < 1e-12        # McNemar exact with one seed pair
    assert after.rstrip().endswith(f"[{d.interval.low:+.3f}, {d.interval.high:+.3f}] p={d.p_value:.3g}")


def test_demo_refuses_bad_seeds_in_one_sentence():
    from click.testing import CliRunner
    from cotdistill.cli import science
    result = CliRunner().invoke(science, ["demo", "--seeds", "0,x"])
    assert result.exit_code == 2 and result.output == "error: --seeds must be integers separated by commas, found '0,x'\n"
