"""Turns a numeric step-law context into a symbolic one, and binds symbols to numbers.

`symbolize_law(symbols, ctx)` walks every parameter dataclass of a
`LawContext` and replaces each nonzero number by its symbol (or a small
expression of symbols), recording the value that reproduces the number.
Zeros stay zeros (a feature the model lacks), except efficiency
constants, and booleans and strings stay as they are (they choose which
laws exist). Parameters this module does not name get a
symbol named after the field, so law terms added later are covered.

Two parameters are expressions rather than bare symbols:

- `kv_bytes` (bytes per KV element) is kv_b / (elements per token per
  layer x L), so expressions carry the seed's `kv_b`;
- `gemm_flops` is F_gpu x r_gemm, where r_gemm is the weight dtype's peak
  over the BF16 peak.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, is_dataclass, replace
from typing import Any

from sympy import Expr, Symbol

from ..costs.efficiency import Efficiency
from ..costs.forward import LawContext
from ..errors import ConfigError
from .symbols import ATTENTION_BACKENDS, DEFAULT_TPOT_SLO_S, DEFAULT_TTFT_SLO_S, GPU_SM_VERSION, ConfigSymbols

MODEL_FIELDS = {
    "num_layers": "num_layers", "hidden_size": "hidden_dim", "num_heads": "num_heads",
    "num_kv_heads": "num_kv_heads", "head_dim": "head_dim", "intermediate_size": "intermediate_size",
    "vocab_size": "vocab_size", "weight_bytes": "weight_bytes", "act_bytes": "act_bytes",
    "num_experts": "num_experts", "top_k": "top_k_experts", "moe_intermediate_size": "moe_intermediate_size",
    "shared_intermediate_size": "shared_intermediate_size", "kv_lora_rank": "kv_lora_rank",
    "qk_rope_head_dim": "qk_rope_head_dim", "qk_nope_head_dim": "qk_nope_head_dim",
    "v_head_dim": "v_head_dim", "q_lora_rank": "q_lora_rank",
}
HARDWARE_FIELDS = {"attn_flops": "gpu_flops", "mem_bw": "gpu_mem_bw", "tp_link_bw": "nvlink_bw",
                   "net_bw": "network_bw", "nvlink_domain": "gpus_per_node"}
PARALLEL_SIZES = {"attn_dp": "dp_size", "ep": "ep_size", "pp": "pp_size"}
PARALLEL_DERIVED = ("attn_tp", "moe_tp", "dense_tp", "shared_tp", "pp_microbatches")
"""ParallelParams fields that default to expressions of tp, attn_dp, ep and pp."""
RUNTIME_FIELDS = {"cuda_graph_max_bs": "cuda_graph_max_bs"}


@dataclass(frozen=True)
class SymbolicLaw:
    """A law context whose numbers are symbols, with the values that reproduce the numbers."""

    ctx: LawContext
    bindings: dict[Symbol, float]


class _Binder:
    """Collects symbol values and rejects one symbol bound to two different numbers."""

    def __init__(self) -> None:
        self.values: dict[Symbol, float] = {}

    def bind(self, sym: Symbol, value: float) -> Symbol:
        value = float(value)
        old = self.values.get(sym)
        if old is not None and not math.isclose(old, value, rel_tol=1e-12):
            raise ConfigError(f"invalid symbol binding {sym.name}: servers use both {old:g} and {value:g}; "
                              "give the pools their own symbols (ConfigSymbols(per_pool_tp=True))")
        self.values[sym] = value
        return sym


def _model_field(symbols: ConfigSymbols, m: Any, name: str, value: float, binder: _Binder) -> Expr:
    L = symbols.num_layers
    if name == "kv_bytes":
        if m.is_mla:
            elements = m.kv_lora_rank + m.qk_rope_head_dim
            sym_elements = symbols.kv_lora_rank + symbols.qk_rope_head_dim
        else:
            elements = 2 * m.num_kv_heads * m.head_dim
            sym_elements = 2 * symbols.num_kv_heads * symbols.head_dim
        binder.bind(symbols.kv_bytes_per_token, value * elements * m.num_layers)
        return symbols.kv_bytes_per_token / (sym_elements * L)
    if name == "num_moe_layers":
        binder.bind(symbols.num_dense_layers, m.num_layers - value)
        return L if value == m.num_layers else L - symbols.num_dense_layers
    attr = MODEL_FIELDS.get(name)
    sym = getattr(symbols, attr) if attr else symbols.extra_symbol(name)
    return binder.bind(sym, value)


def _hardware_field(symbols: ConfigSymbols, hw: Any, name: str, value: float, binder: _Binder) -> Expr:
    if name == "gemm_flops":
        binder.bind(symbols.gemm_peak_ratio, value / hw.attn_flops)
        return symbols.gpu_flops * symbols.gemm_peak_ratio
    attr = HARDWARE_FIELDS.get(name)
    sym = getattr(symbols, attr) if attr else symbols.extra_symbol(name)
    return binder.bind(sym, value)


def _symbolize_parallel(symbols: ConfigSymbols, par: Any, pool: str, binder: _Binder) -> Any:
    """Parallel sizes above 1 become symbols (tp -> TP, attn_dp -> DP, ep -> EP, pp -> PP).

    A size of 1 stays the number 1 because the laws take another code path
    there (no collective at all), so a symbol would replay a different law.
    Derived sizes (attn_tp = tp / attn_dp, ...) that equal their default are
    rebuilt from the symbols; an explicit override stays a number or gets
    its own symbol.
    """
    sizes: dict[str, Any] = {}
    for name in ("tp", *PARALLEL_SIZES):
        value = getattr(par, name)
        if _is_number(value) and value != 1:
            sym = symbols.tp_for(pool) if name == "tp" else getattr(symbols, PARALLEL_SIZES[name])
            sizes[name] = binder.bind(sym, value)
    defaults = replace(par, **{name: None for name in PARALLEL_DERIVED})
    updates: dict[str, Any] = dict(sizes)
    for name in PARALLEL_DERIVED:
        value = getattr(par, name)
        if _is_number(value) and value != 1 and value == getattr(defaults, name):
            updates[name] = None
        elif _is_number(value) and value != 1 and value != 0:
            updates[name] = binder.bind(symbols.extra_symbol(name), value)
    for f in fields(par):
        value = getattr(par, f.name)
        if f.name not in updates and f.name not in ("tp", *PARALLEL_SIZES, *PARALLEL_DERIVED) \
                and _is_number(value) and value != 0:
            updates[f.name] = binder.bind(symbols.extra_symbol(f.name), value)
    return replace(par, **updates)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _symbolize_params(symbols: ConfigSymbols, params: Any, pool: str, binder: _Binder) -> Any:
    """Replace each nonzero number of one parameter dataclass by its symbol."""
    kind = type(params).__name__
    if kind == "ParallelParams":
        return _symbolize_parallel(symbols, params, pool, binder)
    updates = {}
    for f in fields(params):
        value = getattr(params, f.name)
        if isinstance(params, Efficiency) and _is_number(value):
            # Efficiency constants are values, never structure: a zero padding stays a symbol.
            updates[f.name] = binder.bind(symbols.efficiency[f.name], value)
            continue
        if not _is_number(value) or value == 0:
            continue
        if kind == "ModelParams":
            updates[f.name] = _model_field(symbols, params, f.name, value, binder)
        elif kind == "HardwareParams":
            updates[f.name] = _hardware_field(symbols, params, f.name, value, binder)
        else:
            attr = RUNTIME_FIELDS.get(f.name)
            sym = getattr(symbols, attr) if attr else symbols.extra_symbol(f.name)
            updates[f.name] = binder.bind(sym, value)
    return replace(params, **updates)


def symbolize_law(symbols: ConfigSymbols, ctx: LawContext, pool: str = "default",
                  binder: _Binder | None = None) -> SymbolicLaw:
    """Return the symbolic twin of a numeric law context and the values that reproduce it."""
    binder = binder or _Binder()
    parts = {}
    for f in fields(ctx):
        value = getattr(ctx, f.name)
        parts[f.name] = _symbolize_params(symbols, value, pool, binder) if is_dataclass(value) else value
    return SymbolicLaw(replace(ctx, **parts), binder.values)


# ----- values() -----

def _numeric_server(model: str, gpu: str, scenario: Any, efficiency: Any, kv_cache_dtype: str,
                    quantization: str | None) -> tuple[Any, Any, Any, LawContext, dict[str, float]]:
    """(ModelSpec, GPUSpec, ServerArgs, numeric law context, knob values) of a scenario or a model/GPU pair.

    A P/D scenario's values are its decode pool's (see `points.main_pool`).
    """
    from ..config.scenario import ServerArgs
    from ..hardware.gpus import get_gpu
    from ..serving.memory_plan import MB, memory_tier, reserve_mb
    from ..serving.parallel import resolve_parallel
    from ..serving.server_spec import build_law_context, build_server_spec, resolve_model

    if scenario is not None:
        from .points import main_pool

        _, args, gpu_name = main_pool(scenario)
        spec = build_server_spec(scenario.model, gpu_name, args, scenario.efficiency)
        mem = spec.memory
        cap = args.kv_pool_tokens or args.max_total_tokens
        knobs = {"graph": mem.cuda_graph_max_bs, "f_mem": mem.mem_fraction_static,
                 "cap": float(cap) if cap else math.inf}
        return spec.model, spec.gpu, args, spec.law, knobs
    args = ServerArgs(kv_cache_dtype=kv_cache_dtype, quantization=quantization)
    model_spec = resolve_model(model, quantization)
    gpu_spec = get_gpu(gpu)
    parallel = resolve_parallel(args, model_spec, gpu_spec)
    chunk, graph, _ = memory_tier(gpu_spec)
    # SGLang's automatic mem_fraction_static at TP 1 (the memory plan's rule, without its fit check).
    reserve = reserve_mb(gpu_spec, parallel, chunk, args.max_prefill_tokens, graph)
    memory_mb = gpu_spec.mem_capacity_bytes / MB
    knobs = {"graph": graph, "f_mem": round((memory_mb - reserve) / memory_mb, 3), "cap": math.inf}
    law = build_law_context(model_spec, gpu_spec, args, parallel, efficiency, graph)
    return model_spec, gpu_spec, args, law, knobs


def bind_values(symbols: ConfigSymbols, model: str, gpu: str, scenario: Any, efficiency: Any,
                kv_cache_dtype: str, quantization: str | None) -> dict[Symbol, float]:
    """Implementation of `ConfigSymbols.values` (see there)."""
    from ..hardware.links import get_link
    from ..serving.memory_plan import resolve_kv_dtype

    model_spec, gpu_spec, args, ctx, knobs = _numeric_server(model, gpu, scenario, efficiency, kv_cache_dtype,
                                                            quantization)
    binder = _Binder()
    symbolize_law(symbols, ctx, "default", binder)
    s = symbols
    # Model dimensions the step law does not read (or reads as zero) still get values.
    model_values = {
        s.num_layers: model_spec.num_layers, s.hidden_dim: model_spec.hidden_size,
        s.head_dim: model_spec.head_dim, s.num_heads: model_spec.num_attention_heads,
        s.num_kv_heads: model_spec.num_key_value_heads, s.intermediate_size: model_spec.intermediate_size,
        s.vocab_size: model_spec.vocab_size, s.num_experts: model_spec.num_experts,
        s.top_k_experts: model_spec.num_experts_per_tok, s.moe_intermediate_size: model_spec.moe_intermediate_size,
        s.shared_intermediate_size: model_spec.shared_expert_intermediate_size,
        s.num_dense_layers: model_spec.num_dense_layers, s.weight_bytes: model_spec.weight_bytes_per_param,
        s.kv_lora_rank: model_spec.kv_lora_rank, s.q_lora_rank: model_spec.q_lora_rank,
        s.qk_rope_head_dim: model_spec.qk_rope_head_dim, s.qk_nope_head_dim: model_spec.qk_nope_head_dim,
        s.v_head_dim: model_spec.v_head_dim,
        s.kv_bytes_per_token: model_spec.kv_bytes_per_token(resolve_kv_dtype(args.kv_cache_dtype)),
    }
    for sym, value in model_values.items():
        binder.bind(sym, value)
    binder.values.setdefault(s.act_bytes, 2.0)
    binder.bind(s.unquantized_bytes, model_spec.unquantized_bytes_per_param)
    for f in fields(ctx.eff):
        binder.bind(s.efficiency[f.name], getattr(ctx.eff, f.name))
    hardware = {
        s.gpu_mem_cap: gpu_spec.mem_capacity_bytes, s.network_bw: gpu_spec.network_bw_bytes_s,
        s.network_latency: get_link("infiniband", gpu_spec).latency_s, s.sm_version: GPU_SM_VERSION[gpu_spec.name],
        s.gpu_power: gpu_spec.power_w, s.gpu_price: gpu_spec.cost_per_hour_usd, s.gpus_per_node: gpu_spec.gpus_per_node,
        s.gpu_flops: gpu_spec.bf16_flops, s.gpu_mem_bw: gpu_spec.mem_bw_bytes_s, s.nvlink_bw: gpu_spec.nvlink_bw_bytes_s,
    }
    for sym, value in hardware.items():
        binder.bind(sym, value)
    slo = scenario.slo if scenario is not None else None
    knob_values = {
        s.cache_capacity: knobs["cap"], s.block_size: args.page_size, s.cuda_graph_max_bs: knobs["graph"],
        s.mem_fraction_static: knobs["f_mem"],
        s.ttft_slo: slo.ttft_s if slo is not None and slo.ttft_s else DEFAULT_TTFT_SLO_S,
        s.tpot_slo: slo.tpot_s if slo is not None and slo.tpot_s else DEFAULT_TPOT_SLO_S,
    }
    binder.values.update({sym: float(v) for sym, v in knob_values.items()})
    for backend in ATTENTION_BACKENDS:
        binder.values[s.backend_speed[backend]] = 1.0
    excluded = set(s.decision_vars()) | {s.tp_size, s.tp_prefill, s.tp_decode} | set(s.frozen_params())
    # Law parameters named after fields (see `extra_symbol`) get their values from the law context.
    return {sym: value for sym, value in binder.values.items() if sym not in excluded}
