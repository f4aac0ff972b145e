"""The rule expression language: small, safe, and compiled once.

A rule's condition is an expression over the current event and windowed features, for example::

    event.type == "link_attempt" and count(device, "24h", type="link_attempt") >= 3
    distinct(ip24, "account", "1h", type="link_attempt", outcome_not="ok") >= 5
    age(wallet) < hours(24) and event.amount >= 100000

It is parsed with Python's ``ast`` in expression mode and then checked against a whitelist of
node kinds — literals, names of dimensions, ``event.<field>``, the functions below, boolean,
comparison and arithmetic operators, ``in`` over literal lists — and compiled into closures.
Nothing is ever passed to ``eval``; attribute access other than ``event.<field>``, subscripts,
lambdas, comprehensions and unknown names are refused with the offending column.

Comparisons involving an unknown value (``None``, e.g. the age of a key never seen) are false.

Rule files come from operators' hands, so an expression is also bounded before it is compiled:
at most :data:`MAX_SOURCE` characters, :data:`MAX_NODES` syntax nodes, :data:`MAX_DEPTH` levels
of nesting (deeper would exhaust Python's recursion), string constants of at most
:data:`MAX_STRING` characters and numbers of magnitude at most :data:`MAX_NUMBER`. Arithmetic
works on numbers only: ``"a" * 10**9`` or ``event.holder_name * count(…)`` would build a string
as large as the memory, so a string or list operand is refused when written and yields an
unknown value (``None``) when it only appears at run time.

Functions (windows are strings such as ``"90s"``, ``"15m"``, ``"24h"``, ``"30d"``):

* ``count(key, window, type=, outcome=, outcome_not=)`` — events under ``key`` in the window;
* ``total(key, window, type=, outcome=)`` — sum of their amounts;
* ``distinct(key, field, window, type=, outcome=, outcome_not=)`` — distinct values of a field;
* ``others(key, field, window, …)`` — distinct values other than the current event's (e.g. how
  many *other* bank accounts this device tried);
* ``age(key)`` — seconds since the key was first seen (``None`` if never);
* ``since(key, type, outcome=)`` — seconds since the key's last event of ``type`` (``None``);
* ``first(key, field, type=)`` — a field of the key's first event of ``type`` in retention;
* ``model(name)`` — a score from a registered model (any callable of the event), so a learned
  model is one more feature;
* ``minutes(n)``, ``hours(n)``, ``days(n)`` — seconds.
"""

from __future__ import annotations

import ast
import operator
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from kouza.errors import BadRequest
from kouza.risk.events import RiskEvent
from kouza.risk.features import DIMENSIONS, FeatureStore, keys_of

Model = Callable[[RiskEvent], float]


class ExpressionError(BadRequest):
    """An expression that is not valid in the rule language; ``line`` is the line within the
    expression (1 for a one-line expression), so a rule file can name its own line."""

    code = "invalid_rule_expression"

    def __init__(self, message: str, *, line: int = 1) -> None:
        super().__init__(message)
        self.line = line


MAX_SOURCE = 4_000
"""Characters in one expression."""
MAX_NODES = 400
"""Syntax nodes in one expression (the shipped rules use at most about 40)."""
MAX_DEPTH = 40
"""Levels of nesting in one expression (the shipped rules use at most about 8)."""
MAX_STRING = 200
"""Characters in one string constant."""
MAX_NUMBER = 10**15
"""Magnitude of one numeric constant (yen amounts and seconds are far below)."""


@dataclass
class Context:
    """What an expression sees while it is evaluated, and what it looked at."""

    event: RiskEvent
    store: FeatureStore
    models: dict[str, Model]
    keys: dict[str, str]
    seen: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def for_event(
        cls, event: RiskEvent, store: FeatureStore, models: dict[str, Model] | None = None
    ) -> Context:
        return cls(event=event, store=store, models=models or {}, keys=keys_of(event))


