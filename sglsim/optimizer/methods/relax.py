"""Continuous relaxation with SciPy, rounding to the lattice, then a local integer search.

For spaces too large to enumerate. Each variable is relaxed to a real index
coordinate u in [0, n - 1] (values between domain points are interpolated
linearly, see `DecisionSpace.interpolate`), so lists, ranges and powers of
two relax alike. SLSQP maximises the score subject to every slack >= 0 from
several seeded starting points; each relaxed optimum is rounded (every
floor/ceil corner when at most `MAX_CORNER_VARIABLES` variables are free),
and the best rounded points seed a best-improvement search over lattice
neighbours (one index step along one axis) that first walks out of
infeasibility (smallest total scaled violation) and then climbs the score.
The result is a local optimum of the lattice, not a certified global one.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from scipy.optimize import minimize

from ..problem import Evaluation, FeasibilityLedger
from ..result import OptimizeResult, Status, candidate_at, infeasible_result, ranked_rows, termination_message
from .grid import ProgressFn

MAX_CORNER_VARIABLES = 10
"""Round to all 2^k floor/ceil corners up to this many free variables; beyond it, nearest plus single flips."""
PENALTY = 1e6
"""Relaxed objective where the score is not finite (scaled units)."""
RELAX_STEP = 1e-6
"""Forward-difference step of the relaxed gradients, in index coordinates."""
RELAX_MAX_EVALUATIONS = 40
"""Relaxed evaluations per SLSQP start. The relaxed optimum only seeds the integer search, and the
metrics (ceilings, minima) are not smooth, so SLSQP's line searches can stall at kinks for hundreds
of evaluations."""


class _BudgetSpent(Exception):
    """Signal raised inside SLSQP's callbacks once a start has used its evaluations."""


class Archive:
    """Every lattice point evaluated so far (each once), with the feasibility ledger."""

    def __init__(self, problem: Any) -> None:
        self.problem = problem
        self.parts: list[Evaluation] = []
        self.rows: dict[int, tuple[int, int]] = {}
        self.ledger = FeasibilityLedger.for_problem(problem)
        self.slack_scale = np.ones(len(problem.constraint_names))

    @property
    def size(self) -> int:
        return len(self.rows)

    def evaluate(self, coords: np.ndarray) -> Evaluation:
        """Evaluate lattice points, reusing earlier evaluations; rows follow `coords`."""
        coords = np.atleast_2d(np.asarray(coords, dtype=np.int64))
        flat = self.problem.space.encode(coords).tolist()
        fresh: dict[int, int] = {}
        for i, f in enumerate(flat):
            if f not in self.rows and f not in fresh:
                fresh[f] = i
        if fresh:
            ev = self.problem.evaluate(coords[list(fresh.values())])
            part = len(self.parts)
            self.parts.append(ev)
            self.ledger.add(ev)
            for i, f in enumerate(fresh):
                self.rows[f] = (part, i)
        picks = [self.rows[f] for f in flat]
        return Evaluation.concat([self.parts[p].take(np.array([i])) for p, i in picks])

    def violation(self, ev: Evaluation) -> np.ndarray:
        """Total violation in scaled units (0 where feasible, inf where a slack or objective is not finite)."""
        scaled = np.maximum(0.0, -ev.slacks / self.slack_scale)
        total = scaled.sum(axis=1) if scaled.shape[1] else np.zeros(ev.n)
        total[~np.all(np.isfinite(ev.objectives), axis=1)] = np.inf
        total[ev.feasible] = 0.0
        return total

    def all(self) -> Evaluation:
        return Evaluation.concat(self.parts)


