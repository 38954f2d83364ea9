"""An optimisation problem: a decision space, objectives and constraints, evaluated in vectorised chunks.

`Problem.evaluate` returns, for a batch of configurations, every objective
value and every constraint slack. A configuration is feasible when every
slack is >= 0 and every objective is finite; a non-finite slack counts as a
violation of that constraint, a non-finite objective as a violation of the
pseudo-constraint `finite_<objective>`, so no NaN ever reaches a result.
`FeasibilityLedger` counts which constraint rules out which points, so an
infeasible problem can name the constraint that binds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import ConfigError
from .objectives import CompiledMetric, ConstraintSpec, ObjectiveSpec, as_constraint, compile_metric
from .space import DecisionSpace


@dataclass
class Evaluation:
    """Objective values and constraint slacks of n configurations."""

    coords: np.ndarray
    """Index coordinates (n x d)."""
    values: dict[str, np.ndarray]
    """Decision arrays by variable name."""
    objectives: np.ndarray
    """n x m objective values, in the objectives' own units and directions."""
    slacks: np.ndarray
    """n x c constraint slacks (>= 0 where satisfied); non-finite entries are set to -inf."""
    feasible: np.ndarray
    """n booleans."""
    score: np.ndarray
    """What a single-objective search maximises: sign x the first objective, or a scalarisation."""

    @property
    def n(self) -> int:
        return len(self.feasible)

    def take(self, rows: np.ndarray) -> "Evaluation":
        """The sub-evaluation of the given rows (in that order)."""
        return Evaluation(self.coords[rows], {k: v[rows] for k, v in self.values.items()},
                          self.objectives[rows], self.slacks[rows], self.feasible[rows], self.score[rows])

    @staticmethod
    def concat(parts: "list[Evaluation]") -> "Evaluation":
        """Rows of several evaluations of the same problem, in order."""
        first = parts[0]
        return Evaluation(np.concatenate([p.coords for p in parts]),
                          {k: np.concatenate([p.values[k] for p in parts]) for k in first.values},
                          np.concatenate([p.objectives for p in parts]), np.concatenate([p.slacks for p in parts]),
                          np.concatenate([p.feasible for p in parts]), np.concatenate([p.score for p in parts]))


class Problem:
    """Objectives and constraints over a decision space, compiled once.

    `bind` substitutes numbers for the non-decision symbols of SymPy
    expressions (model, hardware, frozen workload parameters). `name` tells
    apart several problems solved together (e.g. aggregated and P/D deployments).
    """

    def __init__(self, space: DecisionSpace | Mapping[str, Any], objectives: Sequence[ObjectiveSpec],
                 constraints: Sequence[Any] = (), bind: Mapping[Any, Any] | None = None, name: str = "") -> None:
        self.space = space if isinstance(space, DecisionSpace) else DecisionSpace(space)
        if not objectives:
            raise ConfigError("invalid problem: expected at least one objective")
        self.objectives = list(objectives)
        self.constraints: list[ConstraintSpec] = [as_constraint(c) for c in constraints]
        names = [o.name for o in self.objectives] + [c.name for c in self.constraints]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ConfigError(f"invalid problem: two objectives or constraints are named {duplicated[0]}")
        self.name = name
        variables = self.space.names
        self._objective_fns: list[CompiledMetric] = [
            compile_metric(o.name, o.expr, variables, bind) for o in self.objectives]
        self._constraint_fns: list[CompiledMetric] = [
            compile_metric(c.name, c.expr, variables, bind, slack=True) for c in self.constraints]
        self.signs = np.array([o.direction.sign for o in self.objectives])

    @property
    def objective_names(self) -> list[str]:
        return [o.name for o in self.objectives]

    @property
    def constraint_names(self) -> list[str]:
        return [c.name for c in self.constraints]

    def evaluate_values(self, coords: np.ndarray, values: dict[str, np.ndarray],
                        skip_infeasible: bool = False) -> Evaluation:
        """Evaluate configurations given both their index coordinates and decision arrays.

        With `skip_infeasible`, objectives are computed only where every
        constraint holds (NaN elsewhere): enumeration needs no more, and an
        objective may be costly (a search over the arrival rate).
        """
        n = len(coords)
        slacks = np.empty((n, len(self._constraint_fns)))
        for j, fn in enumerate(self._constraint_fns):
            slacks[:, j] = fn(values, n)
        slacks[~np.isfinite(slacks)] = -np.inf
        objectives = np.full((n, len(self._objective_fns)), np.nan)
        rows = np.flatnonzero(np.all(slacks >= 0, axis=1)) if skip_infeasible else np.arange(n)
        if len(rows):
            subset = values if len(rows) == n else {k: v[rows] for k, v in values.items()}
            for j, fn in enumerate(self._objective_fns):
                objectives[rows, j] = fn(subset, len(rows))
        feasible = np.all(slacks >= 0, axis=1) & np.all(np.isfinite(objectives), axis=1)
        return Evaluation(coords, values, objectives, slacks, feasible, self.signs[0] * objectives[:, 0])

    def evaluate(self, coords: np.ndarray) -> Evaluation:
        """Evaluate configurations at index coordinates (n x d)."""
        coords = np.atleast_2d(np.asarray(coords, dtype=np.int64))
        return self.evaluate_values(coords, self.space.values_at(coords))

    def evaluate_relaxed(self, u: np.ndarray) -> Evaluation:
        """Evaluate at fractional index coordinates (the continuous relaxation); `coords` are the rounded ones."""
        u = np.atleast_2d(np.asarray(u, dtype=float))
        return self.evaluate_values(np.rint(u).astype(np.int64), self.space.interpolate(u))


