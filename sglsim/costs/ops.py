"""The tiny ops layer that lets one cost law run in two algebras.

Every latency law is plain Python over an `ops` object with `max`, `min`,
`where` (a two-way branch), `ceil`, `log` and comparisons. `FLOAT_OPS` evaluates on
Python floats (the simulator's fast path); `symbolic_ops()` returns the SymPy
version (`Max`, `Min`, `Piecewise`, `ceiling`), imported lazily so that the
simulator never pays SymPy's import time. `RecordingOps` evaluates on floats
and also records which argument won each `max`/`min`/`where`, which is how the
symbolic trace groups simulated steps by the roofline side that binds.
`ARRAY_OPS` evaluates element-wise on NumPy arrays, so one call of a law
predicts many shapes at once (the calibration fits use it).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


class FloatOps:
    """Ops over Python floats."""

    symbolic = False

    @staticmethod
    def max(a: float, b: float) -> float:
        return a if a >= b else b

    @staticmethod
    def min(a: float, b: float) -> float:
        return a if a <= b else b

    @staticmethod
    def where(cond: bool, if_true: float, if_false: float) -> float:
        return if_true if cond else if_false

    @staticmethod
    def ceil(x: float) -> float:
        return float(math.ceil(x))

    @staticmethod
    def log(x: float) -> float:
        return math.log(x)

    @staticmethod
    def gt(a: float, b: float) -> bool:
        return a > b

    @staticmethod
    def le(a: float, b: float) -> bool:
        return a <= b


FLOAT_OPS = FloatOps()


class RecordingOps(FloatOps):
    """Float ops that log the index of the winning branch of each choice.

    `choices` lists 0 or 1 per `max`/`min`/`where` call in evaluation order:
    for `max`/`min`, 0 means the first argument won; for `where`, 0 means the
    condition held. The tuple identifies which side of every roofline binds.
    """

    def __init__(self) -> None:
        self.choices: list[int] = []

    def max(self, a: float, b: float) -> float:  # type: ignore[override]
        self.choices.append(0 if a >= b else 1)
        return a if a >= b else b

    def min(self, a: float, b: float) -> float:  # type: ignore[override]
        self.choices.append(0 if a <= b else 1)
        return a if a <= b else b

    def where(self, cond: bool, if_true: float, if_false: float) -> float:  # type: ignore[override]
        self.choices.append(0 if cond else 1)
        return if_true if cond else if_false


class ChosenOps:
    """Symbolic ops that follow a recorded branch sequence instead of branching.

    Replaying a law with the `choices` of a `RecordingOps` run gives the single
    algebraic term that was active, e.g. `flops / (peak * eff)` where the step
    was compute-bound. The result is exact wherever no branch changes side.
    """

    symbolic = True

    def __init__(self, choices: tuple[int, ...]) -> None:
        self._choices = choices
        self._next = 0

    def _take(self) -> int:
        if self._next >= len(self._choices):
            raise RuntimeError("branch replay ran past the recorded choices")
        choice = self._choices[self._next]
        self._next += 1
        return choice

    def max(self, a: Any, b: Any) -> Any:
        return a if self._take() == 0 else b

    min = max

    def where(self, cond: Any, if_true: Any, if_false: Any) -> Any:
        return if_true if self._take() == 0 else if_false

    @staticmethod
    def ceil(x: Any) -> Any:
        import sympy

        return sympy.ceiling(x)

    @staticmethod
    def log(x: Any) -> Any:
        import sympy

        return sympy.log(x)

    @staticmethod
    def gt(a: Any, b: Any) -> Any:
        import sympy

        return sympy.Gt(a, b)

    @staticmethod
    def le(a: Any, b: Any) -> Any:
        import sympy

        return sympy.Le(a, b)


class ArrayOps:
    """Element-wise ops over NumPy arrays (or scalars, broadcast)."""

    symbolic = False

    @staticmethod
    def max(a: Any, b: Any) -> Any:
        return np.maximum(a, b)

    @staticmethod
    def min(a: Any, b: Any) -> Any:
        return np.minimum(a, b)

    @staticmethod
    def where(cond: Any, if_true: Any, if_false: Any) -> Any:
        return np.where(cond, if_true, if_false)

    @staticmethod
    def ceil(x: Any) -> Any:
        return np.ceil(x)

    @staticmethod
    def log(x: Any) -> Any:
        return np.log(x)

    @staticmethod
    def gt(a: Any, b: Any) -> Any:
        return np.greater(a, b)

    @staticmethod
    def le(a: Any, b: Any) -> Any:
        return np.less_equal(a, b)


ARRAY_OPS = ArrayOps()


class SymbolicOps:
    """Ops over SymPy expressions: Max, Min, Piecewise, ceiling."""

    symbolic = True

    def __init__(self) -> None:
        import sympy

        self._sp = sympy

    def max(self, a: Any, b: Any) -> Any:
        return self._sp.Max(a, b)

    def min(self, a: Any, b: Any) -> Any:
        return self._sp.Min(a, b)

    def where(self, cond: Any, if_true: Any, if_false: Any) -> Any:
        if cond is True or cond is self._sp.true:
            return if_true
        if cond is False or cond is self._sp.false:
            return if_false
        return self._sp.Piecewise((if_true, cond), (if_false, True))

    def ceil(self, x: Any) -> Any:
        return self._sp.ceiling(x)

    def log(self, x: Any) -> Any:
        return self._sp.log(x)

    def gt(self, a: Any, b: Any) -> Any:
        return self._sp.Gt(a, b)

    def le(self, a: Any, b: Any) -> Any:
        return self._sp.Le(a, b)


def symbolic_ops() -> SymbolicOps:
    """Return a SymPy ops object (SymPy is imported on first use)."""
    return SymbolicOps()
