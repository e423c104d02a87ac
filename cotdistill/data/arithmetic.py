"""A tiny safe evaluator for arithmetic written in datasets (SVAMP equations, teacher answers).

    evaluate("( 84.0 / 2.0 )")      # -> 42.0
    try_evaluate("(some - 8)")      # -> None

Only numbers, + - * /, parentheses and unary minus are accepted; anything else (names, calls,
powers, …) is refused. Nothing is ever passed to eval().
"""

from __future__ import annotations

import ast
import math
import operator

_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
           ast.Div: operator.truediv}
MAX_LENGTH = 1000


def evaluate(expression: str) -> float:
    """The value of `expression`; ValueError if it is not plain arithmetic or has no value."""
    if not isinstance(expression, str) or not expression.strip():
        raise ValueError("empty expression")
    if len(expression) > MAX_LENGTH:
        raise ValueError(f"expression longer than {MAX_LENGTH} characters")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
        value = _value(tree.body)
    except (SyntaxError, RecursionError, MemoryError):
        raise ValueError(f"not an arithmetic expression: {expression!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"{expression!r} has no finite value")
    return value


def try_evaluate(expression: str) -> float | None:
    """The value of `expression`, or None when `evaluate` refuses it."""
    try:
        return evaluate(expression)
    except ValueError:
        return None


def _value(node: ast.AST) -> float:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return float(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_value(node.operand)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _value(node.left), _value(node.right)
        if isinstance(node.op, ast.Div) and right == 0:
            raise ValueError("division by zero")
        return _BINARY[type(node.op)](left, right)
    raise ValueError(f"not allowed in an arithmetic expression: {ast.unparse(node)!r}")
