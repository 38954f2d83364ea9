"""The point of a scenario in the steady-state model: decision variables, knobs, model, hardware.

`scenario_point(symbols, scenario, frozen)` returns the value of every
symbol the steady-state metrics contain, for the configuration the
scenario describes, so a metric evaluated there is the model's prediction
for that simulation. A scenario is either aggregated (N_r co-located
servers) or disaggregated (N_p prefill and N_d decode servers). The model
does not cover a cluster that mixes both.
"""

from __future__ import annotations

from typing import Any

from sympy import Symbol

from ..errors import ConfigError
from ..serving.server_spec import build_server_spec
from .frozen import FrozenParams
from .symbols import ConfigSymbols


def deployment_of(scenario: Any) -> str:
    """'colocated' for aggregated replicas, 'disaggregated' for P/D pools."""
    cluster = scenario.cluster
    if cluster.has_pd and cluster.num_replicas:
        raise ConfigError(f"invalid cluster for the steady-state model: {cluster.num_replicas} aggregated "
                          "replicas beside P/D pools; the model covers one kind of deployment at a time")
    return "disaggregated" if cluster.has_pd else "colocated"


def main_pool(scenario: Any) -> tuple[str, Any, str]:
    """(pool name, server arguments, GPU) whose knobs the steady-state model uses: the decode pool under
    P/D (its batch and KV pool bound the decode side), else the aggregated servers."""
    if deployment_of(scenario) == "disaggregated":
        return "decode", scenario.pool_server_args("decode"), scenario.pool_gpu("decode")
    return "aggregated", scenario.server, scenario.gpu


def _spec(scenario: Any, args: Any, gpu: str) -> Any:
    return build_server_spec(scenario.model, gpu, args, scenario.efficiency)


def _chunk(spec: Any) -> int:
    # Without chunked prefill SGLang runs a whole prompt in one step: a chunk as long as the context.
    mem = spec.memory
    return mem.chunked_prefill_size if mem.chunked_prefill_size is not None else mem.context_len


def decision_values(symbols: ConfigSymbols, scenario: Any) -> dict[Symbol, float]:
    """Decision variables of a scenario: server counts, chunk, batch caps and parallel sizes."""
    s = symbols
    cluster = scenario.cluster
    if deployment_of(scenario) == "colocated":
        args = scenario.server
        spec = _spec(scenario, args, scenario.gpu)
        return {s.num_replicas: cluster.num_replicas, s.chunk_size: _chunk(spec),
                s.batch_cap_tokens: args.max_prefill_tokens, s.batch_cap_requests: spec.memory.max_running_requests,
                s.tp_size: args.tp, s.dp_size: args.dp, s.ep_size: args.ep, s.pp_size: args.pp}
    prefill_args, decode_args = scenario.pool_server_args("prefill"), scenario.pool_server_args("decode")
    prefill = _spec(scenario, prefill_args, scenario.pool_gpu("prefill"))
    decode = _spec(scenario, decode_args, scenario.pool_gpu("decode"))
    out = {s.N_p: cluster.prefill.workers, s.N_d: cluster.decode.workers, s.chunk_size: _chunk(prefill),
           s.batch_cap_tokens: prefill_args.max_prefill_tokens,
           s.batch_cap_requests: decode.memory.max_running_requests,
           s.dp_size: decode_args.dp, s.ep_size: decode_args.ep, s.pp_size: decode_args.pp}
    if s.per_pool_tp:
        out.update({s.tp_prefill: prefill_args.tp, s.tp_decode: decode_args.tp})
    elif prefill_args.tp != decode_args.tp:
        raise ConfigError(f"invalid symbols for this scenario: prefill TP {prefill_args.tp} and decode TP "
                          f"{decode_args.tp} differ; use ConfigSymbols(per_pool_tp=True)")
    else:
        out[s.tp_size] = decode_args.tp
    return out


def scenario_point(symbols: ConfigSymbols, scenario: Any, frozen: FrozenParams) -> dict[Symbol, float]:
    """Return every symbol's value at a scenario: its knobs and hardware, its decisions, the frozen workload."""
    return {**symbols.values(scenario=scenario), **decision_values(symbols, scenario), **frozen.values(symbols)}