class _RelaxedModel:
    """Scaled objective and slacks of the relaxation, with forward-difference gradients.

    Each new point is evaluated together with its d perturbed copies (one per
    free variable) in one vectorised call, so SLSQP's value and gradient
    requests at that point cost a single evaluation instead of 2 (d + 1)
    single-point ones.
    """

    def __init__(self, problem: Any, u0: np.ndarray, free: np.ndarray, upper: np.ndarray,
                 score_scale: float, slack_scale: np.ndarray) -> None:
        self.problem = problem
        self.u0 = u0
        self.free = free
        self.upper = upper
        self.score_scale = score_scale
        self.slack_scale = slack_scale
        self._key: bytes | None = None
        self._values: tuple[float, np.ndarray, np.ndarray, np.ndarray] | None = None
        self.evaluations = 0
        self.best_x: np.ndarray | None = None
        self._best_rank = (np.inf, np.inf)
        """(total scaled violation, objective) of `best_x`: the least violating point, then the best score."""

    def full(self, x: np.ndarray) -> np.ndarray:
        """Return full index coordinates (one row per row of `x`) with the free ones set from `x`."""
        x = np.atleast_2d(x)
        u = np.tile(self.u0, (len(x), 1))
        u[:, self.free] = np.clip(x, 0.0, self.upper[self.free])
        return u

    def _at(self, x: np.ndarray) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
        key = np.asarray(x, dtype=float).tobytes()
        if key != self._key:
            x = np.asarray(x, dtype=float)
            # Step backwards at an upper bound, where a forward step would be clipped away.
            steps = np.where(x + RELAX_STEP <= self.upper[self.free], RELAX_STEP, -RELAX_STEP)
            points = np.vstack([x, x + np.diag(steps)])
            ev = self.problem.evaluate_relaxed(self.full(points))
            score = np.where(np.isfinite(ev.score), -ev.score / self.score_scale, PENALTY)
            slacks = ev.slacks / self.slack_scale if len(self.slack_scale) else np.zeros((len(points), 0))
            slacks = np.where(np.isfinite(slacks), slacks, -PENALTY)
            grad = (score[1:] - score[0]) / steps
            jac = ((slacks[1:] - slacks[0]) / steps[:, None]).T
            self._key = key
            self._values = (float(score[0]), grad, slacks[0], jac)
            self._remember(x, float(score[0]), slacks[0])
        return self._values

    def _remember(self, x: np.ndarray, score: float, slacks: np.ndarray) -> None:
        rank = (float(np.maximum(0.0, -slacks).sum()), score)
        if rank < self._best_rank:
            self._best_rank = rank
            self.best_x = x.copy()
        self.evaluations += 1
        if self.evaluations >= RELAX_MAX_EVALUATIONS:
            raise _BudgetSpent

    def objective(self, x: np.ndarray) -> float:
        return self._at(x)[0]

    def objective_grad(self, x: np.ndarray) -> np.ndarray:
        return self._at(x)[1]

    def slacks(self, x: np.ndarray) -> np.ndarray:
        return self._at(x)[2]

    def slacks_jac(self, x: np.ndarray) -> np.ndarray:
        return self._at(x)[3]


def _relaxed_optimum(problem: Any, u0: np.ndarray, free: np.ndarray, upper: np.ndarray,
                     score_scale: float, slack_scale: np.ndarray) -> np.ndarray:
    """Run SLSQP from `u0` over the free index coordinates and return the full relaxed point."""
    model = _RelaxedModel(problem, u0, free, upper, score_scale, slack_scale)
    constraints = ([{"type": "ineq", "fun": model.slacks, "jac": model.slacks_jac}]
                   if len(slack_scale) else [])
    bounds = [(0.0, float(upper[j])) for j in free]
    try:
        res = minimize(model.objective, u0[free], jac=model.objective_grad, method="SLSQP", bounds=bounds,
                       constraints=constraints, options={"maxiter": 200, "ftol": 1e-10})
        x = res.x
    except _BudgetSpent:
        x = model.best_x
    return model.full(x)[0]


