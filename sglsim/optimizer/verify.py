"""Verification by simulation: re-simulate the analytic top candidates, re-freeze, repeat until stable.

The loop, with frozen workload parameters theta_0 to start:

1. rank configurations analytically with theta_i (top-k and Pareto points);
2. stop if the top-k ranking equals the previous iteration's (converged);
3. simulate every candidate not simulated yet on the user's workload: a
   rate search for the highest rate that meets the SLOs when the workload
   has no fixed arrival rate, else one run at its own arrivals;
4. theta_{i+1} = the workload parameters measured in the run of the best
   candidate in simulation (its operating point is the answer's);
5. repeat, at most `max_iterations` rankings.

The chosen configuration is the best candidate that meets the SLOs *in simulation*,
ranked by the simulated value of the objective, never by the prediction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Hashable, Mapping, Protocol

from .rate_search import RateSearchResult, SLOSpec, describe, fixed_check, rate_search, search_record
from .result import Candidate, OptimizeResult
from .runner import SimulationRunner
from .store import RunRecord


FALLBACK_START_RATE = 1.0
"""Rate search start (req/s) when the model predicts no positive finite rate."""


class Planner(Protocol):
    """The analytic side of verification: ranks configurations and turns one into a scenario."""

    def rank(self, frozen: Mapping[str, float]) -> OptimizeResult:
        """Search the configurations analytically under frozen workload parameters."""

    def predict(self, candidate: Candidate, frozen: Mapping[str, float]) -> dict[str, float]:
        """Predicted ttft_s, tpot_s, throughput_tok_s and rate_req_s (the rate search's start)."""

    def scenario(self, candidate: Candidate, rate_req_s: float | None) -> dict:
        """Scenario dict simulating the candidate at a request rate (None: the workload's own arrivals)."""

    def simulated_objective(self, candidate: Candidate, record: RunRecord) -> float:
        """Return the objective's simulated value, signed so that larger is better."""

    def refreeze(self, frozen: Mapping[str, float], record: RunRecord) -> dict[str, float]:
        """Frozen parameters updated from a simulated run."""


@dataclass
class VerificationSettings:
    top_k: int = 5
    """Analytic candidates simulated per iteration."""
    max_pareto: int = 5
    """Pareto points simulated besides the top-k (evenly spaced along the front)."""
    max_iterations: int = 3
    rate_search: bool = True
    """Search the highest rate meeting the SLOs (else one run at the workload's arrivals)."""
    tolerance: float = 0.05
    """Relative precision of the rate search."""


@dataclass
class VerifiedCandidate:
    """One simulated candidate: predictions and simulated figures side by side."""

    candidate: Candidate
    predicted: dict[str, float]
    search: RateSearchResult
    iteration: int
    objective: float = 0.0
    """Simulated objective (to maximise); 0 when the SLOs are never met."""

    @property
    def meets_slo(self) -> bool:
        return self.search.record is not None

    @property
    def record(self) -> RunRecord | None:
        return search_record(self.search)

    def simulated(self, slo: SLOSpec) -> dict[str, Any]:
        record = self.record
        if record is None:
            return {}
        return {
            "ttft_s": record.ttft_s.get(slo.ttft_percentile), "tpot_s": record.tpot_s.get(slo.tpot_percentile),
            "ttft_mean_s": record.ttft_s.get("mean"), "tpot_mean_s": record.tpot_s.get("mean"),
            "throughput_tok_s": record.output_throughput_tok_s,
            "throughput_tok_s_per_gpu": record.output_tok_s_per_gpu,
            "request_rate_req_s": record.request_throughput_req_s, "num_gpus": record.num_gpus,
        }

    def to_dict(self, slo: SLOSpec) -> dict[str, Any]:
        return {"config": self.candidate.config, "deployment": self.candidate.problem,
                "predicted": self.predicted, "simulated": self.simulated(slo), "meets_slo": self.meets_slo,
                "objective_simulated": self.objective, "first_iteration": self.iteration, **describe(self.search)}


@dataclass
class Verification:
    """Outcome of the loop: every simulated candidate ranked by simulation, and the iteration history."""

    ranked: list[VerifiedCandidate]
    iterations: list[dict[str, Any]]
    converged: bool
    analytic: OptimizeResult
    simulations: int = 0
    cached_runs: int = 0
    frozen: dict[str, float] = field(default_factory=dict)

    @property
    def best(self) -> VerifiedCandidate | None:
        return self.ranked[0] if self.ranked and self.ranked[0].meets_slo else None


def candidate_key(c: Candidate) -> Hashable:
    return (c.problem, tuple(sorted(c.config.items())))


def _spread(points: list[Candidate], count: int) -> list[Candidate]:
    """`count` points evenly spaced along a front sorted by its first objective (both ends included).

    Points with the same objective values as an earlier one (ties that differ
    only in knobs the model does not see) are skipped.
    """
    seen: set[tuple] = set()
    distinct = []
    for p in points:
        key = (p.problem, tuple(sorted(p.objectives.items())))
        if key not in seen:
            seen.add(key)
            distinct.append(p)
    points = distinct
    if len(points) <= count:
        return list(points)
    if count <= 1:
        return points[:count]
    step = (len(points) - 1) / (count - 1)
    return [points[round(i * step)] for i in range(count)]


def verify(planner: Planner, runner: SimulationRunner, slo: SLOSpec, frozen: Mapping[str, float],
           settings: VerificationSettings | None = None) -> Verification:
    """Run the verification loop (see the module docstring)."""
    settings = settings or VerificationSettings()
    frozen = dict(frozen)
    verified: dict[Hashable, VerifiedCandidate] = {}
    iterations: list[dict[str, Any]] = []
    previous: list[Hashable] | None = None
    converged = False
    analytic: OptimizeResult | None = None
    for iteration in range(1, settings.max_iterations + 1):
        analytic = planner.rank(frozen)
        top = analytic.candidates[:settings.top_k]
        ranking = [candidate_key(c) for c in top]
        iterations.append({"iteration": iteration, "frozen": dict(frozen),
                           "ranking": [dict(c.config, deployment=c.problem) for c in top]})
        if not top or ranking == previous:
            converged = bool(top)
            break
        chosen = top + [p for p in _spread(analytic.pareto, settings.max_pareto) if candidate_key(p) not in ranking]
        fresh = [c for c in chosen if candidate_key(c) not in verified]
        searches = {candidate_key(c): _search(planner, c, frozen, slo, settings) for c in fresh}
        results = runner.run(searches)
        for c in fresh:
            verified[candidate_key(c)] = VerifiedCandidate(c, {}, results[candidate_key(c)], iteration)
        for vc in verified.values():
            vc.objective = planner.simulated_objective(vc.candidate, vc.record) if vc.meets_slo else 0.0
        leader = _ranked(verified.values())[0]
        if leader.record is not None:
            frozen = planner.refreeze(frozen, leader.record)
        previous = ranking
    assert analytic is not None
    for vc in verified.values():
        vc.predicted = planner.predict(vc.candidate, frozen)
    return Verification(_ranked(verified.values()), iterations, converged, analytic, runner.simulated,
                        runner.store.hits, frozen)


def _search(planner: Planner, c: Candidate, frozen: Mapping[str, float], slo: SLOSpec,
            settings: VerificationSettings) -> Any:
    if not settings.rate_search:
        return fixed_check(planner.scenario(c, None), slo)
    start = planner.predict(c, frozen).get("rate_req_s", 0.0)
    if not (start > 0 and math.isfinite(start)):
        start = FALLBACK_START_RATE
    return rate_search(lambda rate: planner.scenario(c, rate), slo, start, settings.tolerance)


def _ranked(items: Any) -> list[VerifiedCandidate]:
    """Candidates meeting the SLOs first, by simulated objective (ties: earlier iteration, analytic order)."""
    items = list(items)
    return sorted(items, key=lambda vc: (not vc.meets_slo, -vc.objective, vc.iteration))
