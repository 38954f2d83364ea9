"""Deployment planning: the analytic problem per deployment shape, and the planner verification drives.

Each `DeploymentModel` carries the steady-state metrics of one deployment
shape as SymPy expressions (throughput, ttft, tpot, peak_memory, num_gpus,
request_rate, ...), with the values that bind every symbol other than the
decision variables, the frozen workload parameters and the arrival rate.
They are compiled once; frozen parameters and the arrival rate are passed
as arguments, so re-freezing does not recompile.

Two modes:

- *goodput* (the workload has no fixed arrival rate): for each
  configuration the arrival rate lambda* is the highest at which the
  predicted TTFT meets its target (a vectorised bisection on log lambda
  below the capacity `request_rate`), and throughput = n_out x lambda*;
- *fixed rate*: lambda is the workload's own rate (frozen), throughput is
  the capacity n_out x request_rate and TTFT is predicted at lambda.

Constraints (slack >= 0 is satisfied): `memory_limit` = margin x memory -
peak_memory, `ttft_slo`, `tpot_slo`, `max_gpus` = GPUs - num_gpus.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from ..config.scenario import Scenario
from ..errors import ConfigError, unknown
from ..hardware.gpus import get_gpu
from .deployment import num_gpus, scenario_for
from .objectives import CompiledMetric, ConstraintSpec, ObjectiveDirection, ObjectiveSpec, compile_metric
from .problem import Problem
from .rate_search import SLOSpec
from .result import Candidate, OptimizeResult
from .search import optimize
from .space import DecisionSpace, parse_domain
from .store import RunRecord

FROZEN_NAMES = ("avg_prompt_len", "avg_output_len", "cache_hit_rate", "avg_prefix_match", "prompt_len_scv")
"""Frozen workload parameters (ConfigSymbols attribute names); `arrival_rate` is handled by the mode."""
REQUIRED_METRICS = ("throughput", "ttft", "tpot", "peak_memory", "num_gpus", "request_rate")
OBJECTIVES: dict[str, tuple[ObjectiveDirection, str]] = {
    "throughput": (ObjectiveDirection.MAXIMIZE, "output tokens/s of the deployment"),
    "throughput_per_gpu": (ObjectiveDirection.MAXIMIZE, "output tokens/s per GPU"),
    "cost": (ObjectiveDirection.MINIMIZE, "USD per million output tokens at the GPUs' hourly price"),
    "ttft": (ObjectiveDirection.MINIMIZE, "time to first token, s"),
    "tpot": (ObjectiveDirection.MINIMIZE, "time per output token, s"),
}
DEFAULT_B_REQ = (1, 2, 4, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384, 448, 512)
BISECTION_STEPS = 24
"""Halvings of log(lambda) over six decades below capacity: lambda* to about 1e-6 relative."""
RATE_FLOOR = 1e-6
"""Lowest arrival rate tried, as a fraction of capacity (TTFT there is the zero-load TTFT)."""
SECONDS_PER_HOUR = 3600.0


@dataclass
class DeploymentModel:
    """Steady-state metric expressions of one deployment shape, with the values binding their constants."""

    deployment: str
    metrics: Mapping[str, Any]
    bind: Mapping[Any, float]
    variables: tuple[str, ...]
    """Decision-variable symbol names the metrics depend on."""
    frozen_symbols: Mapping[str, str]
    """Frozen-parameter attribute name (as in `FROZEN_NAMES`, plus `arrival_rate`) -> symbol name."""


@dataclass
class PlanSpec:
    """What the user asks: GPU budget, SLOs, memory, objective, and the decision space."""

    gpus: int
    slo: SLOSpec
    gpu_memory_bytes: float | None = None
    """Per-GPU memory budget; None uses the GPU preset's capacity."""
    memory_safety_margin: float = 0.9
    objective: str = "throughput"
    pareto: tuple[str, ...] = ("throughput", "tpot")
    goodput: bool = True
    domains: dict[str, Any] = field(default_factory=dict)
    """Domain overrides by variable name (see `parse_domain`)."""
    method: str = "auto"
    top_k: int = 5

    def __post_init__(self) -> None:
        for name in (self.objective, *self.pareto):
            if name not in OBJECTIVES:
                raise unknown("objective", name, OBJECTIVES)
        if self.gpus < 1:
            raise ConfigError(f"invalid gpus {self.gpus}: expected at least 1")
        if not 0 < self.memory_safety_margin <= 1:
            raise ConfigError(f"invalid memory safety margin {self.memory_safety_margin}: expected a fraction in (0, 1]")

    @property
    def objectives(self) -> list[str]:
        """The primary objective first, then the Pareto objectives not already listed."""
        return [self.objective] + [p for p in self.pareto if p != self.objective]


