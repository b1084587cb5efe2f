"""Guards and computed values: a small, safe expression language over instance data.

Expressions are written in a Python-like syntax (``channel == 'letter'``,
``amount_paid < amount_due and not anonymous``, ``rings > 3``) because process owners
read it easily and ``ast`` gives us a maintained parser with positions. We never call
``eval``: :func:`compile_expr` checks the tree against a whitelist (literals, names,
comparisons, boolean and arithmetic operators, ``x if c else y``, list literals and a few
named functions) and :class:`Expr` walks it. There is no attribute access, no subscripts
on arbitrary objects, no lambdas and no comprehensions, so nothing can reach Python's
internals. Unknown names are reported by :meth:`Expr.names` for the linter.
"""
from __future__ import annotations

import ast
import operator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Callable, Mapping

MAX_LENGTH = 500

_CONSTANT_NAMES = {"true": True, "false": False, "null": None, "True": True, "False": False, "None": None}

_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "len": len,
    "min": min,
    "max": max,
    "abs": abs,
    "empty": lambda v: v is None or v == "" or v == [] or v == {},
    "date": lambda v: v.date() if isinstance(v, datetime) else v,
    # Durations for date arithmetic: ``now + days(7)`` (a pay-by date), ``starts_at - minutes(15)``.
    "days": lambda n: timedelta(days=float(n)),
    "hours": lambda n: timedelta(hours=float(n)),
    "minutes": lambda n: timedelta(minutes=float(n)),
    # The keys of a checklist field whose result is "fail" (REN-2: any fail returns the plan).
    "failed": lambda v: [k for k, item in (v or {}).items() if isinstance(item, dict) and item.get("result") == "fail"],
    # Whether a text names any of the words: a refusal of instructions no one may give
    # (民法典 944: no cutting water or power to collect fees).
    "mentions": lambda text, *words: isinstance(text, str) and any(w in text for w in words),
    # Whole calendar months from a month ("2025-06", a date or a time) to another: how long a
    # fee period has been owed (DUN-8 "长时间未缴纳").
    "months_between": lambda a, b: _months(b) - _months(a),
}


def _months(v: Any) -> int:
    if isinstance(v, str):
        year, _, month = v.partition("-")
        if not (year.isdigit() and month[:2].isdigit()):
            raise ValueError(f"{v!r} is not a month (YYYY-MM)")
        return int(year) * 12 + int(month[:2])
    return v.year * 12 + v.month

_BINOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.Mod: operator.mod,
}
_CMPOPS: dict[type, Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
    ast.Gt: operator.gt, ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b,
    ast.Is: operator.is_, ast.IsNot: operator.is_not,
}


class ExprError(ValueError):
    """An expression that does not parse or uses something not allowed; ``col`` is 1-based."""

    def __init__(self, message: str, col: int = 1) -> None:
        self.col = col
        super().__init__(message)


class EvalError(ValueError):
    """An expression that parsed but failed on these data (e.g. comparing None with 3)."""


@dataclass(frozen=True)
class Expr:
    source: str
    tree: ast.expr

    def names(self) -> set[str]:
        """Data fields this expression reads (for the linter's unknown-field check)."""
        out: set[str] = set()
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Name) and node.id not in _CONSTANT_NAMES:
                if not _is_function_position(self.tree, node):
                    out.add(node.id)
        return out

    def evaluate(self, context: Mapping[str, Any]) -> Any:
        try:
            return _eval(self.tree, context)
        except EvalError:
            raise
        except (TypeError, ArithmeticError, ValueError) as e:
            raise EvalError(f"{self.source!r}: {e}") from e


def _is_function_position(tree: ast.expr, name: ast.Name) -> bool:
    return any(isinstance(n, ast.Call) and n.func is name for n in ast.walk(tree))


_ALLOWED = (
    ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.USub, ast.UAdd,
    ast.BinOp, ast.Compare, ast.IfExp, ast.Name, ast.Load, ast.Constant, ast.List, ast.Tuple,
    ast.Call, *_BINOPS, *_CMPOPS,
)


def compile_expr(source: str) -> Expr:
    """Parse and whitelist-check an expression; raise ExprError with a column."""
    if not isinstance(source, str):
        raise ExprError(f"expected an expression string, got {type(source).__name__}")
    if len(source) > MAX_LENGTH:
        raise ExprError(f"expression longer than {MAX_LENGTH} characters")
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError as e:
        raise ExprError(f"expression does not parse: {e.msg}", e.offset or 1) from e
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED):
            raise ExprError(f"{type(node).__name__} is not allowed in expressions",
                            getattr(node, "col_offset", 0) + 1)
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in _FUNCTIONS or node.keywords:
                raise ExprError(
                    f"only these functions may be called: {', '.join(sorted(_FUNCTIONS))}",
                    node.col_offset + 1,
                )
        if isinstance(node, ast.Constant) and not isinstance(node.value, (str, int, float, bool, type(None))):
            raise ExprError("unsupported literal", node.col_offset + 1)
    return Expr(source, tree.body)


def _eval(node: ast.expr, ctx: Mapping[str, Any]) -> Any:
    if isinstance(node, ast.Constant):
        return Decimal(repr(node.value)) if isinstance(node.value, float) else node.value
    if isinstance(node, ast.Name):
        if node.id in _CONSTANT_NAMES:
            return _CONSTANT_NAMES[node.id]
        return ctx.get(node.id)
    if isinstance(node, ast.BoolOp):
        if isinstance(node.op, ast.And):
            result: Any = True
            for v in node.values:
                result = _eval(v, ctx)
                if not result:
                    return result
            return result
        result = False
        for v in node.values:
            result = _eval(v, ctx)
            if result:
                return result
        return result
    if isinstance(node, ast.UnaryOp):
        v = _eval(node.operand, ctx)
        if isinstance(node.op, ast.Not):
            return not v
        return -v if isinstance(node.op, ast.USub) else +v
    if isinstance(node, ast.BinOp):
        return _BINOPS[type(node.op)](_num(_eval(node.left, ctx)), _num(_eval(node.right, ctx)))
    if isinstance(node, ast.Compare):
        left = _eval(node.left, ctx)
        for op, comp in zip(node.ops, node.comparators):
            right = _eval(comp, ctx)
            if not _CMPOPS[type(op)](*_comparable(left, right)):
                return False
            left = right
        return True
    if isinstance(node, ast.IfExp):
        return _eval(node.body, ctx) if _eval(node.test, ctx) else _eval(node.orelse, ctx)
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_eval(e, ctx) for e in node.elts]
    if isinstance(node, ast.Call):
        assert isinstance(node.func, ast.Name)
        return _FUNCTIONS[node.func.id](*[_eval(a, ctx) for a in node.args])
    raise EvalError(f"cannot evaluate {type(node).__name__}")  # pragma: no cover


def _num(v: Any) -> Any:
    return Decimal(str(v)) if isinstance(v, float) else v


def _comparable(a: Any, b: Any) -> tuple[Any, Any]:
    """Let money (Decimal) meet ints and date strings meet dates without surprises."""
    if isinstance(a, Decimal) and isinstance(b, (int, float)) and not isinstance(b, bool):
        return a, Decimal(str(b))
    if isinstance(b, Decimal) and isinstance(a, (int, float)) and not isinstance(a, bool):
        return Decimal(str(a)), b
    if isinstance(a, (date, datetime)) and isinstance(b, str):
        return a.isoformat(), b
    if isinstance(b, (date, datetime)) and isinstance(a, str):
        return a, b.isoformat()
    return a, b
