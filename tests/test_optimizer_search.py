"""Search methods on problems whose answers are known by hand or by brute force."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import sympy
from hypothesis import given, settings
from hypothesis import strategies as st

from sglsim.errors import ConfigError
from sglsim.optimizer import (DecisionSpace, Domain, MultiObjectiveOptimizer, ObjectiveDirection, ObjectiveSpec,
                              Problem, Status, optimize)
from sglsim.optimizer.methods.pareto import nondominated

N, TP = sympy.symbols("N TP", positive=True, integer=True)


def serving_problem(gpu_budget: int = 10) -> Problem:
    """N servers of TP GPUs; each serves 100 x TP tok/s; TP >= 2 for the weights; N x TP <= budget."""
    space = {"N": range(1, 9), "TP": Domain.powers_of_two("TP", 1, 8)}
    objectives = [ObjectiveSpec("throughput", 100 * N * TP, ObjectiveDirection.MAXIMIZE)]
    constraints = [("memory", TP - sympy.Rational(3, 2)), ("max_gpus", gpu_budget + sympy.Rational(1, 2) - N * TP)]
    return Problem(DecisionSpace(space), objectives, constraints)


def test_grid_finds_hand_optimum():
    # N x TP <= 10 with TP in {2, 4, 8}: 5 x 2 = 10 GPUs beats 2 x 4 and 1 x 8 (8 GPUs).
    result = optimize(serving_problem(), "grid")
    assert result.success and result.status == Status.OPTIMAL
    assert result.x == {"N": 5, "TP": 2}
    assert result.fun == {"throughput": 1000.0}
    # Slacks: memory 2 - 1.5, GPUs 10.5 - 10.
    assert result.slacks == {"memory": 0.5, "max_gpus": 0.5}
    assert result.nfev == 8 * 4
    # TP >= 2 and N x TP <= 10: (1..5) x 2, (1..2) x 4 and 1 x 8.
    assert result.num_feasible == 8
    # Runners-up: the three 8-GPU points tie at 800 tok/s and keep lattice order (N slowest).
    assert [c.config for c in result.candidates[1:4]] == [{"N": 1, "TP": 8}, {"N": 2, "TP": 4}, {"N": 4, "TP": 2}]


def test_relax_reaches_hand_optimum():
    result = optimize(serving_problem(), "relax")
    assert result.success and result.status == Status.LOCAL_OPTIMUM
    assert result.fun["throughput"] == 1000.0
    assert result.nfev <= 32


def test_small_chunks_give_same_answer():
    whole = optimize(serving_problem(), "grid")
    chunked = optimize(serving_problem(), "grid", chunk_points=3)
    assert chunked.x == whole.x
    assert [c.config for c in chunked.candidates] == [c.config for c in whole.candidates]


def test_infeasible_names_binding_constraint():
    # One GPU cannot hold the weights (TP >= 2) whatever N is.
    result = optimize(serving_problem(gpu_budget=1), "grid")
    assert not result.success and result.status == Status.INFEASIBLE
    assert result.x is None
    assert result.infeasibility["binding"] == "max_gpus"
    assert "binding constraint max_gpus" in result.message
    # TP = 1 breaks memory (and fits the budget only at N = 1); every other point breaks max_gpus.
    counts = result.infeasibility["counts"]
    assert counts["max_gpus"]["violated"] == 31
    assert counts["memory"]["violated"] == 8
    assert counts["max_gpus"]["sole"] == 24


def test_relax_infeasible_names_binding_constraint():
    result = optimize(serving_problem(gpu_budget=1), "relax")
    assert result.status == Status.INFEASIBLE
    assert result.infeasibility["binding"] in ("max_gpus", "memory")
    assert result.infeasibility["binding"] in result.message


def test_unknown_symbol_is_rejected():
    x = sympy.Symbol("x")
    with pytest.raises(ConfigError, match=r"symbols \['x'\] are neither decision variables"):
        Problem({"N": [1, 2]}, [ObjectiveSpec("f", N * x)])


def test_callable_objectives():
    space = {"a": range(0, 5), "b": range(0, 5)}
    problem = Problem(space, [ObjectiveSpec("f", lambda v: -(v["a"] - 3) ** 2 - (v["b"] - 1) ** 2)],
                      [("sum", lambda v: 5 - v["a"] - v["b"])])
    assert optimize(problem, "grid").x == {"a": 3, "b": 1}


def test_nan_objective_is_infeasible():
    problem = Problem({"a": [0, 1, 2]}, [ObjectiveSpec("f", lambda v: np.where(v["a"] == 2, np.nan, v["a"]))])
    result = optimize(problem, "grid")
    assert result.x == {"a": 1}


def test_seed_spelling_grid_and_pareto():
    opt = MultiObjectiveOptimizer(
        [ObjectiveSpec("throughput", 100 * N * TP, ObjectiveDirection.MAXIMIZE),
         ObjectiveSpec("gpus", N * TP, ObjectiveDirection.MINIMIZE)],
        constraints=[("max_gpus", 10.5 - N * TP)])
    space = {N: range(1, 5), TP: [1, 2, 4]}
    best = opt.grid_search(space)
    assert best.fun["throughput"] == 800.0
    front = opt.pareto_grid_search(space)
    # Throughput is proportional to GPUs, so every distinct GPU count is on the front.
    gpu_counts = sorted({c.objectives["gpus"] for c in front.pareto})
    assert gpu_counts == [1, 2, 3, 4, 6, 8]


def test_objective_by_metric_name():
    # ObjectiveSpec(name, direction) takes the expression of that metric from `metrics`.
    metrics = {"throughput": 100 * N * TP}
    opt = MultiObjectiveOptimizer([ObjectiveSpec("throughput", ObjectiveDirection.MAXIMIZE)],
                                  constraints=[("max_gpus", 4 - N * TP)], metrics=metrics)
    best = opt.grid_search({N: range(1, 5), TP: [1, 2]})
    assert best.fun == {"throughput": 400.0}
    with pytest.raises(ConfigError, match="no expression given"):
        MultiObjectiveOptimizer([ObjectiveSpec("throughput", ObjectiveDirection.MAXIMIZE)])


# ----- Pareto fronts against brute force -----

def brute_front(values: np.ndarray) -> set[int]:
    keep = set()
    for i, a in enumerate(values):
        dominated = any(np.all(b >= a) and np.any(b > a) for j, b in enumerate(values) if j != i)
        if not dominated:
            keep.add(i)
    return keep


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6), st.integers(0, 6)), min_size=1, max_size=40))
def test_nondominated_matches_brute_force(rows):
    values = np.array(rows, dtype=float)
    assert set(np.flatnonzero(nondominated(values))) == brute_front(values)


def tradeoff_problem() -> Problem:
    """Throughput against latency over (batch, tp): a real trade-off with a memory cut."""
    b, t = sympy.symbols("b t", positive=True, integer=True)
    space = {"b": range(1, 17), "t": [1, 2, 4, 8]}
    objectives = [ObjectiveSpec("throughput", b * t / (1 + b / 8), ObjectiveDirection.MAXIMIZE),
                  ObjectiveSpec("latency", (1 + b / 8) / t + t / 10, ObjectiveDirection.MINIMIZE)]
    return Problem(space, objectives, [("memory", 40 - b * 8 / t)])


def brute_force_front(problem: Problem) -> set[tuple]:
    points = []
    for combo in itertools.product(*(d.values for d in problem.space.domains)):
        config = dict(zip(problem.space.names, combo))
        ev = problem.evaluate(problem.space.coords_of(config))
        if ev.feasible[0]:
            points.append((combo, ev.objectives[0] * problem.signs))
    values = np.array([p[1] for p in points])
    return {points[i][0] for i in brute_front(values)}


def front_of(result) -> set[tuple]:
    return {tuple(c.config.values()) for c in result.pareto}


def test_pareto_front_matches_brute_force():
    problem = tradeoff_problem()
    result = optimize(problem, "pareto", chunk_points=5)
    assert result.status == Status.EXACT_FRONT
    assert front_of(result) == brute_force_front(problem)


def test_scalarised_winners_lie_on_front():
    problem = tradeoff_problem()
    exact = front_of(optimize(problem, "pareto"))
    for method in ("weighted_sum", "epsilon_constraint"):
        result = optimize(problem, method)
        assert result.pareto, method
        assert front_of(result) <= exact, method
    # Epsilon-constraint reaches more of the front than the weighted sum's supported points.
    eps = optimize(problem, "epsilon_constraint", num_levels=20)
    assert len(front_of(eps)) >= len(front_of(optimize(problem, "weighted_sum")))


def test_nsga2_front_is_exact_subset():
    pytest.importorskip("pymoo")
    problem = tradeoff_problem()
    exact = front_of(optimize(problem, "pareto"))
    result = optimize(problem, "nsga2", population=24, generations=30)
    assert result.status == Status.APPROXIMATE_FRONT
    assert front_of(result) <= exact
    assert len(front_of(result)) >= len(exact) // 2


def test_problem_list_merges_by_first_objective():
    small = serving_problem(gpu_budget=6)
    small.name = "small"
    big = serving_problem(gpu_budget=10)
    big.name = "big"
    result = optimize([small, big], "grid")
    assert result.problem == "big"
    assert result.fun["throughput"] == 1000.0
    assert result.candidates[0].problem == "big"


def test_unknown_method_is_rejected():
    with pytest.raises(ConfigError, match="unknown method 'simplex'"):
        optimize(serving_problem(), "simplex")


def test_grid_refuses_too_large_lattice():
    with pytest.raises(ConfigError, match="more than max_grid_points 10"):
        optimize(serving_problem(), "grid", max_grid_points=10)
    assert optimize(serving_problem(), "auto", max_grid_points=10).method == "relax"


def test_relax_matches_grid_on_larger_lattice():
    # Four variables, 40,000 points: maximise a concave throughput-like score under a budget.
    a, b, c, d = sympy.symbols("a b c d", positive=True, integer=True)
    space = {"a": range(1, 21), "b": range(1, 21), "c": range(1, 11), "d": [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]}
    score = sympy.sqrt(a) * b / (1 + b / 10) + 3 * sympy.log(c) + d / (1 + d / 64)
    problem = Problem(space, [ObjectiveSpec("score", score)], [("budget", 40 - a - b - c - d / 32)])
    exact = optimize(problem, "grid")
    relaxed = optimize(problem, "relax")
    assert relaxed.status == Status.LOCAL_OPTIMUM
    assert relaxed.fun["score"] == pytest.approx(exact.fun["score"], rel=0.02)
    assert relaxed.nfev < exact.nfev / 10