def default_domains(variables: Sequence[str], gpus: int, gpus_per_node: int) -> dict[str, Any]:
    """Domains of the decision variables sized for a GPU budget."""
    max_tp = 1
    while max_tp * 2 <= min(gpus, gpus_per_node):
        max_tp *= 2
    table: dict[str, Any] = {
        "TP": {"pow2": [1, max_tp]}, "TP_p": {"pow2": [1, max_tp]}, "TP_d": {"pow2": [1, max_tp]},
        "N_r": {"range": [1, gpus]}, "N_p": {"range": [1, max(gpus - 1, 1)]},
        "N_d": {"range": [1, max(gpus - 1, 1)]},
        "c": {"pow2": [2048, 16384]}, "B_tok": [16384], "B_req": list(DEFAULT_B_REQ), "DP": [1], "EP": [1],
    }
    return {v: table.get(v, [1]) for v in variables}


class CompiledDeployment:
    """The metrics of one deployment compiled once over decision variables, frozen parameters and lambda."""

    def __init__(self, model: DeploymentModel) -> None:
        missing = [m for m in REQUIRED_METRICS if m not in model.metrics]
        if missing:
            raise ConfigError(f"invalid deployment model {model.deployment}: missing metrics {missing}")
        self.model = model
        self.frozen_args = dict(model.frozen_symbols)
        arguments = list(model.variables) + list(self.frozen_args.values())
        self.fns: dict[str, CompiledMetric] = {
            name: compile_metric(name, model.metrics[name], arguments, model.bind) for name in REQUIRED_METRICS}

    def evaluate(self, metric: str, values: Mapping[str, Any], frozen: Mapping[str, float], n: int,
                 arrival_rate: Any = None) -> np.ndarray:
        args = dict(values)
        for name, symbol in self.frozen_args.items():
            args[symbol] = arrival_rate if name == "arrival_rate" else frozen.get(name, 0.0)
        return self.fns[metric](args, n)


class RateAtSLO:
    """Per configuration, the highest arrival rate whose predicted TTFT meets the target (0 if none)."""

    def __init__(self, compiled: CompiledDeployment, frozen: Mapping[str, float], ttft_s: float | None) -> None:
        self.compiled, self.frozen, self.ttft_s = compiled, frozen, ttft_s
        self._last: tuple[Any, np.ndarray] | None = None

    def __call__(self, values: Mapping[str, Any], n: int) -> np.ndarray:
        if self._last is not None and self._last[0] is values:
            return self._last[1]
        capacity = self.compiled.evaluate("request_rate", values, self.frozen, n, arrival_rate=1.0)
        capacity = np.where(np.isfinite(capacity) & (capacity > 0), capacity, 0.0)
        high = capacity * (1.0 - RATE_FLOOR)
        if self.ttft_s is None:
            rate = high
        else:
            low = capacity * RATE_FLOOR
            meets = lambda lam: self.compiled.evaluate("ttft", values, self.frozen, n, lam) <= self.ttft_s  # noqa: E731
            at_high, at_low = meets(high), meets(low)
            lo, hi = np.log(np.maximum(low, 1e-300)), np.log(np.maximum(high, 1e-300))
            for _ in range(BISECTION_STEPS):
                mid = 0.5 * (lo + hi)
                ok = meets(np.exp(mid))
                lo, hi = np.where(ok, mid, lo), np.where(ok, hi, mid)
            rate = np.where(at_high, high, np.where(at_low, np.exp(lo), 0.0))
            rate = np.where(capacity > 0, rate, 0.0)
        self._last = (values, rate)
        return rate


