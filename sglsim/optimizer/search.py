"""One entry point for every search method, and the `MultiObjectiveOptimizer` class over it.

`optimize(problem, method=...)` dispatches to:

- `grid`: exhaustive vectorised enumeration (exact; single objective);
- `relax`: SciPy continuous relaxation + rounding + local integer search;
- `pareto`: exact Pareto front by enumeration;
- `weighted_sum`, `epsilon_constraint`: scalarised sweeps (on the grid or the relaxation);
- `nsga2`: pymoo's NSGA-II (optional extra);
- `auto`: `grid` / `pareto` when the lattice has at most `max_grid_points`
  configurations, else `relax` / `nsga2`.

A list of problems (e.g. aggregated and P/D deployments, whose decision
variables differ) is solved one by one and merged: candidates ranked
together by the first objective, Pareto fronts merged and re-filtered.
"""

from __future__ import annotations

import time
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import ConfigError, unknown
from .methods.grid import ProgressFn, grid_search
from .methods.nsga import nsga2_search
from .methods.pareto import epsilon_constraint_search, nondominated, pareto_search, weighted_sum_search
from .methods.relax import relax_search
from .objectives import ObjectiveDirection, ObjectiveSpec
from .problem import Problem
from .result import Candidate, OptimizeResult, Status, sole_clause
from .space import DEFAULT_CHUNK_POINTS, DecisionSpace

from .choices import METHODS

DEFAULT_MAX_GRID_POINTS = 20_000_000
"""Largest lattice `auto` enumerates (about 10 s of compiled evaluation on one core)."""


def optimize(problem: Problem | Sequence[Problem], method: str = "auto", *, top_k: int = 5,
             max_grid_points: int = DEFAULT_MAX_GRID_POINTS, chunk_points: int = DEFAULT_CHUNK_POINTS,
             seed: int = 0, progress: ProgressFn | None = None, **options: Any) -> OptimizeResult:
    """Search one problem, or several merged, with the named method (see the module docstring)."""
    if method not in METHODS:
        raise unknown("method", method, METHODS)
    if not isinstance(problem, Problem):
        problems = list(problem)
        if not problems:
            raise ConfigError("invalid problem list: expected at least one problem")
        start = time.perf_counter()
        results = [optimize(p, method, top_k=top_k, max_grid_points=max_grid_points, chunk_points=chunk_points,
                            seed=seed, progress=progress, **options) for p in problems]
        return merge_results(problems, results, top_k, time.perf_counter() - start)
    multi = len(problem.objectives) > 1
    if method == "auto":
        small = problem.space.size <= max_grid_points
        if multi:
            method = "pareto" if small else "nsga2"
        else:
            method = "grid" if small else "relax"
    inner = "grid" if problem.space.size <= max_grid_points else "relax"
    if method in ("grid", "pareto") and inner == "relax":
        raise ConfigError(f"invalid method {method}: the lattice has {problem.space.size:,} configurations, "
                          f"more than max_grid_points {max_grid_points:,}; use relax or nsga2")
    if method == "grid":
        return grid_search(problem, top_k, chunk_points, progress, **options)
    if method == "relax":
        return relax_search(problem, top_k, seed=seed, progress=progress, **options)
    if method == "pareto":
        return pareto_search(problem, top_k, chunk_points, progress, **options)
    if method == "weighted_sum":
        return weighted_sum_search(problem, inner=inner, top_k=top_k, chunk_points=chunk_points, seed=seed,
                                   **options)
    if method == "epsilon_constraint":
        return epsilon_constraint_search(problem, inner=inner, top_k=top_k, chunk_points=chunk_points, seed=seed,
                                         **options)
    return nsga2_search(problem, seed=seed, top_k=top_k, progress=progress, **options)


def _rank_key(problems: Sequence[Problem]) -> Any:
    first = problems[0]
    names, signs = first.objective_names, first.signs

    def key(c: Candidate) -> tuple[float, ...]:
        return tuple(-s * c.objectives[n] for s, n in zip(signs, names))

    return key


def merge_results(problems: Sequence[Problem], results: Sequence[OptimizeResult], top_k: int,
                  wall_time_s: float) -> OptimizeResult:
    """Combine the searches of several problems that share objective names."""
    names = problems[0].objective_names
    for p in problems[1:]:
        if p.objective_names != names:
            raise ConfigError(f"invalid problem list: {p.name or 'a problem'} has objectives {p.objective_names}, "
                              f"expected {names} as the first problem")
    nfev = sum(r.nfev for r in results)
    nit = sum(r.nit for r in results)
    method = "+".join(sorted({r.method for r in results}))
    feasible = [r for r in results if r.x is not None]
    if not feasible:
        return _merge_infeasible(results, method, nfev, wall_time_s, nit)
    key = _rank_key(problems)
    candidates = sorted((c for r in feasible for c in r.candidates), key=key)[:top_k]
    pareto_all = [c for r in feasible for c in r.pareto]
    pareto: list[Candidate] = []
    if pareto_all:
        values = np.array([[c.objectives[n] for n in names] for c in pareto_all]) * problems[0].signs
        pareto = sorted((c for c, keep in zip(pareto_all, nondominated(values)) if keep), key=key)
    top = candidates[0]
    winner = next(r for r in feasible if top in r.candidates)
    message = f"Best of {len(results)} problems ({', '.join(p.name or '?' for p in problems)}): {winner.message}"
    feasible_counts = [r.num_feasible for r in results if r.num_feasible is not None]
    return OptimizeResult(top.config, top.objectives, top.slacks, winner.success, winner.status, message, nfev,
                          wall_time_s, method, candidates=candidates, pareto=pareto, problem=top.problem, nit=nit,
                          num_feasible=sum(feasible_counts) if feasible_counts else None)


