"""The safe arithmetic evaluator: exact values, and refusal of anything but plain arithmetic."""

import pytest

from cotdistill.data.arithmetic import evaluate, try_evaluate


@pytest.mark.parametrize("expression, value", [
    ("( 84.0 / 2.0 )", 42.0),
    ("( 10.0 - ( 6.0 + 3.0 ) )", 1.0),
    ("(84 / 2)", 42.0),
    ("-3 * (2 + 1)", -9.0),
    ("7 / 2", 3.5),
    ("42", 42.0),
    ("--2", 2.0),
])
def test_evaluate(expression, value):
    assert evaluate(expression) == value


@pytest.mark.parametrize("expression", [
    "", "x + 1", "(some - 8)", "2 ** 3", "1 / 0", "(14, 21)", "__import__('os')", "True + 1",
    "+2", "1e400 * 10", "((491 - 21", "(" * 500 + "1" + ")" * 500, "abs(-1)", "3 % 2",
])
def test_refuses(expression):
    with pytest.raises(ValueError):
        evaluate(expression)
    assert try_evaluate(expression) is None
