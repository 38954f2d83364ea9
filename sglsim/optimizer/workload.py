"""The first frozen workload parameters of a plan, before any candidate has been simulated."""

from __future__ import annotations

from typing import Any

from ..config.scenario import Scenario
from ..errors import ConfigError
from .measure import workload_parameters


def initial_frozen(base: Scenario, num_requests: int, fallback_tp: int = 8) -> dict[str, float]:
    """Frozen parameters to rank with first.

    Constant prompt and output lengths without shared prefixes give them
    exactly (no prefix can hit: every synthetic prompt is unique). Any other
    workload is measured from a simulation of its first `num_requests`
    requests on the scenario's own deployment, or on one server of
    `fallback_tp` GPUs when that deployment cannot hold the model.
    """
    wl = base.workload
    constant = (wl.trace is None and wl.shared_prefix is None and wl.input_len is not None
                and wl.output_len is not None and wl.input_len.dist == "constant"
                and wl.output_len.dist == "constant")
    if constant:
        frozen: dict[str, Any] = {"avg_prompt_len": float(wl.input_len.mean),
                                  "avg_output_len": float(wl.output_len.mean),
                                  "cache_hit_rate": 0.0, "avg_prefix_match": 0.0, "prompt_len_scv": 0.0,
                                  "output_len_scv": 0.0}
        if wl.rate is not None:
            frozen["arrival_rate"] = wl.rate
        return frozen
    from ..simulation import simulate

    limit = min(num_requests, wl.num_requests) if wl.num_requests else num_requests
    sample = base.updated({"workload.num_requests": limit})
    try:
        result = simulate(sample)
    except ConfigError:
        # The user's own server may not fit the model (TP 1 for a 70B model); the search decides TP.
        result = simulate(sample.updated({"server.tp": fallback_tp, "cluster.replicas": 1,
                                          "cluster.prefill": None, "cluster.decode": None}))
    return workload_parameters(result)