def _merge_infeasible(results: Sequence[OptimizeResult], method: str, nfev: int, wall: float,
                      nit: int) -> OptimizeResult:
    """Build the result when every problem is infeasible, naming the constraint that rules out the most points."""
    counts: dict[str, dict[str, int]] = {}
    for r in results:
        for name, row in (r.infeasibility or {}).get("counts", {}).items():
            total = counts.setdefault(name, {"violated": 0, "sole": 0})
            total["violated"] += row["violated"]
            total["sole"] += row["sole"]
    binding = min(counts, key=lambda n: (-counts[n]["sole"], -counts[n]["violated"])) if counts else "none"
    row = counts.get(binding, {"violated": 0, "sole": 0})
    message = (f"Infeasible: no problem has a configuration that satisfies every constraint; binding constraint "
               f"{binding} (broken by {row['violated']:,} of {nfev:,} configurations{sole_clause(row['sole'])}). " + " ".join(r.message for r in results))
    return OptimizeResult(None, None, None, False, Status.INFEASIBLE, message, nfev, wall, method, nit=nit,
                          infeasibility={"binding": binding, "counts": counts,
                                         "by_problem": {r.problem: r.infeasibility for r in results}})


def _resolve(objective: ObjectiveSpec, metrics: Any) -> ObjectiveSpec:
    """Fill in an objective given by metric name from `metrics` (e.g. a `MetricExpressions`)."""
    if objective.expr is not None:
        return objective
    if metrics is None:
        raise ConfigError(f"invalid objective {objective.name}: no expression given and no metrics to take it from")
    expr = metrics.get_expression(objective.name) if hasattr(metrics, "get_expression") else metrics[objective.name]
    return ObjectiveSpec(objective.name, expr, objective.direction, objective.description)


def _space(space: DecisionSpace | Mapping[Any, Any]) -> DecisionSpace:
    if isinstance(space, DecisionSpace):
        return space
    return DecisionSpace({getattr(k, "name", k): v for k, v in space.items()})


class MultiObjectiveOptimizer:
    """Objectives and constraints given once, searched over any decision space.

    `MultiObjectiveOptimizer([ObjectiveSpec("throughput", expr, ObjectiveDirection.MAXIMIZE)],
    constraints=builder.get_all_constraints(), bind=symbols.values(...))`;
    with `metrics=` (a `MetricExpressions`), `ObjectiveSpec("throughput",
    ObjectiveDirection.MAXIMIZE)` takes the expression of that metric.
    A space maps each decision variable (a SymPy symbol or its name) to its
    domain: a list of values, `{"range": [lo, hi]}` or `{"pow2": [lo, hi]}`.
    """

    def __init__(self, objectives: Sequence[ObjectiveSpec], constraints: Sequence[Any] = (),
                 bind: Mapping[Any, Any] | None = None, metrics: Any = None) -> None:
        self.objectives = [_resolve(o, metrics) for o in objectives]
        self.constraints = list(constraints)
        self.bind = dict(bind or {})

    def problem(self, space: DecisionSpace | Mapping[Any, Any], name: str = "") -> Problem:
        return Problem(_space(space), self.objectives, self.constraints, self.bind, name)

    def optimize(self, space: DecisionSpace | Mapping[Any, Any], method: str = "auto", **options: Any) -> OptimizeResult:
        return optimize(self.problem(space), method, **options)

    def grid_search(self, space: DecisionSpace | Mapping[Any, Any], top_k: int = 5, **options: Any) -> OptimizeResult:
        """Find the best feasible configuration by the first objective (later ones break ties) by enumeration."""
        return optimize(self.problem(space), "grid", top_k=top_k, **options)

    def pareto_grid_search(self, space: DecisionSpace | Mapping[Any, Any], **options: Any) -> OptimizeResult:
        """Find the exact Pareto front of all objectives by enumeration (`result.pareto`)."""
        return optimize(self.problem(space), "pareto", **options)


__all__ = ["optimize", "merge_results", "MultiObjectiveOptimizer", "ObjectiveSpec", "ObjectiveDirection", "METHODS"]