Compiled = Callable[[Context], Any]

_WINDOW = re.compile(r"^(\d+)(s|m|h|d)$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_window(text: str) -> timedelta:
    """``"15m"`` → 15 minutes."""
    match = _WINDOW.match(text)
    if not match:
        raise ExpressionError(f"not a window: {text!r} (use e.g. '90s', '15m', '24h', '30d')")
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


def _matches(
    event: RiskEvent, type_: str | None, outcome: str | None, outcome_not: str | None
) -> bool:
    return (
        (type_ is None or event.type.value == type_)
        and (outcome is None or event.outcome == outcome)
        and (outcome_not is None or event.outcome != outcome_not)
    )


def _events(
    ctx: Context,
    key: str | None,
    window: timedelta,
    type_: str | None,
    outcome: str | None,
    outcome_not: str | None,
) -> Iterator[RiskEvent]:
    if key is None:
        return iter(())
    since = ctx.event.at - window
    return (e for e in ctx.store.window(key, since) if _matches(e, type_, outcome, outcome_not))


def _count(
    ctx: Context,
    key: str | None,
    window: str,
    type: str | None = None,
    outcome: str | None = None,
    outcome_not: str | None = None,
) -> int:
    return sum(1 for _ in _events(ctx, key, parse_window(window), type, outcome, outcome_not))


def _total(
    ctx: Context,
    key: str | None,
    window: str,
    type: str | None = None,
    outcome: str | None = None,
    outcome_not: str | None = None,
) -> int:
    return sum(
        e.amount for e in _events(ctx, key, parse_window(window), type, outcome, outcome_not)
    )


def _distinct(
    ctx: Context,
    key: str | None,
    field_name: str,
    window: str,
    type: str | None = None,
    outcome: str | None = None,
    outcome_not: str | None = None,
) -> int:
    values = {
        e.value_of(field_name)
        for e in _events(ctx, key, parse_window(window), type, outcome, outcome_not)
    }
    values.discard("")
    values.discard(None)
    return len(values)


def _others(
    ctx: Context,
    key: str | None,
    field_name: str,
    window: str,
    type: str | None = None,
    outcome: str | None = None,
    outcome_not: str | None = None,
) -> int:
    values = {
        e.value_of(field_name)
        for e in _events(ctx, key, parse_window(window), type, outcome, outcome_not)
    }
    values -= {"", None, ctx.event.value_of(field_name)}
    return len(values)


def _age(ctx: Context, key: str | None) -> float | None:
    first = ctx.store.first_seen(key) if key else None
    return None if first is None else (ctx.event.at - first).total_seconds()


def _since(ctx: Context, key: str | None, type: str, outcome: str | None = None) -> float | None:
    for event in _events(ctx, key, timedelta(days=36500), type, outcome, None):
        return (ctx.event.at - event.at).total_seconds()
    return None


def _first(ctx: Context, key: str | None, field_name: str, type: str) -> Any:
    found = None
    for event in _events(ctx, key, timedelta(days=36500), type, None, None):
        found = event  # newest first: the last one seen is the oldest
    return None if found is None else found.value_of(field_name)


def _model(ctx: Context, name: str) -> float:
    try:
        return float(ctx.models[name](ctx.event))
    except KeyError:
        raise ExpressionError(f"no model named {name!r} is registered") from None


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "count": _count,
    "total": _total,
    "distinct": _distinct,
    "others": _others,
    "age": _age,
    "since": _since,
    "first": _first,
    "model": _model,
}
PURE: dict[str, Callable[[float], float]] = {
    "minutes": lambda n: n * 60,
    "hours": lambda n: n * 3600,
    "days": lambda n: n * 86400,
}
_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}
_NUMBERS = (int, float)
_COMPARE: dict[type, Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
}


def compile_expression(source: str) -> Compiled:
    """Parse and compile ``source``; raises :class:`ExpressionError` naming the problem."""
    return _compile(parse_expression(source).body)


