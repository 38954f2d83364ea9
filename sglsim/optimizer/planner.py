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
from ..limits import MAX_GPUS
from .deployment import scenario_for
from .objectives import ConstraintSpec, ObjectiveDirection, ObjectiveSpec, compile_metrics
from .problem import Problem
from .rate_search import SLOSpec
from .result import Candidate, OptimizeResult
from .search import optimize
from .space import DecisionSpace, parse_domain
from .store import RunRecord

FROZEN_NAMES = ("avg_prompt_len", "avg_output_len", "cache_hit_rate", "avg_prefix_match", "prompt_len_scv",
                "output_len_scv")
"""Frozen workload parameters (ConfigSymbols attribute names); `arrival_rate` is handled by the mode."""
REQUIRED_METRICS = ("ttft", "tpot", "peak_memory", "num_gpus", "request_rate")
COMPILED_METRICS = REQUIRED_METRICS
"""Metrics compiled (together, sharing subexpressions); throughput is n_out x request_rate in both modes."""
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
"""Lowest arrival rate the bisection tries, as a fraction of capacity."""
ZERO_LOAD_RATE = 1e-9
"""Arrival rate (req/s) standing for zero load: TTFT there is the TTFT of an idle deployment."""
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
    """The sizing request: GPU budget, SLOs, memory, objective, and the decision space."""

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
        if not 1 <= self.gpus <= MAX_GPUS:
            raise ConfigError(f"invalid gpus {self.gpus}: expected 1 to {MAX_GPUS:,}")
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
    """The metrics of one deployment compiled once, together, over decision variables, frozen parameters and lambda."""

    def __init__(self, model: DeploymentModel) -> None:
        missing = [m for m in REQUIRED_METRICS if m not in model.metrics]
        if missing:
            raise ConfigError(f"invalid deployment model {model.deployment}: missing metrics {missing}")
        self.model = model
        self.frozen_args = dict(model.frozen_symbols)
        arguments = list(model.variables) + list(self.frozen_args.values())
        self.function = compile_metrics([model.metrics[m] for m in COMPILED_METRICS], arguments, model.bind)

    def evaluate(self, values: Mapping[str, Any], frozen: Mapping[str, float], n: int,
                 arrival_rate: Any) -> dict[str, np.ndarray]:
        """Evaluate every compiled metric at decision arrays `values`, frozen parameters and arrival rate(s)."""
        args = dict(values)
        for name, symbol in self.frozen_args.items():
            args[symbol] = arrival_rate if name == "arrival_rate" else frozen.get(name, 0.0)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            outputs = self.function(args)
        return {name: np.broadcast_to(np.asarray(out, dtype=float), (n,)) for name, out in
                zip(COMPILED_METRICS, outputs)}


