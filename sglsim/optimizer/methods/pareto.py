"""Multi-objective searches: the exact Pareto front by enumeration, weighted sum and epsilon-constraint."""

from __future__ import annotations

import itertools
import time
from typing import Any, Mapping, Sequence

import numpy as np

from ...errors import ConfigError
from ..problem import Evaluation, FeasibilityLedger
from ..result import OptimizeResult, Status, candidate_at, infeasible_result, termination_message
from ..scalarize import ScalarizedProblem
from ..space import DEFAULT_CHUNK_POINTS
from .grid import ProgressFn, TopK, enumerate_lattice, grid_search
from .relax import relax_search

RANGE_SAMPLE_POINTS = 4096
"""Lattice points sampled to estimate objective ranges when the lattice is too large to enumerate."""


def nondominated(values: np.ndarray) -> np.ndarray:
    """Mask of the rows of `values` (n x m, every column to be maximised) that no other row dominates.

    Row a dominates row b when a >= b everywhere and a > b somewhere; equal
    rows do not dominate each other, so duplicates of a front point stay on
    the front. Repeatedly takes the remaining row with the largest positive
    weighted sum (it cannot be dominated by any remaining row) and drops what
    it dominates: O(n x front size), vectorised over n.
    """
    n = len(values)
    mask = np.zeros(n, dtype=bool)
    if n == 0:
        return mask
    span = values.max(axis=0) - values.min(axis=0)
    key = values @ (1.0 / np.where(span > 0, span, 1.0))
    remaining = np.arange(n)
    while remaining.size:
        top = values[remaining[int(np.argmax(key[remaining]))]]
        rest = values[remaining]
        equal = np.all(rest == top, axis=1)
        dominated = np.all(rest <= top, axis=1) & ~equal
        mask[remaining[equal]] = True
        remaining = remaining[~(equal | dominated)]
    return mask


class FrontAccumulator:
    """The non-dominated feasible points of everything added so far."""

    def __init__(self, problem: Any) -> None:
        self.problem = problem
        self.front: Evaluation | None = None
        self.num_feasible = 0

    def add(self, ev: Evaluation) -> None:
        feasible = ev.take(np.flatnonzero(ev.feasible))
        self.num_feasible += feasible.n
        if feasible.n == 0:
            return
        merged = feasible if self.front is None else Evaluation.concat([self.front, feasible])
        self.front = merged.take(np.flatnonzero(nondominated(merged.objectives * self.problem.signs)))

    def candidates(self) -> list:
        """Front points sorted best first by the first objective (ties: the next objectives)."""
        if self.front is None:
            return []
        keys = [-self.problem.signs[j] * self.front.objectives[:, j]
                for j in reversed(range(len(self.problem.signs)))]
        order = np.lexsort(keys)
        return [candidate_at(self.problem, self.front, int(i)) for i in order]


def pareto_search(problem: Any, top_k: int = 5, chunk_points: int = DEFAULT_CHUNK_POINTS,
                  progress: ProgressFn | None = None) -> OptimizeResult:
    """Enumerate the lattice; return the exact Pareto front and the best points by the first objective."""
    start = time.perf_counter()
    best = TopK(problem, top_k)
    front = FrontAccumulator(problem)
    ledger = FeasibilityLedger.for_problem(problem)
    for ev in enumerate_lattice(problem, chunk_points, progress):
        ledger.add(ev)
        best.add(ev)
        front.add(ev)
    wall = time.perf_counter() - start
    candidates = best.candidates()
    if not candidates:
        return infeasible_result(problem, ledger, "pareto", ledger.num_points, wall)
    pareto = front.candidates()
    top = candidates[0]
    message = termination_message(Status.EXACT_FRONT, front_size=len(pareto), num_feasible=front.num_feasible)
    return OptimizeResult(top.config, top.objectives, top.slacks, True, Status.EXACT_FRONT, message,
                          ledger.num_points, wall, "pareto", candidates=candidates, pareto=pareto,
                          problem=problem.name, nit=1, num_feasible=ledger.num_feasible)


# ----- scalarisations -----

def objective_ranges(problem: Any, inner: str, chunk_points: int, seed: int) -> tuple[np.ndarray, np.ndarray, int]:
    """(min, max) of each objective over feasible points: all of them on a grid, a seeded sample otherwise."""
    m = len(problem.objectives)
    low, high = np.full(m, np.inf), np.full(m, -np.inf)
    if inner == "grid":
        evaluations = enumerate_lattice(problem, chunk_points)
    else:
        rng = np.random.default_rng(seed)
        coords = np.stack([rng.integers(0, n, RANGE_SAMPLE_POINTS) for n in problem.space.shape], axis=1)
        evaluations = [problem.evaluate(coords)]
    count = 0
    for ev in evaluations:
        count += ev.n
        feasible = ev.objectives[ev.feasible]
        if len(feasible):
            low = np.minimum(low, feasible.min(axis=0))
            high = np.maximum(high, feasible.max(axis=0))
    return low, high, count


