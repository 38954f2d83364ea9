"""Explain one metric at a scenario: its expression, value, frozen inputs and sensitivities.

Backs `sglsim explain`. The steady-state source evaluates the model of
`steady_state.py` at the scenario's configuration, with workload averages
frozen from a simulation of it. The trace source builds the trace
expressions of that simulation, which reproduce it exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sympy import Expr, Symbol

from ..errors import ConfigError, unknown
from . import bridge
from .frozen import FrozenParams, freeze
from .points import decision_values, deployment_of, main_pool, scenario_point
from .steady_state import METRIC_NAMES, SymbolicMetricBuilder
from .symbols import ConfigSymbols, symbol_unit
from .trace import METRICS as TRACE_METRICS, trace_expressions

SOURCES = ("steady", "trace")
FORMATS = ("text", "latex", "json", "python")
METRIC_UNITS = {
    "ttft": "s", "tpot": "s", "e2e_latency": "s", "throughput": "output tokens/s", "peak_memory": "bytes per GPU",
    "compute_utilization": "fraction of GEMM peak", "memory_bandwidth_utilization": "fraction of HBM bandwidth",
    "network_utilization": "fraction of network bandwidth", "cost_per_token": "USD per output token",
    "power_consumption": "W", "goodput": "output tokens/s", "makespan": "s", "mean_ttft": "s", "mean_tpot": "s",
}
SIMULATED_SUMMARY = {"throughput": ("output_throughput_tok_s", None), "ttft": ("ttft_s", "mean"),
                     "tpot": ("tpot_s", "mean"), "e2e_latency": ("e2e_s", "mean")}


@dataclass
class Explanation:
    """Everything `sglsim explain` prints about one metric."""

    metric: str
    source: str
    expression: Expr
    value: float
    simulated: float | None
    frozen: FrozenParams
    decisions: dict[Symbol, float]
    sensitivities: list[tuple[Symbol, float, float]]
    point: dict[Symbol, float]
    """Value of every symbol of the expression at the scenario."""
    symbols: ConfigSymbols

    def render(self, fmt: str = "text") -> str:
        unit = METRIC_UNITS.get(self.metric, "")
        model = "steady-state model" if self.source == "steady" else "trace expression of the simulated schedule"
        lines = [f"metric: {self.metric} ({model}; {unit})", "", "expression:", _format(self.expression, fmt, self.metric),
                 "", f"value at the scenario: {_number(self.value)}"]
        if self.simulated is not None:
            label = "simulated" if self.source == "trace" else "simulated (whole run, ramp-up and drain included)"
            lines.append(f"{label}: {_number(self.simulated)}")
        lines += ["", "frozen workload parameters (measured by the simulation):"]
        for sym, value in self.frozen.values(self.symbols).items():
            lines.append(f"  {sym.name:<14} {_number(value):>14}  {symbol_unit(sym)}")
        if self.decisions:
            lines += ["", "configuration:", "  " + ", ".join(f"{s.name} = {_number(v)}" for s, v in self.decisions.items())]
        lines += ["", "top sensitivities (elasticity: relative change of the metric per relative change of the symbol):",
                  f"  {'symbol':<26} {'value':>14} {'elasticity':>11} {'derivative':>13}  unit"]
        for sym, derivative, elasticity in self.sensitivities:
            value = self.point[sym]
            lines.append(f"  {sym.name:<26} {_number(value):>14} {elasticity:>11.4f} {derivative:>13.4g}  "
                         f"{symbol_unit(sym)}")
        return "\n".join(lines)


def _number(value: float) -> str:
    if value is None:
        return "n/a"
    if math.isinf(value):
        return "infinite"
    if value != 0 and (abs(value) >= 1e6 or abs(value) < 1e-3):
        return f"{value:.6g}"
    return f"{value:,.6g}"


def _format(expr: Expr, fmt: str, name: str) -> str:
    if fmt == "latex":
        return bridge.to_latex(expr)
    if fmt == "json":
        return bridge.to_json(expr, name)
    if fmt == "python":
        return bridge.to_python(expr, name)
    return bridge.to_text(expr)


def explain_metric(scenario: Any, metric: str, source: str = "steady", top: int = 8,
                   symbols: ConfigSymbols | None = None) -> Explanation:
    """Simulate `scenario`, then build and evaluate `metric` from the chosen source."""
    from ..simulation import simulate

    if source not in SOURCES:
        raise unknown("explain source", source, SOURCES)
    names = TRACE_METRICS if source == "trace" else METRIC_NAMES
    if source == "steady" and metric not in METRIC_NAMES:
        names = (*METRIC_NAMES, "prefill_time", "decode_step", "batch", "request_rate", "num_gpus", "kv_pool_tokens")
    if metric not in names:
        raise unknown(f"{source} metric", metric, names)
    symbols = symbols or ConfigSymbols()
    result = simulate(scenario, record=source == "trace")
    frozen = freeze(result)
    if source == "trace":
        traced = trace_expressions(result, symbols)
        expr = traced.get_expression(metric)
        point = traced.bindings
        simulated = traced.simulated[metric]
        decisions = {s: v for s, v in point.items() if s in symbols.decision_vars()}
        method = "symbolic"
    else:
        _, server, _ = main_pool(scenario)
        builder = SymbolicMetricBuilder(symbols, model=scenario.model, deployment=deployment_of(scenario),
                                        cuda_graph=not server.disable_cuda_graph,
                                        overlap=not server.disable_overlap_schedule)
        expr = builder.build_all_expressions().get_expression(metric)
        point = scenario_point(symbols, scenario, frozen)
        key = SIMULATED_SUMMARY.get(metric)
        simulated = None
        if key is not None:
            entry = result.summary[key[0]]
            simulated = entry[key[1]] if key[1] else entry
        decisions = {s: v for s, v in decision_values(symbols, scenario).items() if s in expr.free_symbols}
        method = "numeric"
    if expr is None:
        raise ConfigError(f"invalid metric {metric} for this scenario: no request produced more than one token")
    compiled = bridge.compile_expression(expr)
    value = float(compiled.evaluate(point))
    rows = bridge.sensitivities(expr, point, top=top, method=method) if expr.free_symbols else []
    return Explanation(metric, source, expr, value, simulated, frozen, decisions, rows, point, symbols)
