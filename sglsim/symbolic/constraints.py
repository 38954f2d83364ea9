"""Constraints on a configuration, each an expression that is positive when satisfied.

`ConstraintBuilder(symbols)` builds the steady-state metrics once (or takes
`metrics=`) and turns limits into `Constraint` objects printed as
`expr > 0`: memory per GPU, TTFT and TPOT targets, a GPU budget, a minimum
throughput and a cost budget.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sympy
from sympy import Expr

from ..errors import ConfigError
from .steady_state import MetricExpressions, SymbolicMetricBuilder
from .symbols import ConfigSymbols

SECONDS_PER_HOUR = 3600


@dataclass(frozen=True)
class Constraint:
    """A named constraint: satisfied where `expr` > 0 (the boundary expr = 0 counts as satisfied)."""

    name: str
    expr: Expr
    description: str

    def __str__(self) -> str:
        return f"{self.expr} > 0"

    def satisfied(self, values: dict[Any, Any]) -> Any:
        """True where expr >= 0 at `values` (numbers or NumPy arrays, keyed by symbol)."""
        from .bridge import compile_expression

        compiled = compile_expression(self.expr)
        return compiled.evaluate(values) >= 0


def _positive(name: str, value: float) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
        raise ConfigError(f"invalid {name} {value!r}: expected a positive number")
    return float(value)


class ConstraintBuilder:
    """Collects constraints over the symbols of one `ConfigSymbols`."""

    def __init__(self, symbols: ConfigSymbols, metrics: MetricExpressions | None = None) -> None:
        self.symbols = symbols
        self._metrics = metrics
        self._constraints: dict[str, Constraint] = {}

    @property
    def metrics(self) -> MetricExpressions:
        if self._metrics is None:
            self._metrics = SymbolicMetricBuilder(self.symbols).build_all_expressions()
        return self._metrics

    def _add(self, name: str, expr: Expr, description: str) -> Constraint:
        constraint = Constraint(name, expr, description)
        self._constraints[name] = constraint
        return constraint

    def add_memory_constraint(self, memory_bytes: float, safety_margin: float = 0.9) -> Constraint:
        """Peak memory per GPU stays below safety_margin x memory_bytes."""
        memory_bytes = _positive("memory_bytes", memory_bytes)
        if not 0 < safety_margin <= 1:
            raise ConfigError(f"invalid safety_margin {safety_margin!r}: expected a fraction in (0, 1]")
        limit = sympy.Float(safety_margin * memory_bytes)
        return self._add("memory_limit", limit - self.metrics.peak_memory,
                         f"peak memory per GPU below {safety_margin:g} x {memory_bytes:.0f} bytes")

    def add_ttft_slo(self, ttft_s: float) -> Constraint:
        ttft_s = _positive("ttft_s", ttft_s)
        return self._add("ttft_slo", sympy.Float(ttft_s) - self.metrics.ttft, f"mean TTFT below {ttft_s:g} s")

    def add_tpot_slo(self, tpot_s: float) -> Constraint:
        tpot_s = _positive("tpot_s", tpot_s)
        return self._add("tpot_slo", sympy.Float(tpot_s) - self.metrics.tpot, f"mean TPOT below {tpot_s:g} s")

    def add_total_gpu_constraint(self, max_gpus: int) -> Constraint:
        if not isinstance(max_gpus, int) or isinstance(max_gpus, bool) or max_gpus <= 0:
            raise ConfigError(f"invalid max_gpus {max_gpus!r}: expected a positive integer")
        gpus = self.metrics.components["num_gpus"]
        return self._add("max_gpus", max_gpus - gpus, f"at most {max_gpus} GPUs in total")

    def add_min_throughput(self, tokens_per_s: float) -> Constraint:
        tokens_per_s = _positive("tokens_per_s", tokens_per_s)
        return self._add("min_throughput", self.metrics.throughput - sympy.Float(tokens_per_s),
                         f"output throughput above {tokens_per_s:g} tokens/s")

    def add_cost_budget(self, usd_per_hour: float | None = None,
                        usd_per_million_tokens: float | None = None) -> list[Constraint]:
        """GPU rental below `usd_per_hour`, and/or cost per million output tokens below a price."""
        if usd_per_hour is None and usd_per_million_tokens is None:
            raise ConfigError("invalid cost budget: give usd_per_hour, usd_per_million_tokens or both")
        added = []
        if usd_per_hour is not None:
            usd_per_hour = _positive("usd_per_hour", usd_per_hour)
            hourly = self.metrics.components["num_gpus"] * self.symbols.gpu_price
            added.append(self._add("cost_per_hour", sympy.Float(usd_per_hour) - hourly,
                                   f"GPU rental below {usd_per_hour:g} USD per hour"))
        if usd_per_million_tokens is not None:
            price = _positive("usd_per_million_tokens", usd_per_million_tokens)
            added.append(self._add("cost_per_token", sympy.Float(price / 1e6) - self.metrics.cost_per_token,
                                   f"cost below {price:g} USD per million output tokens"))
        return added

    def get_all_constraints(self) -> list[Constraint]:
        return list(self._constraints.values())

    def get_constraint(self, name: str) -> Constraint:
        if name not in self._constraints:
            from ..errors import unknown

            raise unknown("constraint", name, self._constraints)
        return self._constraints[name]

    def summarize(self) -> str:
        """One line per constraint: name, description and the expression's size."""
        if not self._constraints:
            return "no constraints"
        width = max(len(name) for name in self._constraints)
        lines = []
        for c in self._constraints.values():
            ops = sympy.count_ops(c.expr)
            symbols = ", ".join(sorted(s.name for s in c.expr.free_symbols))
            lines.append(f"{c.name:<{width}}  {c.description} ({ops} operations; symbols: {symbols})")
        return "\n".join(lines)