def _solve(problem: Any, inner: str, top_k: int, chunk_points: int, seed: int) -> OptimizeResult:
    if inner == "grid":
        return grid_search(problem, top_k, chunk_points)
    return relax_search(problem, top_k, seed=seed)


def _combine(problem: Any, runs: list[OptimizeResult], method: str, nfev: int, start: float) -> OptimizeResult:
    """Merge the solves of a scalarisation sweep: the first run gives `x`, the winners form the front."""
    first = runs[0]
    winners = [r.candidates[0] for r in runs if r.candidates]
    wall = time.perf_counter() - start
    if not winners:
        first.method, first.nfev, first.wall_time_s = method, nfev, wall
        return first
    objectives = np.array([[w.objectives[n] for n in problem.objective_names] for w in winners])
    keep = nondominated(objectives * problem.signs)
    seen, pareto = set(), []
    for w, k in zip(winners, keep):
        key = tuple(sorted(w.config.items()))
        if k and key not in seen:
            seen.add(key)
            pareto.append(w)
    pareto.sort(key=lambda c: tuple(-s * c.objectives[n] for s, n in zip(problem.signs, problem.objective_names)))
    base = first if first.candidates else next(r for r in runs if r.candidates)
    top = base.candidates[0]
    slacks = {n: top.slacks[n] for n in problem.constraint_names}
    message = (f"{method}: {len(runs)} scalarised searches ({base.method}); {len(pareto)} distinct "
               f"non-dominated winners. {base.message}")
    return OptimizeResult(top.config, top.objectives, slacks, True, base.status, message, nfev, wall, method,
                          candidates=base.candidates, pareto=pareto, problem=problem.name, nit=len(runs))


def weighted_sum_search(problem: Any, weights: Sequence[float] | None = None, num_weights: int = 11,
                        inner: str = "grid", top_k: int = 5, chunk_points: int = DEFAULT_CHUNK_POINTS,
                        seed: int = 0) -> OptimizeResult:
    """Maximise sum_j w_j sign_j f_j / range_j; sweep `num_weights` weight vectors for the front.

    The first solve uses `weights` (default: equal); the sweep adds evenly
    spaced vectors of the weight simplex. Only supported (convex-hull) Pareto
    points can win a weighted sum.
    """
    start = time.perf_counter()
    m = len(problem.objectives)
    low, high, nfev = objective_ranges(problem, inner, chunk_points, seed)
    scale = np.where(np.isfinite(high - low) & (high > low), high - low, 1.0)
    vectors = [np.ones(m) / m if weights is None else np.asarray(weights, dtype=float)]
    if m > 1 and num_weights > 1:
        vectors.extend(_simplex(m, num_weights))
    runs = []
    for w in vectors:
        run = _solve(ScalarizedProblem(problem, weights=w, scale=scale), inner, top_k, chunk_points, seed)
        nfev += run.nfev
        runs.append(run)
    return _combine(problem, runs, "weighted_sum", nfev, start)


def _simplex(m: int, count: int) -> list[np.ndarray]:
    """About `count` evenly spaced points of the weight simplex in m dimensions (corners included)."""
    steps = 1
    while _simplex_size(m, steps + 1) <= count:
        steps += 1
    points = []
    for combo in itertools.product(range(steps + 1), repeat=m):
        if sum(combo) == steps:
            points.append(np.asarray(combo, dtype=float) / steps)
    return points


def _simplex_size(m: int, steps: int) -> int:
    from math import comb

    return comb(steps + m - 1, m - 1)


def epsilon_constraint_search(problem: Any, epsilons: Mapping[str, Sequence[float]] | None = None,
                              num_levels: int = 10, primary: str | None = None, inner: str = "grid",
                              top_k: int = 5, chunk_points: int = DEFAULT_CHUNK_POINTS,
                              seed: int = 0) -> OptimizeResult:
    """Maximise the primary objective with each other objective held no worse than a level.

    Levels default to `num_levels` evenly spaced values over each other
    objective's feasible range; the first solve has no epsilon constraint
    (the primary objective's optimum).
    """
    start = time.perf_counter()
    names = problem.objective_names
    primary = primary or names[0]
    if primary not in names:
        raise ConfigError(f"invalid primary objective {primary!r}: choose one of {', '.join(names)}")
    others = [n for n in names if n != primary]
    nfev = 0
    if epsilons is None:
        low, high, nfev = objective_ranges(problem, inner, chunk_points, seed)
        epsilons = {n: list(np.linspace(low[names.index(n)], high[names.index(n)], num_levels))
                    for n in others if np.isfinite(low[names.index(n)])}
    unknown = sorted(set(epsilons) - set(others))
    if unknown:
        raise ConfigError(f"invalid epsilon objective {unknown[0]!r}: choose among {', '.join(others) or 'none'}")
    levels = [dict(zip(epsilons, combo)) for combo in itertools.product(*epsilons.values())] if epsilons else []
    runs = []
    for level in [{}] + levels:
        run = _solve(ScalarizedProblem(problem, epsilon=level, primary=primary), inner, top_k, chunk_points, seed)
        nfev += run.nfev
        runs.append(run)
    return _combine(problem, runs, "epsilon_constraint", nfev, start)
