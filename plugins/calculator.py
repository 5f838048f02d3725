"""Calculator: arithmetic the model can call as the tool `calculator__calculate`, also as the model
`plugin:calculator` and the route GET /v1/plugins/calculator/evaluate?expression=... An example plugin; see
README "Plugins".

Expressions are parsed with `ast` and only numbers, + - * / // % ** and brackets are evaluated (never `eval`).
"""

from __future__ import annotations

import ast
import math
import operator

from flask import Blueprint
from flask import jsonify
from flask import request

from app.plugins import Reject
from app.plugins import Tool

_OPERATORS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
              ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow,
              ast.USub: operator.neg, ast.UAdd: operator.pos}
MAX_EXPONENT = 1000
MAX_DIGITS = 4000  # big integers are computed while holding the interpreter lock: keep them small
MAX_LENGTH = 500


def calculate(expression: str) -> float | int:
    """The value of an arithmetic expression.

    :raises ValueError: for anything but numbers, the operators above and brackets, or a huge power.
    """
    if not isinstance(expression, str) or not expression.strip() or len(expression) > MAX_LENGTH:
        raise ValueError(f"give an arithmetic expression of at most {MAX_LENGTH} characters")
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError:
        raise ValueError(f"not an arithmetic expression: {expression!r}") from None
    value = _value(tree.body)
    if isinstance(value, complex):
        raise ValueError("the result is not a real number")
    return value


def _value(node: ast.AST) -> float | int:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    if isinstance(node, ast.UnaryOp) and type(node.op) in _OPERATORS:
        return _OPERATORS[type(node.op)](_value(node.operand))
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        left, right = _value(node.left), _value(node.right)
        if isinstance(node.op, ast.Pow) and (abs(right) > MAX_EXPONENT or _digits(left) * abs(right) > MAX_DIGITS):
            raise ValueError(f"results above {MAX_DIGITS} digits are not computed")
        try:
            return _OPERATORS[type(node.op)](left, right)
        except ZeroDivisionError:
            raise ValueError("division by zero") from None
        except OverflowError:
            raise ValueError("the result is too large") from None
    raise ValueError("only numbers, + - * / // % ** and brackets are allowed")


def _digits(number: float | int | complex) -> float:
    """About how many decimal digits the number has (before the point)."""
    size = abs(number)
    return math.log10(size) + 1 if size >= 1 else 1


class Plugin:
    """A tool, a model and a route around one function."""

    def tools(self) -> list[Tool]:
        return [Tool("calculate", "Evaluate an arithmetic expression such as (2 + 3) * 4 ** 2 exactly.",
                     {"type": "object", "properties": {"expression": {"type": "string"}}, "required": ["expression"]},
                     self.run_tool)]

    def run_tool(self, arguments: dict, ctx) -> str:
        try:
            return str(calculate(arguments.get("expression", "")))
        except ValueError as err:
            return f"Error: {err}"

    def chat(self, ctx, request: dict) -> str:
        """As a model: the value of the last user message."""
        last = next((m for m in reversed(request["messages"]) if m.get("role") == "user"), {})
        content = last.get("content")
        if not isinstance(content, str):
            raise Reject("send the expression as text", param="messages")
        try:
            return f"{content.strip()} = {calculate(content)}"
        except ValueError as err:
            return f"I can only do arithmetic: {err}."

    def blueprint(self) -> Blueprint:
        bp = Blueprint("calculator", __name__)

        @bp.get("/evaluate")
        def evaluate():
            expression = request.args.get("expression", "")
            try:
                return jsonify({"expression": expression, "value": calculate(expression)})
            except ValueError as err:  # the gateway answers with its error envelope
                raise Reject(str(err), param="expression", code="invalid_expression") from None

        return bp