@dataclass
class FeasibilityLedger:
    """Counts, per constraint, the points it rules out, to explain infeasibility.

    `violated[j]` counts points breaking constraint j; `sole[j]` counts
    points breaking j and nothing else (dropping j alone would admit them).
    The least-violating point seen is kept to show how far from feasible the
    problem is.
    """

    names: list[str]
    num_points: int = 0
    num_feasible: int = 0
    violated: np.ndarray = field(default=None)  # type: ignore[assignment]
    sole: np.ndarray = field(default=None)  # type: ignore[assignment]
    closest_coords: np.ndarray | None = None
    closest_slacks: np.ndarray | None = None
    _closest_score: float = -np.inf

    def __post_init__(self) -> None:
        self.violated = np.zeros(len(self.names), dtype=np.int64)
        self.sole = np.zeros(len(self.names), dtype=np.int64)

    @classmethod
    def for_problem(cls, problem: Problem) -> "FeasibilityLedger":
        names = problem.constraint_names + [f"finite_{o}" for o in problem.objective_names]
        return cls(names)

    def add(self, ev: Evaluation) -> None:
        # A non-finite objective counts only where the constraints hold (elsewhere it may be unevaluated).
        nonfinite = ~np.isfinite(ev.objectives) & np.all(ev.slacks >= 0, axis=1)[:, None]
        broken = np.concatenate([ev.slacks < 0, nonfinite], axis=1)
        self.num_points += ev.n
        self.num_feasible += int(ev.feasible.sum())
        self.violated += broken.sum(axis=0)
        only_one = broken.sum(axis=1) == 1
        self.sole += broken[only_one].sum(axis=0)
        if ev.slacks.shape[1] == 0:
            return
        # Closest infeasible point: the largest worst-case slack (least violated).
        worst = np.min(ev.slacks, axis=1)
        worst = np.where(ev.feasible, -np.inf, worst)
        best = int(np.argmax(worst))
        if not ev.feasible[best] and worst[best] > self._closest_score:
            self._closest_score = float(worst[best])
            self.closest_coords = ev.coords[best].copy()
            self.closest_slacks = ev.slacks[best].copy()

    def binding(self) -> str | None:
        """The constraint that rules out the most points on its own (ties: the most points in all)."""
        if not self.names or self.violated.max(initial=0) == 0:
            return None
        order = np.lexsort((-self.violated, -self.sole))
        return self.names[int(order[0])]

    def counts(self) -> dict[str, dict[str, int]]:
        return {n: {"violated": int(v), "sole": int(s)} for n, v, s in zip(self.names, self.violated, self.sole)}
