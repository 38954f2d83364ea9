"""Scalarisations of a multi-objective problem: weighted sum and epsilon-constraint.

Both wrap a `Problem` and change only what a single-objective search ranks
by (`Evaluation.score`) and which points are feasible; every objective is
still reported in its own units.

- Weighted sum: score = sum_j w_j x sign_j x f_j / scale_j, where scale_j
  (the objective's range over a sample of feasible points, by default) makes
  the weights unit-free. It finds the *supported* Pareto points only.
- Epsilon-constraint: maximise sign_p x f_p subject to f_j no worse than
  eps_j for each other objective j; sweeping eps_j reaches every Pareto point.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from ..errors import ConfigError
from .problem import Evaluation, Problem

EPSILON_TOLERANCE = 1e-12
"""Relative tolerance that keeps rounding noise from excluding the point that defines an epsilon level."""


class ScalarizedProblem:
    """A problem whose search score is a weighted sum, optionally with epsilon constraints."""

    def __init__(self, base: Problem, weights: Sequence[float] | None = None, scale: Sequence[float] | None = None,
                 epsilon: Mapping[str, float] | None = None, primary: str | None = None) -> None:
        self.base = base
        self.space = base.space
        self.objectives = base.objectives
        self.name = base.name
        self.signs = base.signs
        m = len(base.objectives)
        names = base.objective_names
        self.primary = names.index(primary) if primary is not None else 0
        if primary is not None and primary not in names:
            raise ConfigError(f"invalid primary objective {primary!r}: choose one of {', '.join(names)}")
        self.weights = None if weights is None else np.asarray(weights, dtype=float)
        if self.weights is not None and (self.weights.shape != (m,) or np.any(self.weights < 0)
                                         or not np.any(self.weights > 0)):
            raise ConfigError(f"invalid weights {list(weights)}: expected {m} non-negative numbers, not all zero")
        self.scale = np.ones(m) if scale is None else np.where(np.asarray(scale) > 0, np.asarray(scale), 1.0)
        self.epsilon: list[tuple[int, float]] = []
        for name, level in (epsilon or {}).items():
            if name not in names:
                raise ConfigError(f"invalid epsilon objective {name!r}: choose one of {', '.join(names)}")
            self.epsilon.append((names.index(name), float(level)))

    @property
    def objective_names(self) -> list[str]:
        return self.base.objective_names

    @property
    def constraint_names(self) -> list[str]:
        return self.base.constraint_names + [f"epsilon_{self.base.objective_names[j]}" for j, _ in self.epsilon]

    def _wrap(self, ev: Evaluation) -> Evaluation:
        extra = np.empty((ev.n, len(self.epsilon)))
        for k, (j, level) in enumerate(self.epsilon):
            tolerance = EPSILON_TOLERANCE * max(1.0, abs(level))
            extra[:, k] = self.signs[j] * (ev.objectives[:, j] - level) + tolerance
        extra[~np.isfinite(extra)] = -np.inf
        slacks = np.concatenate([ev.slacks, extra], axis=1)
        feasible = ev.feasible & np.all(extra >= 0, axis=1)
        if self.weights is not None:
            score = (ev.objectives * self.signs / self.scale) @ self.weights
        else:
            score = self.signs[self.primary] * ev.objectives[:, self.primary]
        return Evaluation(ev.coords, ev.values, ev.objectives, slacks, feasible, score)

    def evaluate_values(self, coords: np.ndarray, values: dict[str, np.ndarray],
                        skip_infeasible: bool = False) -> Evaluation:
        return self._wrap(self.base.evaluate_values(coords, values, skip_infeasible))

    def evaluate(self, coords: np.ndarray) -> Evaluation:
        return self._wrap(self.base.evaluate(coords))

    def evaluate_relaxed(self, u: np.ndarray) -> Evaluation:
        return self._wrap(self.base.evaluate_relaxed(u))