class DeploymentEvaluator:
    """Figures of one deployment under frozen parameters, cached per batch of configurations.

    `constraints(values)` evaluates at the load the constraints use: zero
    load in goodput mode, else the frozen rate. `objectives(values)` finds
    lambda* in goodput mode and evaluates there.
    """

    def __init__(self, compiled: CompiledDeployment, frozen: Mapping[str, float], spec: "PlanSpec") -> None:
        self.compiled, self.frozen, self.spec = compiled, dict(frozen), spec
        self._cache: dict[str, tuple[Any, dict[str, np.ndarray]]] = {}

    def _memo(self, kind: str, values: Mapping[str, Any], fn: Any) -> dict[str, np.ndarray]:
        hit = self._cache.get(kind)
        if hit is not None and hit[0] is values:
            return hit[1]
        out = fn(values, len(next(iter(values.values()))))
        self._cache[kind] = (values, out)
        return out

    def constraints(self, values: Mapping[str, Any]) -> dict[str, np.ndarray]:
        rate = ZERO_LOAD_RATE if self.spec.goodput else self.frozen.get("arrival_rate", ZERO_LOAD_RATE)
        return self._memo("constraints", values, lambda v, n: self.compiled.evaluate(v, self.frozen, n, rate))

    def objectives(self, values: Mapping[str, Any]) -> dict[str, np.ndarray]:
        return self._memo("objectives", values, self._objectives)

    def _meets(self, figures: dict[str, np.ndarray]) -> np.ndarray:
        ok = np.ones(len(figures["ttft"]), dtype=bool)
        if self.spec.slo.ttft_s is not None:
            ok &= figures["ttft"] <= self.spec.slo.ttft_s
        if self.spec.slo.tpot_s is not None:
            ok &= figures["tpot"] <= self.spec.slo.tpot_s
        return ok

    def _objectives(self, values: Mapping[str, Any], n: int) -> dict[str, np.ndarray]:
        n_out = self.frozen.get("avg_output_len", 0.0)
        if not self.spec.goodput:
            out = dict(self.compiled.evaluate(values, self.frozen, n, self.frozen.get("arrival_rate", 0.0)))
            out["rate"] = np.full(n, self.frozen.get("arrival_rate", 0.0))
            out["throughput"] = n_out * out["request_rate"]
            return out
        # Goodput: the highest lambda below capacity at which the predicted SLOs still hold.
        zero = self.compiled.evaluate(values, self.frozen, n, ZERO_LOAD_RATE)
        capacity = np.where(np.isfinite(zero["request_rate"]) & (zero["request_rate"] > 0), zero["request_rate"], 0.0)
        high = capacity * (1.0 - RATE_FLOOR)
        low = np.maximum(capacity * RATE_FLOOR, ZERO_LOAD_RATE)
        at_high = self._meets(self.compiled.evaluate(values, self.frozen, n, high))
        lo, hi = np.log(low), np.log(np.maximum(high, low))
        for _ in range(BISECTION_STEPS):
            middle = 0.5 * (lo + hi)
            ok = self._meets(self.compiled.evaluate(values, self.frozen, n, np.exp(middle)))
            lo, hi = np.where(ok, middle, lo), np.where(ok, hi, middle)
        rate = np.where(at_high, high, np.where(self._meets(zero), np.exp(lo), 0.0))
        out = dict(self.compiled.evaluate(values, self.frozen, n, np.maximum(rate, ZERO_LOAD_RATE)))
        out["rate"] = rate
        out["throughput"] = n_out * rate
        return out


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
        space = {name: parse_domain(name, spec) for name, spec in domains.items()}
        for domain in space.values():
            # Every decision variable counts servers, GPUs, tokens or requests.
            if any(value < 1 or not float(value).is_integer() for value in domain.values):
                raise ConfigError(f"invalid domain of {domain.name} {list(domain.values)}: expected positive integers")
        return DecisionSpace(space)

    def problem(self, deployment: str, frozen: Mapping[str, float]) -> Problem:
        """Build the analytic problem of one deployment under frozen workload parameters."""
        spec = self.spec
        ev = DeploymentEvaluator(self.compiled[deployment], frozen, spec)
        price_per_s = self.gpu.cost_per_hour_usd / SECONDS_PER_HOUR
        objective_fns = {
            "throughput": lambda v: ev.objectives(v)["throughput"],
            "throughput_per_gpu": lambda v: ev.objectives(v)["throughput"] / ev.objectives(v)["num_gpus"],
            "cost": lambda v: ev.objectives(v)["num_gpus"] * price_per_s / ev.objectives(v)["throughput"] * 1e6,
            "ttft": lambda v: ev.objectives(v)["ttft"],
            "tpot": lambda v: ev.objectives(v)["tpot"],
        }
        objectives = [ObjectiveSpec(name, objective_fns[name], OBJECTIVES[name][0], OBJECTIVES[name][1])
                      for name in spec.objectives]
        memory = spec.memory_safety_margin * self.memory_bytes
        constraints = [
            ConstraintSpec("memory_limit", lambda v: memory - ev.constraints(v)["peak_memory"],
                           f"peak memory per GPU <= {spec.memory_safety_margin:g} x {self.memory_bytes / 1e9:g} GB"),
            ConstraintSpec("max_gpus", lambda v: spec.gpus - ev.constraints(v)["num_gpus"], f"GPUs <= {spec.gpus}"),
        ]
        # In goodput mode the constraints are checked at zero load: lambda* then meets the targets
        # whenever any load does.
        if spec.slo.ttft_s is not None:
            constraints.append(ConstraintSpec("ttft_slo", lambda v: spec.slo.ttft_s - ev.constraints(v)["ttft"],
                                              f"TTFT <= {spec.slo.ttft_s:g} s"))
        if spec.slo.tpot_s is not None:
            constraints.append(ConstraintSpec("tpot_slo", lambda v: spec.slo.tpot_s - ev.constraints(v)["tpot"],
                                              f"TPOT <= {spec.slo.tpot_s:g} s"))
        return Problem(self.space(deployment), objectives, constraints, name=deployment)

    def space_tp_values(self) -> list[int]:
        """TP sizes the search may choose (for a first measurement of the workload)."""
        values = {1}
        for deployment in self.compiled:
            space = self.space(deployment)
            for name in ("TP", "TP_p", "TP_d"):
                if name in space.names:
                    values.update(int(v) for v in space.domain(name).values)
        return sorted(values)

    def problems(self, frozen: Mapping[str, float]) -> list[Problem]:
        return [self.problem(d, frozen) for d in self.compiled]

    # ----- the Planner protocol of verification -----

    def rank(self, frozen: Mapping[str, float], progress: Any = None) -> OptimizeResult:
        return optimize(self.problems(frozen), self.spec.method, top_k=self.spec.top_k, progress=progress)

    def predict(self, candidate: Candidate, frozen: Mapping[str, float]) -> dict[str, float]:
        """Predicted figures of one configuration (the analytic side of the side-by-side table)."""
        ev = DeploymentEvaluator(self.compiled[candidate.problem], frozen, self.spec)
        values = {k: np.array([float(v)]) for k, v in candidate.config.items()}
        figures = {k: float(v[0]) for k, v in ev.objectives(values).items()}
        tok_s = figures["throughput"]
        gpus = figures["num_gpus"]
        return {"ttft_s": figures["ttft"], "tpot_s": figures["tpot"], "throughput_tok_s": tok_s,
                "throughput_tok_s_per_gpu": tok_s / gpus if gpus else 0.0,
                "rate_req_s": figures["rate"], "capacity_req_s": figures["request_rate"],
                "peak_memory_bytes": figures["peak_memory"], "num_gpus": gpus}

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
