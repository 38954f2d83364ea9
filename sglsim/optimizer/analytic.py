"""The analytic side of planning: deployment models built from the symbolic steady-state metrics."""

from __future__ import annotations

from dataclasses import fields
from typing import Any, Sequence

from ..config.scenario import Scenario
from ..errors import ConfigError
from .deployment import DEPLOYMENTS, has_pd_pools
from .planner import DeploymentModel


def _symbolic() -> Any:
    try:
        from ..symbolic import steady_state, symbols
    except ImportError:
        raise ConfigError("invalid command: this build of sglsim has no symbolic model (sglsim.symbolic)") from None
    return symbols, steady_state


def frozen_symbol_names(symbols: Any) -> dict[str, str]:
    """Frozen-parameter attribute name -> symbol name (e.g. avg_prompt_len -> n_in_avg)."""
    frozen = {s.name for s in symbols.frozen_params()}
    names = {}
    for f in fields(symbols):
        value = getattr(symbols, f.name, None)
        if getattr(value, "name", None) in frozen:
            names[f.name] = value.name
    return names


def symbolic_models(base: Scenario, deployments: Sequence[str] | None = None,
                    per_pool_tp: bool = False) -> list[DeploymentModel]:
    """Steady-state metrics of each deployment shape for the scenario's model, GPU and server knobs.

    `deployments` defaults to both shapes where this build has P/D pools,
    else colocated only.
    """
    symbols_mod, steady = _symbolic()
    if deployments is None:
        deployments = DEPLOYMENTS if has_pd_pools() else ("colocated",)
    models = []
    for deployment in deployments:
        # A colocated server has one TP, so per-pool TP symbols apply to P/D pools only.
        symbols = symbols_mod.ConfigSymbols(per_pool_tp=per_pool_tp and deployment != "colocated")
        frozen = frozen_symbol_names(symbols)
        decision = {s.name for s in symbols.decision_vars()}
        # Bound from the model and GPU, not from the base scenario's own server: its TP may not even hold
        # the weights, which is for the search to find out.
        values = symbols.values(model=base.model, gpu=base.gpu, efficiency=base.efficiency or None,
                                kv_cache_dtype=base.server.kv_cache_dtype, quantization=base.server.quantization)
        bind = {k: v for k, v in values.items() if k.name not in decision and k.name not in frozen.values()}
        builder = steady.SymbolicMetricBuilder(symbols, model=base.model, deployment=deployment,
                                               cuda_graph=not base.server.disable_cuda_graph,
                                               overlap=not base.server.disable_overlap_schedule)
        m = builder.build_all_expressions()
        metrics = {"ttft": m.ttft, "tpot": m.tpot, "peak_memory": m.peak_memory,
                   "num_gpus": m.components["num_gpus"], "request_rate": m.components["request_rate"]}
        free = set().union(*(e.free_symbols for e in metrics.values()))
        variables = tuple(s.name for s in symbols.decision_vars() if s in free and s not in bind)
        models.append(DeploymentModel(deployment, metrics, bind, variables, frozen))
    return models
