"""NSGA-II (pymoo) for Pareto fronts of lattices too large to enumerate.

pymoo is an optional extra (`pip install 'sglsim[moo]'`). The genome is the
index coordinates of the lattice (integer variables with rounding repair);
pymoo minimises, so objectives enter as -sign x value and constraints as
-slack (pymoo's G <= 0 is feasible). Every point NSGA-II evaluates is kept,
and the returned front is the exact non-dominated subset of all feasible
points evaluated, which is never worse than the final population's front.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from ...errors import ConfigError
from ..result import OptimizeResult, Status, candidate_at, infeasible_result, ranked_rows, termination_message
from .grid import ProgressFn
from .pareto import FrontAccumulator
from .relax import Archive


def _pymoo() -> Any:
    try:
        import pymoo  # noqa: F401
    except ImportError:
        raise ConfigError("invalid method nsga2: pymoo is not installed; install it with "
                          "pip install 'sglsim[moo]'") from None
    from pymoo.algorithms.moo.nsga2 import NSGA2
    from pymoo.core.problem import Problem as PymooProblem
    from pymoo.operators.crossover.sbx import SBX
    from pymoo.operators.mutation.pm import PM
    from pymoo.operators.repair.rounding import RoundingRepair
    from pymoo.operators.sampling.rnd import IntegerRandomSampling
    from pymoo.optimize import minimize

    return NSGA2, PymooProblem, SBX, PM, RoundingRepair, IntegerRandomSampling, minimize


def nsga2_search(problem: Any, population: int = 64, generations: int = 60, seed: int = 0, top_k: int = 5,
                 progress: ProgressFn | None = None) -> OptimizeResult:
    """Approximate the Pareto front with NSGA-II over the lattice's index coordinates."""
    NSGA2, PymooProblem, SBX, PM, RoundingRepair, IntegerRandomSampling, minimize = _pymoo()
    start = time.perf_counter()
    archive = Archive(problem)
    front = FrontAccumulator(problem)
    upper = np.asarray(problem.space.shape) - 1
    calls = [0]

    class LatticeProblem(PymooProblem):
        def __init__(self) -> None:
            super().__init__(n_var=len(upper), n_obj=len(problem.objectives),
                             n_ieq_constr=len(problem.constraint_names), xl=np.zeros(len(upper)), xu=upper,
                             vtype=int)

        def _evaluate(self, x: np.ndarray, out: dict, *args: Any, **kwargs: Any) -> None:
            coords = np.clip(np.rint(x).astype(np.int64), 0, upper)
            ev = archive.evaluate(coords)
            front.add(ev)
            out["F"] = np.where(np.isfinite(ev.objectives), -ev.objectives * problem.signs, 1e300)
            if len(problem.constraint_names):
                out["G"] = np.where(np.isfinite(ev.slacks), -ev.slacks, 1e300)
            calls[0] += 1
            if progress is not None:
                progress(min(calls[0], generations), generations)

    algorithm = NSGA2(pop_size=population, sampling=IntegerRandomSampling(),
                      crossover=SBX(prob=0.9, eta=15, vtype=float, repair=RoundingRepair()),
                      mutation=PM(eta=20, vtype=float, repair=RoundingRepair()), eliminate_duplicates=True)
    minimize(LatticeProblem(), algorithm, ("n_gen", generations), seed=seed, verbose=False)
    wall = time.perf_counter() - start
    pareto = front.candidates()
    if not pareto:
        return infeasible_result(problem, archive.ledger, "nsga2", archive.size, wall, nit=generations)
    everything = archive.all()
    best = [candidate_at(problem, everything, int(r)) for r in ranked_rows(problem, everything, top_k)]
    top = best[0]
    message = termination_message(Status.APPROXIMATE_FRONT, generations=generations, population=population,
                                  front_size=len(pareto))
    return OptimizeResult(top.config, top.objectives, top.slacks, True, Status.APPROXIMATE_FRONT, message,
                          archive.size, wall, "nsga2", candidates=best, pareto=pareto, problem=problem.name,
                          nit=generations, num_feasible=archive.ledger.num_feasible)
