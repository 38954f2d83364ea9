"""The point of a scenario in the steady-state model: decision variables, knobs, model, hardware.

`scenario_point(symbols, scenario, frozen)` returns the value of every
symbol the steady-state metrics contain, for the configuration the
scenario describes, so a metric evaluated there is the model's prediction
for that simulation.
"""

from __future__ import annotations

from typing import Any

from sympy import Symbol

from ..serving.server_spec import build_efficiency, build_server_spec
from .frozen import FrozenParams
from .symbols import ConfigSymbols


def decision_values(symbols: ConfigSymbols, scenario: Any) -> dict[Symbol, float]:
    """Decision variables of a co-located scenario (N_r servers of TP GPUs each).

    Without chunked prefill SGLang runs a whole prompt in one step, which is
    a chunk as long as the context window. The disaggregated counts N_p and
    N_d are set to the replica count too, so disaggregated metrics evaluate
    at the same server count per pool.
    """
    spec = build_server_spec(scenario.model, scenario.gpu, scenario.server, build_efficiency(scenario.efficiency))
    mem = spec.memory
    chunk = mem.chunked_prefill_size if mem.chunked_prefill_size is not None else mem.context_len
    tp = scenario.server.tp
    replicas = scenario.cluster.replicas
    s = symbols
    return {s.num_replicas: replicas, s.N_p: replicas, s.N_d: replicas, s.chunk_size: chunk,
            s.batch_cap_tokens: scenario.server.max_prefill_tokens, s.batch_cap_requests: mem.max_running_requests,
            s.tp_size: tp, s.tp_prefill: tp, s.tp_decode: tp, s.dp_size: 1, s.ep_size: 1}


def scenario_point(symbols: ConfigSymbols, scenario: Any, frozen: FrozenParams) -> dict[Symbol, float]:
    """Every symbol's value at a scenario: its knobs and hardware, its decisions, the frozen workload."""
    return {**symbols.values(scenario=scenario), **decision_values(symbols, scenario), **frozen.values(symbols)}
