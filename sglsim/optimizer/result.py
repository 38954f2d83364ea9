"""The SciPy-style result of a search, its candidates, and the one table of termination messages."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .problem import Evaluation, FeasibilityLedger


class Status:
    """Termination status codes (`OptimizeResult.status`); `TERMINATION_MESSAGES` has their text."""

    OPTIMAL = 0
    LOCAL_OPTIMUM = 1
    INFEASIBLE = 2
    EVALUATION_LIMIT = 3
    EXACT_FRONT = 4
    APPROXIMATE_FRONT = 5
    NOT_VERIFIED = 6


TERMINATION_MESSAGES: dict[int, str] = {
    Status.OPTIMAL: "Optimal: the best feasible configuration of all {num_points:,} in the lattice.",
    Status.LOCAL_OPTIMUM: ("Local optimum: the rounded continuous relaxation, improved until no neighbour "
                           "on the lattice is better ({num_points:,} configurations evaluated)."),
    Status.INFEASIBLE: ("Infeasible: none of the {num_points:,} configurations evaluated satisfies every "
                        "constraint; binding constraint {binding} (broken by {violated:,} of them{sole_text}; "
                        "closest point {closest})."),
    Status.EVALUATION_LIMIT: ("Stopped at the evaluation limit of {limit:,} configurations; the best feasible "
                              "configuration found so far is returned."),
    Status.EXACT_FRONT: "Exact Pareto front: {front_size} non-dominated points of {num_feasible:,} feasible ones.",
    Status.APPROXIMATE_FRONT: ("Approximate Pareto front from NSGA-II ({generations} generations of "
                               "{population}): {front_size} non-dominated points."),
    Status.NOT_VERIFIED: ("No candidate met the SLOs in simulation ({num_candidates} simulated); the analytic "
                          "optimum is reported with its simulated figures."),
}
SUCCESS_STATUSES = frozenset({Status.OPTIMAL, Status.LOCAL_OPTIMUM, Status.EXACT_FRONT, Status.APPROXIMATE_FRONT})


def sole_clause(sole: int) -> str:
    """Return ", and the only broken one in N" for an infeasibility message, or "" when N is 0."""
    return f", and the only broken one in {sole:,}" if sole else ""


def termination_message(status: int, **details: Any) -> str:
    return TERMINATION_MESSAGES[status].format(**details)


@dataclass
class Candidate:
    """One configuration with its objective values and constraint slacks."""

    config: dict[str, float]
    objectives: dict[str, float]
    slacks: dict[str, float]
    problem: str = ""
    feasible: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class OptimizeResult:
    """What every search method returns (named like `scipy.optimize.OptimizeResult`).

    `x` is the best configuration (None when infeasible), `fun` its objective
    values, `slacks` its constraint slacks (>= 0 = satisfied), `candidates`
    the runners-up in rank order (best first, `x` included), `pareto` the
    non-dominated points of a multi-objective search, `nfev` the number of
    configurations evaluated and `wall_time_s` the search's own time.
    """

    x: dict[str, float] | None
    fun: dict[str, float] | None
    slacks: dict[str, float] | None
    success: bool
    status: int
    message: str
    nfev: int
    wall_time_s: float
    method: str
    candidates: list[Candidate] = field(default_factory=list)
    pareto: list[Candidate] = field(default_factory=list)
    problem: str = ""
    nit: int = 0
    infeasibility: dict[str, Any] | None = None
    """For an infeasible search: binding constraint, per-constraint counts and the closest point."""
    num_feasible: int | None = None
    """Feasible configurations among those evaluated."""

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)

    @property
    def best(self) -> Candidate | None:
        return self.candidates[0] if self.candidates else None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["candidates"] = [c.to_dict() for c in self.candidates]
        out["pareto"] = [c.to_dict() for c in self.pareto]
        return out


def candidate_at(problem: Any, ev: Evaluation, row: int) -> Candidate:
    """The candidate of row `row` of an evaluation."""
    return Candidate(
        config=problem.space.point(ev.coords[row]),
        objectives={n: float(ev.objectives[row, j]) for j, n in enumerate(problem.objective_names)},
        slacks={n: float(ev.slacks[row, j]) for j, n in enumerate(problem.constraint_names)},
        problem=problem.name,
        feasible=bool(ev.feasible[row]),
    )


def infeasible_result(problem: Any, ledger: FeasibilityLedger, method: str, nfev: int,
                      wall_time_s: float, nit: int = 0) -> OptimizeResult:
    """The result of a search that found no feasible configuration, naming the binding constraint."""
    binding = ledger.binding() or "none"
    counts = ledger.counts()
    closest: dict[str, Any] | None = None
    closest_text = "none"
    if ledger.closest_coords is not None:
        config = problem.space.point(ledger.closest_coords)
        slacks = {n: float(s) for n, s in zip(problem.constraint_names, ledger.closest_slacks)}
        closest = {"config": config, "slacks": slacks}
        broken = ", ".join(f"{n} {s:.4g}" for n, s in slacks.items() if not s >= 0)
        closest_text = f"{_config_text(config)} breaks {broken}"
    row = counts.get(binding, {"violated": 0, "sole": 0})
    message = termination_message(Status.INFEASIBLE, num_points=ledger.num_points, binding=binding,
                                  violated=row["violated"], sole_text=sole_clause(row["sole"]), closest=closest_text)
    if problem.name:
        message = f"[{problem.name}] {message}"
    return OptimizeResult(None, None, None, False, Status.INFEASIBLE, message, nfev, wall_time_s, method,
                          problem=problem.name, nit=nit, num_feasible=0,
                          infeasibility={"binding": binding, "counts": counts, "closest": closest})


def _config_text(config: dict[str, float]) -> str:
    return " ".join(f"{k}={v:g}" for k, v in config.items())


def ranked_rows(problem: Any, ev: Evaluation, top_k: int) -> np.ndarray:
    """Rows of the best `top_k` feasible points of `ev`: highest score first, ties by the objectives in order.

    Remaining ties keep lattice order (the sort is stable), so results are deterministic.
    """
    rows = np.flatnonzero(ev.feasible)
    if len(rows) == 0:
        return rows
    keys = [-problem.signs[j] * ev.objectives[rows, j] for j in reversed(range(len(problem.signs)))]
    keys.append(-ev.score[rows])
    order = np.lexsort(keys)
    return rows[order[:top_k]]
