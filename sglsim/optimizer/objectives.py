"""Objectives and constraints: a name plus a vectorised function of the decision arrays.

An objective or constraint is either a SymPy expression or a Python
callable. An expression is compiled once with `lambdify`, after the bound
model, hardware and workload values are substituted. A callable takes a
mapping from variable name to NumPy array and returns an array. Constraints follow the convention
of `ConstraintBuilder`: the expression is a *slack*, written `expr > 0`.
The search counts a point exactly on the boundary (slack 0) as feasible, so
that an integer limit such as `16 - TP x (N_p + N_d)` admits all 16 GPUs. A
SymPy relation (`lhs > rhs`, `lhs < rhs`, ...) is turned into that slack.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ..errors import ConfigError

ArrayFn = Callable[[Mapping[str, np.ndarray]], Any]
"""A vectorised metric: decision arrays by variable name -> one value per configuration."""


class ObjectiveDirection(enum.Enum):
    """Whether an objective is to be made as large or as small as possible."""

    MAXIMIZE = "maximize"
    MINIMIZE = "minimize"

    @property
    def sign(self) -> float:
        """+1 for MAXIMIZE, -1 for MINIMIZE: `sign x value` is always to be maximised."""
        return 1.0 if self is ObjectiveDirection.MAXIMIZE else -1.0


@dataclass
class ObjectiveSpec:
    """One objective: a name, a SymPy expression or vectorised callable, and a direction.

    `expr` None (or `ObjectiveSpec(name, direction)`) means the metric called
    `name` of the `metrics` given to `MultiObjectiveOptimizer`.
    """

    name: str
    expr: Any = None
    direction: ObjectiveDirection = ObjectiveDirection.MAXIMIZE
    description: str = ""

    def __post_init__(self) -> None:
        if isinstance(self.expr, ObjectiveDirection):
            self.expr, self.direction = None, self.expr
        if isinstance(self.direction, str):
            try:
                self.direction = ObjectiveDirection(self.direction.lower())
            except ValueError:
                raise ConfigError(f"invalid direction {self.direction!r} of objective {self.name}: "
                                  "expected maximize or minimize") from None


@dataclass
class ConstraintSpec:
    """One constraint, satisfied where `expr` >= 0 (a slack: how far inside the limit a point is)."""

    name: str
    expr: Any
    description: str = ""


@dataclass
class CompiledMetric:
    """A metric compiled to a NumPy function of the decision arrays."""

    name: str
    function: ArrayFn
    variables: tuple[str, ...] = field(default=())
    """Decision variables the metric depends on (empty for callables, which receive them all)."""

    def __call__(self, values: Mapping[str, np.ndarray], n: int) -> np.ndarray:
        """Evaluate at `n` configurations; the result is a float array of length n."""
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            out = self.function(values)
        out = np.asarray(out, dtype=float)
        if out.ndim == 0:
            return np.full(n, float(out))
        if out.shape != (n,):
            raise RuntimeError(f"metric {self.name} returned shape {out.shape} for {n} configurations")
        return out


def as_constraint(item: Any) -> ConstraintSpec:
    """Accept a `ConstraintSpec`, anything with `name` and `expr` (e.g. `ConstraintBuilder` output) or a (name, expr) pair."""
    if isinstance(item, ConstraintSpec):
        return item
    if isinstance(item, tuple) and len(item) == 2:
        return ConstraintSpec(str(item[0]), item[1])
    if hasattr(item, "name") and hasattr(item, "expr"):
        return ConstraintSpec(str(item.name), item.expr, str(getattr(item, "description", "")))
    raise ConfigError(f"invalid constraint {item!r}: expected an object with name and expr, or a (name, expr) pair")


def compile_metric(name: str, expr: Any, variables: Sequence[str], bind: Mapping[Any, Any] | None = None,
                   slack: bool = False) -> CompiledMetric:
    """Compile an objective or constraint over the named decision variables.

    Callables pass through. SymPy expressions have `bind` substituted in one
    pass, must then depend on decision variables only (by symbol name), and
    are lambdified once with common-subexpression elimination. With
    `slack=True` a relation `a > b` becomes `a - b` (and `a < b` becomes `b - a`).
    """
    if callable(expr) and not _is_sympy(expr):
        return CompiledMetric(name, expr)
    import sympy

    try:
        expr = sympy.sympify(expr)
    except (sympy.SympifyError, TypeError):
        raise ConfigError(f"invalid expression of {name}: {expr!r} is neither a SymPy expression "
                          "nor a callable") from None
    if slack:
        expr = _relation_to_slack(name, expr)
    elif isinstance(expr, sympy.core.relational.Relational):
        raise ConfigError(f"invalid objective {name}: {expr} is a relation; give the quantity to optimise")
    bound = {(sympy.Symbol(k) if isinstance(k, str) else sympy.sympify(k)): v for k, v in (bind or {}).items()}
    free = sorted(expr.free_symbols, key=lambda s: s.name)
    unknown = [s.name for s in free if s not in bound and s.name not in variables]
    if unknown:
        raise ConfigError(f"invalid expression of {name}: symbols {unknown} are neither decision variables "
                          f"({', '.join(variables)}) nor bound to values")
    # Bound symbols become constant arguments of the compiled function: substituting them
    # into the tree makes SymPy re-simplify every Max/Min, which takes tens of seconds.
    from ..symbolic.bridge import compile_expression

    arguments = [s for s in free if s.name in variables and s not in bound]
    compiled = compile_expression(expr, arguments, bind_values={s: bound[s] for s in free if s in bound})
    names = tuple(s.name for s in arguments)
    return CompiledMetric(name, lambda values: compiled.function(*(values[n] for n in names)), names)


def _is_sympy(expr: Any) -> bool:
    return type(expr).__module__.startswith("sympy")


def _relation_to_slack(name: str, expr: Any) -> Any:
    import sympy

    if not isinstance(expr, sympy.core.relational.Relational):
        return expr
    if isinstance(expr, (sympy.StrictGreaterThan, sympy.GreaterThan)):
        return expr.lhs - expr.rhs
    if isinstance(expr, (sympy.StrictLessThan, sympy.LessThan)):
        return expr.rhs - expr.lhs
    raise ConfigError(f"invalid constraint {name}: {expr} is not an inequality")


def compile_metrics(exprs: Sequence[Any], arguments: Sequence[str], bind: Mapping[Any, Any] | None = None
                    ) -> Callable[[Mapping[str, Any]], tuple]:
    """Compile several SymPy expressions into one NumPy function sharing their common subexpressions.

    The function takes a mapping from argument name to number or array and
    returns one result per expression. Bound symbols become constant
    arguments, because substituting them into the tree is slow on large
    Max/Min nests. Every other free symbol must be named in `arguments`.
    """
    import sympy

    tuple_expr = sympy.Tuple(*[sympy.sympify(e) for e in exprs])
    free = {s.name: s for s in tuple_expr.free_symbols}
    bound = {(sympy.Symbol(k) if isinstance(k, str) else k): float(v) for k, v in (bind or {}).items()}
    args = [free.get(name, sympy.Symbol(name)) for name in arguments]
    unknown = sorted(s.name for s in tuple_expr.free_symbols if s not in bound and s.name not in arguments)
    if unknown:
        raise ConfigError(f"invalid metrics to compile: symbols {unknown} are neither arguments "
                          f"({', '.join(arguments)}) nor bound to values")
    constants = [s for s in tuple_expr.free_symbols if s in bound and s.name not in arguments]
    try:
        from ..symbolic.bridge import compile_expression
    except ImportError:
        compile_expression = None
    if compile_expression is not None:
        compiled = compile_expression(tuple_expr, args, bind_values={s: bound[s] for s in constants})
        raw = compiled.function
    else:
        expr = tuple_expr.replace(lambda e: isinstance(e, sympy.Sum), lambda e: e.doit())
        function = sympy.lambdify([*args, *constants], expr, modules="numpy", cse=True)
        values = [bound[s] for s in constants]
        raw = lambda *a: function(*a, *values)  # noqa: E731
    names = list(arguments)
    return lambda given: tuple(raw(*(given[n] for n in names)))
