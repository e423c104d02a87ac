from cotdistill.demo import format_table


def row(placement, kind, correct):
    acc = sum(correct) / len(correct)
    return {"placement": placement, "perturbation": kind, "correct": correct,
            "summary": {"accuracy": acc, "accuracy_low": acc - 0.1, "accuracy_high": acc + 0.1, "n": len(correct)}}


def test_table_compares_every_arm_with_label_only():
    base = [True] * 10 + [False] * 10
    better = [True] * 16 + [False] * 4                  # fixes 6 items, breaks none
    table = format_table([row("none", "none", base), row("after", "none", better)]).splitlines()
    assert table[1].split()[:3] == ["none", "none", "0.500"]
    after = table[2]
    assert after.split()[:3] == ["after", "none", "0.800"]
    assert "+0.300" in after                           # the paired difference's estimate
    assert after.split()[-1] == "0.0312"               # McNemar exact: 2 * 0.5**6
    assert "20 test examples" in table[-1]
