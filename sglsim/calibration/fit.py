"""Least-squares fit of named efficiency constants to measured kernel latencies.

The fit minimises sum over tables of (1 / n_table) x sum over rows of
(log predicted - log measured)^2: relative errors, symmetric for over- and
under-prediction, with every table weighted equally however many rows it has.
Constants are searched in log space inside bounds (fractions of peak in
[0.01, 1], times in [10 ns, 1 ms]), so they stay positive and a floor of a
few microseconds moves as readily as an efficiency near one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
from scipy.optimize import least_squares

from ..costs.efficiency import Efficiency
from ..hardware.gpus import GPUSpec
from .kernels import KernelTable

FRACTION_BOUNDS = (0.01, 1.0)
"""Allowed range of a fraction of peak."""
TIME_BOUNDS_S = (1e-8, 1e-3)
"""Allowed range of a fixed time (names ending in `_s`), seconds."""
TOKEN_BOUNDS = (0.01, 1e5)
"""Allowed range of a token count (names ending in `_tokens`)."""


@dataclass(frozen=True)
class ErrorStats:
    """Absolute relative error |predicted / measured - 1| over the rows of one table."""

    name: str
    count: int
    median: float
    p90: float

    @classmethod
    def of(cls, name: str, predicted: np.ndarray, measured: np.ndarray) -> "ErrorStats":
        error = np.abs(np.asarray(predicted, float) / np.asarray(measured, float) - 1.0)
        return cls(name, int(error.size), float(np.median(error)), float(np.percentile(error, 90)))


@dataclass(frozen=True)
class FitResult:
    """Fitted constants, the efficiency they give, and per-table error before and after."""

    values: dict[str, float]
    efficiency: Efficiency
    before: list[ErrorStats]
    after: list[ErrorStats]
    converged: bool
    message: str


def default_bounds(name: str) -> tuple[float, float]:
    """Bounds of one constant, by the unit its name ends in: `_s`, `_tokens`, else a fraction of peak."""
    if name.endswith("_s"):
        return TIME_BOUNDS_S
    return TOKEN_BOUNDS if name.endswith("_tokens") else FRACTION_BOUNDS


def table_errors(tables: Sequence[KernelTable], gpu: GPUSpec, eff: Efficiency) -> list[ErrorStats]:
    """Error of the laws with constants `eff` on each table."""
    return [ErrorStats.of(t.name, t.predict_s(gpu, eff), t.latency_s) for t in tables]


def _log_bounds(names: Sequence[str], bounds: Mapping[str, tuple[float, float]]) -> tuple[np.ndarray, np.ndarray]:
    """Return the natural logs of the lower and upper bound of each constant."""
    lower, upper = [], []
    for name in names:
        lo, hi = bounds.get(name, default_bounds(name))
        if not 0 < lo < hi:
            raise ValueError(f"invalid bounds {name} ({lo}, {hi}): expected 0 < lower < upper")
        lower.append(np.log(lo))
        upper.append(np.log(hi))
    return np.array(lower), np.array(upper)


def fit_constants(tables: Sequence[KernelTable], gpu: GPUSpec, start: Efficiency, names: Sequence[str],
                  bounds: Mapping[str, tuple[float, float]] | None = None) -> FitResult:
    """Fit the constants `names` of `start` so the laws match the tables on `gpu`.

    Constants not in `names` keep their values from `start`; a start outside
    the bounds begins the search at the nearest bound. Raises ValueError for
    no tables, no names, an unknown constant, or bounds with lower >= upper.
    """
    if not tables:
        raise ValueError("invalid tables []: expected at least one kernel table")
    if not names:
        raise ValueError("invalid names []: expected at least one constant to fit")
    start.updated(**{n: 0.5 for n in names})  # raises ConfigError (a ValueError) for unknown names
    lower, upper = _log_bounds(names, bounds or {})
    x0 = np.clip(np.log(np.maximum([getattr(start, n) for n in names], np.exp(lower))),
                 lower + 1e-9, upper - 1e-9)
    log_measured = [np.log(t.latency_s) for t in tables]
    weights = [1.0 / np.sqrt(t.latency_s.size) for t in tables]

    def efficiency_at(x: np.ndarray) -> Efficiency:
        return start.updated(**{n: float(v) for n, v in zip(names, np.exp(x))})

    def residuals(x: np.ndarray) -> np.ndarray:
        eff = efficiency_at(x)
        parts = [w * (np.log(t.predict_s(gpu, eff)) - lm) for t, lm, w in zip(tables, log_measured, weights)]
        return np.concatenate(parts)

    solution = least_squares(residuals, x0, bounds=(lower, upper), diff_step=1e-4,
                             x_scale=1.0, max_nfev=400)
    fitted = efficiency_at(solution.x)
    values = {n: float(getattr(fitted, n)) for n in names}
    return FitResult(values, fitted, table_errors(tables, gpu, start), table_errors(tables, gpu, fitted),
                     bool(solution.success), str(solution.message))
