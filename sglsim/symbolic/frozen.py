"""Frozen workload parameters: averages measured by a simulation, substituted into expressions.

The steady-state model reads the workload only through a few averages.
`freeze(result)` measures them from the completed requests of a run:

- n_in_avg, n_out_avg: mean prompt and output lengths, tokens;
- pi_hit: share of requests whose first admission matched a cached prefix;
- prefix_match: mean cached tokens of a hitting request over n_in_avg, so
  that n_in_avg x pi_hit x prefix_match is the mean cached prompt length and
  pi_hit x prefix_match the token hit rate the summary reports (0 when
  nothing hit; above 1 only if hitting prompts are longer than average);
- scv_in: squared coefficient of variation of the uncached prompt tokens
  (the prefill service-time variability of the queueing term);
- scv_out: the same for output lengths (how long a decode slot is held);
- lambda_req: arrivals per second between the first and the last arrival
  (infinite when every request arrives at once).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..errors import ConfigError
from .symbols import ConfigSymbols


@dataclass(frozen=True)
class FrozenParams:
    """Workload averages of one simulation (see the module docstring for definitions)."""

    cache_hit_rate: float
    avg_prompt_len: float
    avg_output_len: float
    avg_prefix_match: float
    prompt_len_scv: float
    output_len_scv: float
    arrival_rate: float
    num_requests: int

    def values(self, symbols: ConfigSymbols) -> dict[Any, float]:
        """Return the frozen symbols of `symbols` mapped to these values."""
        return {getattr(symbols, name): value for name, value in asdict(self).items() if name != "num_requests"}

    def substitute(self, target: Any, symbols: ConfigSymbols) -> Any:
        """Bind the frozen symbols in an expression, or in every expression of a `MetricExpressions`."""
        from .bridge import bind

        values = self.values(symbols)
        if hasattr(target, "map"):
            return target.map(lambda expr: bind(expr, values))
        return bind(target, values)


def freeze(result: Any) -> FrozenParams:
    """Measure the frozen workload parameters from a finished simulation."""
    req = result.requests
    n = len(req["rid"])
    if n == 0:
        raise ConfigError("invalid result to freeze: no request completed")
    input_len = req["input_len"].astype(float)
    cached = req["cached_tokens"].astype(float)
    hit = cached > 0
    pi_hit = float(hit.mean())
    prefix_match = float(cached.sum() / input_len.sum()) / pi_hit if hit.any() else 0.0
    uncached = input_len - cached
    mean_uncached = float(uncached.mean())
    scv = float(uncached.var() / mean_uncached**2) if mean_uncached > 0 else 0.0
    output_len = req["output_len"].astype(float)
    scv_out = float(output_len.var() / output_len.mean() ** 2)
    arrivals = np.sort(req["arrived_at"])
    span_s = float(arrivals[-1] - arrivals[0])
    rate = (n - 1) / span_s if span_s > 0 else math.inf
    return FrozenParams(cache_hit_rate=pi_hit, avg_prompt_len=float(input_len.mean()),
                        avg_output_len=float(req["output_len"].mean()), avg_prefix_match=prefix_match,
                        prompt_len_scv=scv, output_len_scv=scv_out, arrival_rate=rate, num_requests=n)
