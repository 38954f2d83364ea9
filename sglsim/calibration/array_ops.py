"""Ops over NumPy arrays, so that one call of a cost law predicts many kernels at once.

The laws branch only through `ops` (see `sglsim.costs.ops`), so replacing
`max`/`min`/`where` by their element-wise NumPy versions evaluates a law on
arrays of shapes with the same formulas the simulator runs on floats.
"""

from __future__ import annotations

from typing import Any

import numpy as np


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
