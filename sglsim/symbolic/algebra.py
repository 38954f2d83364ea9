"""The SymPy algebra of the steady-state model: unevaluated Max/Min, branches as unit steps, queueing.

The steady-state model evaluates the step law on symbolic shapes whose
batch sizes contain other step times. These ops keep such expressions
cheap to build and safe to bind (see `SteadyOps`).
"""

from __future__ import annotations

from typing import Any

import sympy
from sympy import Expr

from ..costs.ops import SymbolicOps
from .functions import UnitStep


def _max(*args: Any) -> Expr:
    return sympy.Max(*args, evaluate=False)


def _min(*args: Any) -> Expr:
    return sympy.Min(*args, evaluate=False)


def mgc_wait(arrival: Expr, service: Expr, servers: Expr, service_scv: Expr) -> Expr:
    """Return the mean wait in an M/G/c queue by Sakasegawa's approximation.

    That approximation is the multi-server form of Kingman's formula:
    W = rho^(sqrt(2 (c + 1)) - 1) / (c (1 - rho)) x (1 + scv) / 2 x S with
    rho = lambda S / c and Poisson arrivals. It is infinite at rho >= 1
    (division by Max(1 - rho, 0)).
    """
    rho = arrival * service / servers
    return (rho ** (sympy.sqrt(2 * (servers + 1)) - 1) / (servers * _max(1 - rho, 0))
            * (1 + service_scv) / 2 * service)


class SteadyOps(SymbolicOps):
    """SymPy ops for the steady-state model: unevaluated Max/Min, and branches as unit steps.

    Constructing Max(a, b) normally compares the arguments symbolically,
    which takes seconds on step-law terms. The unevaluated form is the same
    function and collapses to a number once values are bound. A law's
    two-way branch where(x <= y, a, b) becomes b + (a - b) UnitStep(y - x)
    instead of a Piecewise, because the model feeds step times back into
    batch sizes that later branches compare. SymPy folds every Piecewise
    that appears inside another's condition, and that does not finish on
    these expressions. Both branches of every law's `where` are finite.
    """

    def max(self, a: Any, b: Any) -> Any:
        return _max(a, b)

    def min(self, a: Any, b: Any) -> Any:
        return _min(a, b)

    def where(self, cond: Any, if_true: Any, if_false: Any) -> Any:
        if cond is True or cond is sympy.true:
            return if_true
        if cond is False or cond is sympy.false:
            return if_false
        return if_false + (if_true - if_false) * _indicator(cond)


def _indicator(cond: Any) -> Expr:
    """1 where a relational holds, else 0, as unit steps (ties follow the relational)."""
    lhs, rhs = cond.lhs, cond.rhs
    if isinstance(cond, sympy.LessThan):
        return UnitStep(rhs - lhs)
    if isinstance(cond, sympy.GreaterThan):
        return UnitStep(lhs - rhs)
    if isinstance(cond, sympy.StrictGreaterThan):
        return 1 - UnitStep(rhs - lhs)
    if isinstance(cond, sympy.StrictLessThan):
        return 1 - UnitStep(lhs - rhs)
    raise RuntimeError(f"law branch on an unsupported condition {cond}")