def parse_expression(source: str) -> ast.Expression:
    """Parse ``source`` and check it against the size limits (not yet the whitelist)."""
    source = source.strip()
    if len(source) > MAX_SOURCE:
        raise ExpressionError(f"the expression is longer than {MAX_SOURCE} characters")
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(
            f"syntax error at column {exc.offset}: {exc.msg}", line=exc.lineno or 1
        ) from None
    except (RecursionError, MemoryError):  # the parser's own stack, before any node exists
        raise ExpressionError(
            f"the expression is nested more than {MAX_DEPTH} levels deep"
        ) from None
    _check_size(tree)
    return tree


def _check_size(tree: ast.Expression) -> None:
    """Depth, node count and constant sizes, walked without recursion."""
    nodes = 0
    stack: list[tuple[ast.AST, int]] = [(tree.body, 1)]
    while stack:
        node, depth = stack.pop()
        nodes += 1
        if nodes > MAX_NODES:
            raise _refuse(node, f"an expression of more than {MAX_NODES} parts")
        if depth > MAX_DEPTH:
            raise ExpressionError(
                f"the expression is nested more than {MAX_DEPTH} levels deep (column "
                f"{getattr(node, 'col_offset', 0) + 1})",
                line=getattr(node, "lineno", 1),
            )
        if isinstance(node, ast.Constant):
            _check_constant(node)
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))


def _check_constant(node: ast.Constant) -> None:
    value = node.value
    if isinstance(value, str) and len(value) > MAX_STRING:
        raise _refuse(node, f"a string longer than {MAX_STRING} characters")
    if (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and (abs(value) > MAX_NUMBER)
    ):
        raise _refuse(node, f"a number larger than {MAX_NUMBER:,}")


def _refuse(node: ast.AST, what: str) -> ExpressionError:
    column = getattr(node, "col_offset", 0) + 1
    return ExpressionError(
        f"{what} is not allowed (column {column})", line=getattr(node, "lineno", 1)
    )


def _compile(node: ast.AST) -> Compiled:
    handler = _HANDLERS.get(type(node))
    if handler is None:
        raise _refuse(node, type(node).__name__)
    return handler(node)


def _constant(node: ast.AST) -> Compiled:
    assert isinstance(node, ast.Constant)
    value = node.value
    if not isinstance(value, (int, float, str, bool, type(None))):
        raise _refuse(node, f"a constant of type {type(value).__name__}")
    return lambda _ctx: value


def _name(node: ast.AST) -> Compiled:
    assert isinstance(node, ast.Name)
    name = node.id
    if name in DIMENSIONS:
        return lambda ctx: ctx.keys.get(name)
    if name in ("true", "false"):
        return lambda _ctx: name == "true"
    raise _refuse(node, f"the name {name!r}")


def _attribute(node: ast.AST) -> Compiled:
    assert isinstance(node, ast.Attribute)
    if not (isinstance(node.value, ast.Name) and node.value.id == "event"):
        raise _refuse(node, "attribute access other than event.<field>")
    if node.attr.startswith("_"):
        raise _refuse(node, f"the field {node.attr!r}")
    attr = node.attr
    return lambda ctx: ctx.event.value_of(attr)


def _sequence(node: ast.AST) -> Compiled:
    assert isinstance(node, (ast.List, ast.Tuple))
    items = [_compile(item) for item in node.elts]
    return lambda ctx: tuple(item(ctx) for item in items)


def _bool_op(node: ast.AST) -> Compiled:
    assert isinstance(node, ast.BoolOp)
    parts = [_compile(value) for value in node.values]
    if isinstance(node.op, ast.And):
        return lambda ctx: all(part(ctx) for part in parts)
    return lambda ctx: any(part(ctx) for part in parts)