def _rounded(u: np.ndarray, free: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """Lattice points around a relaxed point: floor/ceil corners, or nearest plus single flips."""
    low = np.floor(u).astype(np.int64)
    high = np.minimum(np.ceil(u), upper).astype(np.int64)
    nearest = np.rint(u).astype(np.int64)
    if len(free) <= MAX_CORNER_VARIABLES:
        corners = []
        for mask in range(1 << len(free)):
            point = nearest.copy()
            for bit, j in enumerate(free):
                point[j] = high[j] if mask >> bit & 1 else low[j]
            corners.append(point)
        return np.asarray(corners)
    points = [nearest]
    for j in free:
        flipped = nearest.copy()
        flipped[j] = high[j] if nearest[j] == low[j] else low[j]
        points.append(flipped)
    return np.asarray(points)


def _local_search(archive: Archive, start: np.ndarray, max_evaluations: int) -> bool:
    """Best-improvement walk over lattice neighbours; returns False if it hit the evaluation limit."""
    problem = archive.problem
    current = archive.evaluate(start)
    while True:
        if archive.size >= max_evaluations:
            return False
        nb = archive.evaluate(problem.space.neighbours(current.coords[0]))
        if current.feasible[0]:
            better = nb.feasible & (nb.score > current.score[0])
            if not better.any():
                return True
            pick = int(np.argmax(np.where(better, nb.score, -np.inf)))
        else:
            violation = archive.violation(nb)
            pick = int(np.argmin(violation))
            if not violation[pick] < archive.violation(current)[0]:
                return True
        current = nb.take(np.array([pick]))


def relax_search(problem: Any, top_k: int = 5, num_starts: int = 8, seed: int = 0, max_evaluations: int = 200_000,
                 progress: ProgressFn | None = None) -> OptimizeResult:
    """Solve the continuous relaxation, round, and improve by local integer search."""
    start_time = time.perf_counter()
    space = problem.space
    upper = np.asarray(space.shape, dtype=float) - 1.0
    free = np.flatnonzero(upper > 0)
    rng = np.random.default_rng(seed)
    starts = np.vstack([upper / 2.0] + [rng.uniform(0.0, upper) for _ in range(max(num_starts, 1) - 1)])
    archive = Archive(problem)

    probe = problem.evaluate_relaxed(starts)
    finite_scores = np.abs(probe.score[np.isfinite(probe.score)])
    score_scale = float(np.median(finite_scores)) if len(finite_scores) and np.median(finite_scores) > 0 else 1.0
    archive.slack_scale = _slack_scale(probe.slacks)

    seeds = []
    for i, u0 in enumerate(starts):
        u = _relaxed_optimum(problem, u0, free, upper, score_scale, archive.slack_scale) if len(free) else u0
        seeds.append(archive.evaluate(_rounded(u, free, upper)))
        if progress is not None:
            progress(i + 1, len(starts) + 1)
    complete = True
    for ev in _best_seeds(archive, Evaluation.concat(seeds), num_starts):
        complete = _local_search(archive, ev.coords[0], max_evaluations) and complete
    if progress is not None:
        progress(len(starts) + 1, len(starts) + 1)

    wall = time.perf_counter() - start_time
    everything = archive.all()
    rows = ranked_rows(problem, everything, top_k)
    if len(rows) == 0:
        return infeasible_result(problem, archive.ledger, "relax", archive.size, wall, nit=len(starts))
    candidates = [candidate_at(problem, everything, int(r)) for r in rows]
    top = candidates[0]
    status = Status.LOCAL_OPTIMUM if complete else Status.EVALUATION_LIMIT
    message = termination_message(status, num_points=archive.size, limit=max_evaluations)
    return OptimizeResult(top.config, top.objectives, top.slacks, status == Status.LOCAL_OPTIMUM, status, message,
                          archive.size, wall, "relax", candidates=candidates, problem=problem.name, nit=len(starts),
                          num_feasible=archive.ledger.num_feasible)


def _slack_scale(slacks: np.ndarray) -> np.ndarray:
    """Typical magnitude of each constraint's slack, so violations in bytes and seconds compare."""
    scale = np.ones(slacks.shape[1])
    for j in range(slacks.shape[1]):
        finite = np.abs(slacks[:, j][np.isfinite(slacks[:, j])])
        if len(finite) and np.median(finite) > 0:
            scale[j] = float(np.median(finite))
    return scale


def _best_seeds(archive: Archive, ev: Evaluation, count: int) -> list[Evaluation]:
    """Pick the `count` best distinct rounded points: feasible ones by score, then the least violating."""
    violation = archive.violation(ev)
    order = np.lexsort((-ev.score, violation))
    seen: set[int] = set()
    picks = []
    for row in order:
        flat = int(archive.problem.space.encode(ev.coords[row])[0])
        if flat not in seen:
            seen.add(flat)
            picks.append(ev.take(np.array([row])))
        if len(picks) == count:
            break
    return picks