class DeploymentPlanner:
    """Ranks deployments analytically and turns candidates into scenarios (the `Planner` of `verify`)."""

    def __init__(self, base: Scenario, models: Sequence[DeploymentModel], spec: PlanSpec,
                 verify_requests: int = 2000) -> None:
        self.base, self.spec, self.verify_requests = base, spec, verify_requests
        self.gpu = get_gpu(base.gpu)
        self.memory_bytes = spec.gpu_memory_bytes or self.gpu.mem_capacity_bytes
        self.compiled = {m.deployment: CompiledDeployment(m) for m in models}
        self._native_rate: float | None = None

    # ----- the analytic problem -----

    def space(self, deployment: str) -> DecisionSpace:
        variables = self.compiled[deployment].model.variables
        domains = default_domains(variables, self.spec.gpus, self.gpu.gpus_per_node)
        unknown_vars = sorted(set(self.spec.domains) - {v for c in self.compiled.values() for v in c.model.variables})
        if unknown_vars:
            raise ConfigError(f"invalid domain for {unknown_vars[0]}: not a decision variable of any deployment "
                              f"({', '.join(sorted({v for c in self.compiled.values() for v in c.model.variables}))})")
        domains.update({k: v for k, v in self.spec.domains.items() if k in variables})
        return DecisionSpace({name: parse_domain(name, spec) for name, spec in domains.items()})

    def _metric_fn(self, deployment: str, frozen: Mapping[str, float], name: str, rate: RateAtSLO | None) -> Any:
        compiled = self.compiled[deployment]
        n_out = frozen.get("avg_output_len", 0.0)

        def lam(values: Mapping[str, Any], n: int) -> Any:
            return rate(values, n) if rate is not None else frozen.get("arrival_rate", 0.0)

        def fn(values: Mapping[str, Any]) -> np.ndarray:
            n = len(next(iter(values.values())))
            if name == "tpot":
                return compiled.evaluate("tpot", values, frozen, n, lam(values, n))
            if name == "ttft":
                at = lam(values, n)
                if rate is not None:
                    # lambda* = 0 means no load meets the target: report the zero-load TTFT.
                    capacity = compiled.evaluate("request_rate", values, frozen, n, 1.0)
                    at = np.maximum(at, capacity * RATE_FLOOR)
                return compiled.evaluate("ttft", values, frozen, n, at)
            gpus = compiled.evaluate("num_gpus", values, frozen, n, 1.0)
            if rate is not None:
                tok_s = n_out * rate(values, n)
            else:
                tok_s = compiled.evaluate("throughput", values, frozen, n, lam(values, n))
            if name == "throughput":
                return tok_s
            if name == "throughput_per_gpu":
                return tok_s / gpus
            return gpus * self.gpu.cost_per_hour_usd / SECONDS_PER_HOUR / tok_s * 1e6
        return fn

    def problem(self, deployment: str, frozen: Mapping[str, float]) -> Problem:
        """The analytic problem of one deployment under frozen workload parameters."""
        spec = self.spec
        rate = RateAtSLO(self.compiled[deployment], frozen, spec.slo.ttft_s) if spec.goodput else None
        objectives = [ObjectiveSpec(name, self._metric_fn(deployment, frozen, name, rate), OBJECTIVES[name][0],
                                    OBJECTIVES[name][1]) for name in spec.objectives]
        compiled = self.compiled[deployment]

        def memory(values: Mapping[str, Any]) -> np.ndarray:
            n = len(next(iter(values.values())))
            peak = compiled.evaluate("peak_memory", values, frozen, n, frozen.get("arrival_rate", 1.0))
            return spec.memory_safety_margin * self.memory_bytes - peak

        def gpus(values: Mapping[str, Any]) -> np.ndarray:
            n = len(next(iter(values.values())))
            return spec.gpus - compiled.evaluate("num_gpus", values, frozen, n, 1.0)

        constraints = [ConstraintSpec("memory_limit", memory,
                                      f"peak memory per GPU <= {spec.memory_safety_margin:g} x "
                                      f"{self.memory_bytes / 1e9:g} GB"),
                       ConstraintSpec("max_gpus", gpus, f"GPUs <= {spec.gpus}")]
        if spec.slo.ttft_s is not None:
            # In goodput mode lambda* meets the TTFT target whenever any load does, so the constraint
            # reduces to the zero-load TTFT (one evaluation instead of a bisection).
            ttft = (self._zero_load_ttft(deployment, frozen) if spec.goodput
                    else self._metric_fn(deployment, frozen, "ttft", None))
            constraints.append(ConstraintSpec("ttft_slo", lambda v: spec.slo.ttft_s - ttft(v),
                                              f"TTFT <= {spec.slo.ttft_s:g} s"))
        if spec.slo.tpot_s is not None:
            tpot = self._metric_fn(deployment, frozen, "tpot", rate)
            constraints.append(ConstraintSpec("tpot_slo", lambda v: spec.slo.tpot_s - tpot(v),
                                              f"TPOT <= {spec.slo.tpot_s:g} s"))
        return Problem(self.space(deployment), objectives, constraints, name=deployment)

    def _zero_load_ttft(self, deployment: str, frozen: Mapping[str, float]) -> Any:
        compiled = self.compiled[deployment]

        def fn(values: Mapping[str, Any]) -> np.ndarray:
            n = len(next(iter(values.values())))
            capacity = compiled.evaluate("request_rate", values, frozen, n, 1.0)
            return compiled.evaluate("ttft", values, frozen, n, capacity * RATE_FLOOR)
        return fn

    def problems(self, frozen: Mapping[str, float]) -> list[Problem]:
        return [self.problem(d, frozen) for d in self.compiled]

    # ----- the Planner protocol of verification -----

    def rank(self, frozen: Mapping[str, float], progress: Any = None) -> OptimizeResult:
        return optimize(self.problems(frozen), self.spec.method, top_k=self.spec.top_k, progress=progress)

    def predict(self, candidate: Candidate, frozen: Mapping[str, float]) -> dict[str, float]:
        """Predicted figures of one configuration (the analytic side of the side-by-side table)."""
        compiled = self.compiled[candidate.problem]
        values = {k: np.array([float(v)]) for k, v in candidate.config.items()}
        rate = RateAtSLO(compiled, frozen, self.spec.slo.ttft_s) if self.spec.goodput else None
        lam = rate(values, 1) if rate is not None else np.array([frozen.get("arrival_rate", 0.0)])
        out = {name: float(self._metric_fn(candidate.problem, frozen, name, rate)(values)[0]) for name in OBJECTIVES}
        return {"ttft_s": out["ttft"], "tpot_s": out["tpot"], "throughput_tok_s": out["throughput"],
                "throughput_tok_s_per_gpu": out["throughput_per_gpu"], "cost_usd_per_mtok": out["cost"],
                "rate_req_s": float(lam[0]),
                "capacity_req_s": float(compiled.evaluate("request_rate", values, frozen, 1, 1.0)[0]),
                "peak_memory_bytes": float(compiled.evaluate("peak_memory", values, frozen, 1, 1.0)[0]),
                "num_gpus": float(compiled.evaluate("num_gpus", values, frozen, 1, 1.0)[0])}

    def scenario(self, candidate: Candidate, rate_req_s: float | None) -> dict:
        workload: dict[str, Any] = {"num_requests": self._num_requests()}
        if rate_req_s is not None:
            if self.base.workload.trace is not None and self.base.workload.rate is None:
                workload["time_scale"] = self.native_rate() / rate_req_s
            else:
                workload["rate"] = rate_req_s
        scenario = scenario_for(self.base, candidate.problem, candidate.config, workload)
        return scenario.model_dump()

    def simulated_objective(self, candidate: Candidate, record: RunRecord) -> float:
        name = self.spec.objective
        tok_s = record.output_throughput_tok_s
        if name == "throughput":
            return tok_s
        if name == "throughput_per_gpu":
            return tok_s / record.num_gpus
        if name == "cost":
            return -record.num_gpus * self.gpu.cost_per_hour_usd / SECONDS_PER_HOUR / max(tok_s, 1e-300) * 1e6
        stats = record.ttft_s if name == "ttft" else record.tpot_s
        pct = self.spec.slo.ttft_percentile if name == "ttft" else self.spec.slo.tpot_percentile
        return -(stats.get(pct) or float("inf"))

    def refreeze(self, frozen: Mapping[str, float], record: RunRecord) -> dict[str, float]:
        out = dict(frozen)
        for name in FROZEN_NAMES:
            if name in record.workload:
                out[name] = record.workload[name]
        if not self.spec.goodput and "arrival_rate" in record.workload:
            out["arrival_rate"] = record.workload["arrival_rate"]
        return out

    # ----- workload helpers -----

    def _num_requests(self) -> int:
        wl = self.base.workload
        return min(self.verify_requests, wl.num_requests) if wl.num_requests else self.verify_requests

    def native_rate(self) -> float:
        """Mean arrival rate (req/s) of the trace's first requests at time_scale 1."""
        if self._native_rate is None:
            from ..workload.traces import load_trace

            wl = self.base.workload
            trace = load_trace(wl.trace, wl.trace_format)
            if trace.arrival_s is None:
                raise ConfigError(f"trace {wl.trace} has no timestamps to scale: give --rate or --concurrency")
            arrivals = np.sort(trace.arrival_s[:self._num_requests()])
            span = float(arrivals[-1] - arrivals[0])
            if not span > 0:
                raise ConfigError(f"trace {wl.trace}: its first requests all arrive at once; give --rate instead")
            self._native_rate = (len(arrivals) - 1) / span
        return self._native_rate

    def gpus_of(self, candidate: Candidate) -> int:
        return num_gpus(candidate.problem, candidate.config, self.base)
