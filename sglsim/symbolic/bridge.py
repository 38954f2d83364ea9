"""The numeric bridge: compile expressions once, evaluate them over arrays, differentiate, export.

`compile_expression(expr, symbols, bind_values=values)` lambdifies an
expression once, with common-subexpression elimination, into one NumPy
function whose bound symbols are constants. Calling it with arrays
evaluates every configuration at once (broadcasting). `sensitivities`
returns partial derivatives and elasticities at a point. Exports: plain
text, LaTeX, JSON (SymPy `srepr`, which keeps each symbol's assumptions)
and Python source.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

import numpy as np
import sympy
from sympy import Expr, Symbol

from ..errors import ConfigError


def _sympify_values(values: Mapping[Symbol, Any]) -> dict[Symbol, Expr]:
    return {sym: sympy.sympify(value) for sym, value in values.items()}


def bind(expr: Expr, values: Mapping[Symbol, Any]) -> Expr:
    """Substitute numbers for symbols in one pass over the tree (no `subs` loop).

    Unlike `xreplace`, a Max or Min that still has symbolic arguments is
    rebuilt unevaluated: SymPy's pairwise simplification of Max/Min
    arguments takes seconds on step-law terms and changes nothing numerically.
    """
    rule = _sympify_values(values)
    memo: dict[Any, Any] = {}

    def rebuild(node: Any) -> Any:
        if node in rule:
            return rule[node]
        if not node.args:
            return node
        done = memo.get(node)
        if done is not None:
            return done
        args = tuple(rebuild(a) for a in node.args)
        if all(new is old for new, old in zip(args, node.args)):
            out = node
        elif isinstance(node, (sympy.Max, sympy.Min)) and not all(a.is_number for a in args):
            out = node.func(*args, evaluate=False)
        elif isinstance(node, sympy.Sum):
            out = sympy.Basic.__new__(sympy.Sum, *args)
        else:
            out = node.func(*args)
        memo[node] = out
        return out

    return rebuild(sympy.sympify(expr))


def closed_form(expr: Expr) -> Expr:
    """Replace every unevaluated `Sum` by its closed form where SymPy finds one."""
    return expr.replace(lambda e: isinstance(e, sympy.Sum), lambda e: e.doit())


@dataclass
class CompiledExpression:
    """A NumPy function of `symbols` (call with keyword arrays named like the symbols)."""

    expr: Expr
    symbols: list[Symbol]
    function: Callable[..., Any]

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.symbols]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if args and kwargs:
            raise TypeError("pass the values either positionally or by symbol name, not both")
        if kwargs:
            missing = [n for n in self.names if n not in kwargs]
            unknown = sorted(set(kwargs) - set(self.names))
            if missing or unknown:
                raise ConfigError(f"invalid arguments for compiled expression: missing {missing}, "
                                  f"unknown {unknown}; expected {self.names}")
            args = tuple(kwargs[n] for n in self.names)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return self.function(*args)

    def evaluate(self, point: Mapping[Symbol | str, Any]) -> Any:
        """Evaluate at a mapping from symbols (or their names) to numbers or arrays."""
        by_name = {(k.name if isinstance(k, Symbol) else k): v for k, v in point.items()}
        missing = [n for n in self.names if n not in by_name]
        if missing:
            raise ConfigError(f"invalid point for compiled expression: no value for {missing}")
        return self(*[by_name[n] for n in self.names])


@functools.lru_cache(maxsize=256)
def _lambdify(expr: Expr, args: tuple[Symbol, ...]) -> Callable[..., Any]:
    # A pure memo: the same expression and arguments always give the same function,
    # and lambdifying a steady-state metric takes about a second.
    return sympy.lambdify(args, expr, modules="numpy", cse=True)


def compile_expression(expr: Expr, symbols: Iterable[Symbol] | None = None,
                       bind_values: Mapping[Symbol, Any] | None = None) -> CompiledExpression:
    """Lambdify `expr` once (NumPy, with common subexpressions) over `symbols`.

    `bind_values` become constant arguments of the NumPy function (IEEE
    arithmetic: a division by zero gives inf, as a metric past capacity
    should). Every other free symbol must be in `symbols` (default: all of
    them, sorted by name).
    """
    expr = closed_form(sympy.sympify(expr))
    bound = dict(bind_values or {})
    free = sorted(expr.free_symbols, key=lambda s: s.name)
    symbols = list(symbols) if symbols is not None else [s for s in free if s not in bound]
    unbound = [s.name for s in free if s not in symbols and s not in bound]
    if unbound:
        raise ConfigError(f"invalid expression to compile: symbols {unbound} are neither bound nor arguments")
    constant_symbols = tuple(s for s in free if s not in symbols)
    constants = tuple(float(bound[s]) for s in constant_symbols)
    function = _lambdify(expr, (*symbols, *constant_symbols))
    if constants:
        raw = function

        def function(*args: Any) -> Any:
            return raw(*args, *constants)

    return CompiledExpression(expr, symbols, function)


def derivative(expr: Expr, sym: Symbol) -> Expr:
    """Partial derivative of an expression; each ceiling is held constant (zero derivative almost everywhere)."""
    expr = closed_form(expr)
    constants = {c: sympy.Dummy(f"ceil{i}") for i, c in enumerate(expr.atoms(sympy.ceiling))}
    back = {d: c for c, d in constants.items()}
    return sympy.diff(expr.xreplace(constants), sym).xreplace(back)


def sensitivities(expr: Expr, point: Mapping[Symbol, Any], symbols: Iterable[Symbol] | None = None,
                  top: int | None = None, method: str = "symbolic",
                  relative_step: float = 1e-6) -> list[tuple[Symbol, float, float]]:
    """(symbol, df/dx, elasticity x/f df/dx) at `point`, sorted by |elasticity|, largest first.

    Method "symbolic" differentiates the expression, holding ceilings
    constant because their derivative is zero almost everywhere. Method
    "numeric" compiles once and takes central differences of relative size
    `relative_step` for all symbols in one vectorised call, which suits
    expressions of thousands of operations. Every free symbol of `expr`
    needs a value in `point`.
    """
    expr = closed_form(sympy.sympify(expr))
    free = sorted(expr.free_symbols, key=lambda s: s.name)
    missing = [s.name for s in free if s not in point]
    if missing:
        raise ConfigError(f"invalid point for sensitivities: no value for {missing}")
    # Hold every ceiling at its value at the point: a step of the ceiling is not a slope,
    # so a symbol that only appears inside ceilings gets derivative 0.
    expr = bind(expr, {c: bind(c, point) for c in expr.atoms(sympy.ceiling)})
    selected = [s for s in (symbols if symbols is not None else free)
              if s in free and math.isfinite(float(point[s]))]
    base = np.array([float(point[s]) for s in free])
    compiled = compile_expression(expr, free)
    value = float(compiled(*base))
    if method == "numeric":
        derivatives = _central_differences(compiled, free, base, selected, relative_step)
    elif method == "symbolic":
        derivatives = [float(compile_expression(sympy.diff(expr, sym), free)(*base)) for sym in selected]
    else:
        from ..errors import unknown

        raise unknown("sensitivity method", method, ("numeric", "symbolic"))
    rows = []
    for sym, d in zip(selected, derivatives):
        x = float(point[sym])
        elasticity = d * x / value if value and math.isfinite(value) and math.isfinite(d) else 0.0
        rows.append((sym, d, elasticity))
    rows.sort(key=lambda r: -abs(r[2]))
    return rows[:top] if top is not None else rows


def _central_differences(compiled: CompiledExpression, free: list[Symbol], base: np.ndarray,
                         selected: list[Symbol], relative_step: float) -> list[float]:
    index = {s: i for i, s in enumerate(free)}
    rows = np.repeat(base[None, :], 2 * len(selected), axis=0)
    steps = []
    for k, sym in enumerate(selected):
        i = index[sym]
        h = relative_step * abs(base[i]) if base[i] else relative_step
        rows[2 * k, i] += h
        rows[2 * k + 1, i] -= h
        steps.append(h)
    values = np.broadcast_to(np.asarray(compiled(*rows.T), dtype=float), (len(rows),))
    return [float((values[2 * k] - values[2 * k + 1]) / (2 * h)) for k, h in enumerate(steps)]


# ----- exports -----

def to_text(expr: Expr) -> str:
    return sympy.sstr(expr)


def to_readable(expr: Expr, name: str = "expr", suffix: str = "") -> str:
    """Text of `expr` with shared subexpressions named x0, x1, ... one per line, then `name = ...`.

    The full expressions repeat terms such as the effective batch size many
    times; naming them once makes a metric of tens of thousands of characters
    readable in a few thousand. `suffix` is appended to the last line (e.g. " > 0").
    """
    replacements, reduced = sympy.cse(expr, symbols=sympy.numbered_symbols("x"))
    lines = [f"{sub} = {sympy.sstr(sub_expr)}" for sub, sub_expr in replacements]
    lines.append(f"{name} = {sympy.sstr(reduced[0])}{suffix}")
    return "\n".join(lines)


def to_latex(expr: Expr) -> str:
    return sympy.latex(expr)


def to_json(expr: Expr, name: str = "expr") -> str:
    """JSON with the expression's `srepr` (symbols keep their assumptions) and its free symbols."""
    free = sorted(expr.free_symbols, key=lambda s: s.name)
    return json.dumps({"name": name, "srepr": sympy.srepr(expr), "symbols": [s.name for s in free]})


