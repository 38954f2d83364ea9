"""Exhaustive vectorised search of the whole lattice, in memory-bounded chunks."""

from __future__ import annotations

import time
from typing import Any, Callable

from ..problem import Evaluation, FeasibilityLedger
from ..result import OptimizeResult, Status, candidate_at, infeasible_result, ranked_rows, termination_message
from ..space import DEFAULT_CHUNK_POINTS

ProgressFn = Callable[[int, int], None]
"""Called with (configurations evaluated, configurations in total)."""


class TopK:
    """The best `k` feasible rows seen so far across chunks, in rank order."""

    def __init__(self, problem: Any, k: int) -> None:
        self.problem = problem
        self.k = k
        self.best: Evaluation | None = None

    def add(self, ev: Evaluation) -> None:
        rows = ranked_rows(self.problem, ev, self.k)
        if len(rows) == 0:
            return
        merged = ev.take(rows) if self.best is None else Evaluation.concat([self.best, ev.take(rows)])
        self.best = merged.take(ranked_rows(self.problem, merged, self.k))

    def candidates(self) -> list:
        if self.best is None:
            return []
        return [candidate_at(self.problem, self.best, i) for i in range(self.best.n)]


def enumerate_lattice(problem: Any, chunk_points: int = DEFAULT_CHUNK_POINTS, progress: ProgressFn | None = None):
    """Yield the evaluation of each chunk of the lattice, in lattice order."""
    total = problem.space.size
    done = 0
    for flat, values in problem.space.chunks(chunk_points):
        ev = problem.evaluate_values(problem.space.decode(flat), values, skip_infeasible=True)
        done += ev.n
        if progress is not None:
            progress(done, total)
        yield ev


def grid_search(problem: Any, top_k: int = 5, chunk_points: int = DEFAULT_CHUNK_POINTS,
                progress: ProgressFn | None = None) -> OptimizeResult:
    """Evaluate every configuration; return the best feasible one and the runners-up."""
    start = time.perf_counter()
    best = TopK(problem, top_k)
    ledger = FeasibilityLedger.for_problem(problem)
    for ev in enumerate_lattice(problem, chunk_points, progress):
        ledger.add(ev)
        best.add(ev)
    wall = time.perf_counter() - start
    nfev = ledger.num_points
    candidates = best.candidates()
    if not candidates:
        return infeasible_result(problem, ledger, "grid", nfev, wall)
    top = candidates[0]
    return OptimizeResult(top.config, top.objectives, top.slacks, True, Status.OPTIMAL,
                          termination_message(Status.OPTIMAL, num_points=nfev), nfev, wall, "grid",
                          candidates=candidates, problem=problem.name, nit=1, num_feasible=ledger.num_feasible)