def _unary(node: ast.AST) -> Compiled:
    assert isinstance(node, ast.UnaryOp)
    operand = _compile(node.operand)
    if isinstance(node.op, ast.Not):
        return lambda ctx: not operand(ctx)
    if isinstance(node.op, ast.USub):
        return lambda ctx: -operand(ctx)
    raise _refuse(node, type(node.op).__name__)


def _binary(node: ast.AST) -> Compiled:
    assert isinstance(node, ast.BinOp)
    function = _BINARY.get(type(node.op))
    if function is None:
        raise _refuse(node, f"the operator {type(node.op).__name__}")
    for operand in (node.left, node.right):
        if isinstance(operand, (ast.List, ast.Tuple)) or (
            isinstance(operand, ast.Constant) and isinstance(operand.value, str)
        ):
            raise _refuse(operand, "arithmetic on a string or a list")
    left, right = _compile(node.left), _compile(node.right)

    def apply(ctx: Context) -> Any:
        a, b = left(ctx), right(ctx)
        if not (isinstance(a, _NUMBERS) and isinstance(b, _NUMBERS)) or (
            function is operator.truediv and b == 0
        ):
            return None  # unknown, or not numbers: "x" * 10**9 must not run
        return function(a, b)

    return apply


def _compare(node: ast.AST) -> Compiled:
    assert isinstance(node, ast.Compare)
    operands = [_compile(node.left)] + [_compile(c) for c in node.comparators]
    functions = []
    for op in node.ops:
        function = _COMPARE.get(type(op))
        if function is None:
            raise _refuse(node, f"the comparison {type(op).__name__}")
        functions.append(function)

    def apply(ctx: Context) -> bool:
        values = [operand(ctx) for operand in operands]
        if any(v is None for v in values):
            return False
        try:
            return all(f(values[i], values[i + 1]) for i, f in enumerate(functions))
        except TypeError:
            return False

    return apply


def _call(node: ast.AST) -> Compiled:
    assert isinstance(node, ast.Call)
    if not isinstance(node.func, ast.Name):
        raise _refuse(node, "calling anything but a rule function")
    name = node.func.id
    args = [_compile(arg) for arg in node.args]
    kwargs = {_keyword(k): _compile(k.value) for k in node.keywords}
    if name in PURE:
        pure = PURE[name]
        if len(args) != 1 or kwargs:
            raise _refuse(node, f"{name}() takes one number")
        return lambda ctx: pure(args[0](ctx))
    function = FUNCTIONS.get(name)
    if function is None:
        raise _refuse(node, f"the function {name!r}")
    text = ast.unparse(node)

    def apply(ctx: Context) -> Any:
        value = function(ctx, *(a(ctx) for a in args), **{k: v(ctx) for k, v in kwargs.items()})
        ctx.seen[text] = value
        return value

    return apply


def _keyword(keyword: ast.keyword) -> str:
    if keyword.arg is None or keyword.arg not in ("type", "outcome", "outcome_not"):
        raise _refuse(keyword, f"the keyword {keyword.arg!r}")
    return keyword.arg


_HANDLERS: dict[type, Callable[[ast.AST], Compiled]] = {
    ast.Constant: _constant,
    ast.Name: _name,
    ast.Attribute: _attribute,
    ast.List: _sequence,
    ast.Tuple: _sequence,
    ast.BoolOp: _bool_op,
    ast.UnaryOp: _unary,
    ast.BinOp: _binary,
    ast.Compare: _compare,
    ast.Call: _call,
}


def validate_windows(source: str) -> None:
    """Check literal window strings early (a typo should fail on load, not at 3 a.m.)."""
    tree = parse_expression(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id in ("count", "total") and len(node.args) >= 2:
                _literal_window(node.args[1])
            if node.func.id in ("distinct", "others") and len(node.args) >= 3:
                _literal_window(node.args[2])


def _literal_window(node: ast.AST) -> None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        try:
            parse_window(node.value)
        except ExpressionError as exc:
            raise ExpressionError(exc.message, line=node.lineno) from None
