"""SymPy functions the metrics need beyond SymPy's own, with their NumPy printing."""

from __future__ import annotations

from typing import Any

import sympy


class UnitStep(sympy.Function):
    """1 where the argument is >= 0, else 0 (0 at -oo and 1 at +oo).

    Unlike `sympy.Heaviside`, it lambdifies to `numpy.heaviside(x, 1)`
    directly instead of through a Piecewise whose condition SymPy would
    simplify, and its derivative is taken as 0 (it is, almost everywhere).
    """

    nargs = 1

    @classmethod
    def eval(cls, x: Any) -> Any:
        if x.is_extended_nonnegative:
            return sympy.Integer(1)
        if x.is_extended_negative:
            return sympy.Integer(0)
        return None

    def fdiff(self, argindex: int = 1) -> Any:
        return sympy.Integer(0)

    def _numpycode(self, printer: Any) -> str:
        return f"{printer._module_format('numpy.heaviside')}({printer._print(self.args[0])}, 1.0)"
