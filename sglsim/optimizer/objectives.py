"""Objectives and a grid search over compiled metric expressions.

`MultiObjectiveOptimizer` compiles each objective and constraint once,
evaluates them over every configuration of a grid of decision variables
(NumPy broadcasting), drops infeasible points and returns the Pareto front.
It is the minimal search the symbolic layer needs; smarter solvers can
replace `search` without changing `ObjectiveSpec`.
"""

from __future__ import annotations

import enum
import itertools
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import ConfigError


class ObjectiveDirection(enum.Enum):
    MAXIMIZE = "maximize"
    MINIMIZE = "minimize"


@dataclass(frozen=True)
class ObjectiveSpec:
    """One objective: a metric name of `MetricExpressions` and whether to maximize or minimize it."""

    metric: str
    direction: ObjectiveDirection = ObjectiveDirection.MAXIMIZE


@dataclass
class SearchResult:
    """Feasible Pareto-optimal configurations, with their objective values (one row per point)."""

    configs: list[dict[str, float]]
    objectives: np.ndarray
    num_evaluated: int
    num_feasible: int


class MultiObjectiveOptimizer:
    """Pareto search over a grid of decision variables.

    `values` binds every other symbol (model, hardware, knobs, frozen
    workload parameters), e.g. `symbols.values(...)` merged with
    `freeze(result).values(symbols)`.
    """

    def __init__(self, metrics: Any, constraints: Sequence[Any], objectives: Sequence[ObjectiveSpec],
                 values: Mapping[Any, float]) -> None:
        from ..symbolic.bridge import compile_expression

        if not objectives:
            raise ConfigError("invalid optimizer: give at least one ObjectiveSpec")
        self.objectives = list(objectives)
        self._objectives = [compile_expression(metrics.get_expression(o.metric), bind_values=values)
                            for o in self.objectives]
        self._constraints = [compile_expression(c.expr, bind_values=values) for c in constraints]

    def search(self, grid: Mapping[Any, Sequence[float]]) -> SearchResult:
        """Evaluate every combination of the grid's values and return the feasible Pareto front."""
        names = [getattr(k, "name", k) for k in grid]
        points = np.array(list(itertools.product(*grid.values())), dtype=float)
        columns = {name: points[:, i] for i, name in enumerate(names)}
        feasible = np.ones(len(points), dtype=bool)
        for compiled in self._constraints:
            feasible &= np.broadcast_to(compiled.evaluate(columns), feasible.shape) >= 0
        scores = np.column_stack([np.broadcast_to(np.asarray(c.evaluate(columns), dtype=float), feasible.shape)
                                  for c in self._objectives])
        feasible &= np.all(np.isfinite(scores), axis=1)
        signs = np.array([1.0 if o.direction is ObjectiveDirection.MAXIMIZE else -1.0 for o in self.objectives])
        index = np.nonzero(feasible)[0]
        front = _pareto(scores[index] * signs)
        chosen = index[front]
        configs = [{name: float(points[i, j]) for j, name in enumerate(names)} for i in chosen]
        return SearchResult(configs, scores[chosen], len(points), int(feasible.sum()))


def _pareto(maximized: np.ndarray) -> np.ndarray:
    """Indices of the rows no other row dominates (all objectives maximized)."""
    keep = []
    for i, row in enumerate(maximized):
        dominated = np.any(np.all(maximized >= row, axis=1) & np.any(maximized > row, axis=1))
        if not dominated:
            keep.append(i)
    return np.array(keep, dtype=int)