def from_json(text: str) -> Expr:
    """Rebuild an expression written by `to_json`."""
    data = json.loads(text)
    namespace: dict[str, Any] = {}
    exec("from sympy import *", namespace)  # noqa: S102 - srepr output is SymPy constructor calls
    return eval(data["srepr"], namespace)  # noqa: S307


def to_python(expr: Expr, name: str = "metric", symbols: Iterable[Symbol] | None = None) -> str:
    """Python source of a NumPy function `name(<symbols>)` computing `expr`, with shared subexpressions."""
    from sympy.printing.numpy import NumPyPrinter

    expr = closed_form(expr)
    args = list(symbols) if symbols is not None else sorted(expr.free_symbols, key=lambda s: s.name)
    printer = NumPyPrinter({"fully_qualified_modules": True, "inline": True, "allow_unknown_functions": False})
    replacements, reduced = sympy.cse(expr)
    body = [f"    {sub} = {printer.doprint(sub_expr)}" for sub, sub_expr in replacements]
    body.append(f"    return {printer.doprint(reduced[0])}")
    modules = sorted({"numpy", *printer.module_imports})
    header = [f"import {module}" for module in modules]
    signature = f"def {name}({', '.join(s.name for s in args)}):"
    return "\n".join([*header, "", "", signature, *body]) + "\n"
