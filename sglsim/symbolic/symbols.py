"""The SymPy symbols of a serving configuration, grouped by role, and their numeric values.

`ConfigSymbols` keeps the attribute names, symbol names and assumptions of
the configuration space users already write constraints against (`N_p`,
`N_d`, `c`, `B_tok`, `B_req`, `TP`, ...), and adds the symbols the real cost
laws need (KV heads, intermediate sizes, vocabulary, dtype bytes, every
efficiency constant, knobs, arrival rate). Every symbol has its unit in the
`SYMBOL_UNITS` table.

Roles:

- decision variables: what an optimizer chooses (server counts, chunk size,
  batch caps, parallel sizes);
- frozen parameters: workload averages measured by a simulation (`freeze`);
- everything else (model, hardware, efficiency, knobs) is bound by
  `values(model=..., gpu=...)`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Mapping

import sympy
from sympy import Symbol

from ..costs.efficiency import Efficiency

_INT = {"positive": True, "integer": True}
_POS = {"positive": True}

GPU_SM_VERSION = {"a100": 80, "h100": 90, "h200": 90, "b200": 100, "b300": 103, "gb200": 100, "gb300": 103}
"""CUDA compute capability x 10 of each GPU preset (`sm_version` in NVIDIA's aiconfigurator-core 0.12.0 system files)."""

DEFAULT_TTFT_SLO_S = 1.0
DEFAULT_TPOT_SLO_S = 0.05
"""SLO symbols' values when no scenario gives them: the built-in demo scenario's targets."""

ATTENTION_BACKENDS = ("fa3", "flashinfer", "trtllm_mha", "triton")
"""Attention backends the steady-state model chooses from (SGLang `--attention-backend` names)."""


@dataclass
class ConfigSymbols:
    """Symbols of one serving configuration; see `SYMBOL_UNITS` for the unit of each.

    With `per_pool_tp=True` the prefill and decode pools get their own TP
    symbols (`TP_p`, `TP_d`); otherwise one `TP` serves every pool.
    """

    # Deployment (decision variables)
    N_p: Symbol = Symbol("N_p", **_INT)
    N_d: Symbol = Symbol("N_d", **_INT)
    num_replicas: Symbol = Symbol("N_r", **_INT)

    # Scheduler configuration (decision variables)
    chunk_size: Symbol = Symbol("c", **_INT)
    batch_cap_tokens: Symbol = Symbol("B_tok", **_INT)
    batch_cap_requests: Symbol = Symbol("B_req", **_INT)

    # Parallelism (decision variables)
    tp_size: Symbol = Symbol("TP", **_INT)
    dp_size: Symbol = Symbol("DP", **_INT)
    ep_size: Symbol = Symbol("EP", **_INT)
    pp_size: Symbol = Symbol("PP", **_INT)
    tp_prefill: Symbol = Symbol("TP_p", **_INT)
    tp_decode: Symbol = Symbol("TP_d", **_INT)

    # Hardware
    gpu_flops: Symbol = Symbol("F_gpu", **_POS)
    gpu_mem_bw: Symbol = Symbol("B_mem", **_POS)
    gpu_mem_cap: Symbol = Symbol("M_gpu", **_POS)
    nvlink_bw: Symbol = Symbol("B_nvlink", **_POS)
    network_bw: Symbol = Symbol("B_net", **_POS)
    network_latency: Symbol = Symbol("L_net", **_POS)
    gemm_peak_ratio: Symbol = Symbol("r_gemm", **_POS)
    sm_version: Symbol = Symbol("SM", **_INT)
    gpu_power: Symbol = Symbol("P_gpu", **_POS)
    gpu_price: Symbol = Symbol("p_gpu", **_POS)
    gpus_per_node: Symbol = Symbol("G_node", **_INT)

    # Model
    num_layers: Symbol = Symbol("L", **_INT)
    hidden_dim: Symbol = Symbol("H", **_INT)
    head_dim: Symbol = Symbol("d", **_INT)
    num_heads: Symbol = Symbol("n_h", **_INT)
    num_experts: Symbol = Symbol("E", **_INT)
    top_k_experts: Symbol = Symbol("k", **_INT)
    kv_bytes_per_token: Symbol = Symbol("kv_b", **_POS)
    num_kv_heads: Symbol = Symbol("n_kv", **_INT)
    intermediate_size: Symbol = Symbol("I_ff", **_INT)
    moe_intermediate_size: Symbol = Symbol("I_moe", **_INT)
    shared_intermediate_size: Symbol = Symbol("I_sh", **_INT)
    vocab_size: Symbol = Symbol("V", **_INT)
    num_dense_layers: Symbol = Symbol("L_dense", **_INT)
    weight_bytes: Symbol = Symbol("b_w", **_POS)
    act_bytes: Symbol = Symbol("b_act", **_POS)
    unquantized_bytes: Symbol = Symbol("b_raw", **_POS)
    kv_lora_rank: Symbol = Symbol("r_kv", **_INT)
    q_lora_rank: Symbol = Symbol("r_q", **_INT)
    qk_rope_head_dim: Symbol = Symbol("d_rope", **_INT)
    qk_nope_head_dim: Symbol = Symbol("d_nope", **_INT)
    v_head_dim: Symbol = Symbol("d_v", **_INT)

    # Cache and server knobs
    cache_capacity: Symbol = Symbol("C_kv", **_POS)
    block_size: Symbol = Symbol("B_blk", **_INT)
    cuda_graph_max_bs: Symbol = Symbol("bs_graph", **_INT)
    mem_fraction_static: Symbol = Symbol("f_mem", **_POS)
    ttft_slo: Symbol = Symbol("S_ttft", **_POS)
    tpot_slo: Symbol = Symbol("S_tpot", **_POS)

    # Frozen params (measured during simulation)
    cache_hit_rate: Symbol = Symbol("pi_hit", **_POS)
    avg_prompt_len: Symbol = Symbol("n_in_avg", **_POS)
    avg_output_len: Symbol = Symbol("n_out_avg", **_POS)
    avg_prefix_match: Symbol = Symbol("prefix_match", **_POS)
    prompt_len_scv: Symbol = Symbol("scv_in", **_POS)
    output_len_scv: Symbol = Symbol("scv_out", **_POS)
    arrival_rate: Symbol = Symbol("lambda_req", **_POS)

    per_pool_tp: bool = False
    efficiency: dict[str, Symbol] = field(default_factory=dict)
    """One symbol per `Efficiency` constant, named after the field."""
    backend_speed: dict[str, Symbol] = field(default_factory=dict)
    """Time factor of each attention backend relative to the calibrated attention law."""
    extra: dict[str, Symbol] = field(default_factory=dict)
    """Symbols created for law parameters this class does not name (see `extra_symbol`)."""

    def __post_init__(self) -> None:
        for f in fields(Efficiency):
            self.efficiency.setdefault(f.name, Symbol(f.name, **_POS))
        for backend in ATTENTION_BACKENDS:
            self.backend_speed.setdefault(backend, Symbol(f"s_{backend}", **_POS))

    # ----- per-pool parallelism -----

    def tp_for(self, pool: str) -> Symbol:
        """TP symbol of a pool: `TP_p` / `TP_d` with per-pool TP, else the shared `TP`."""
        if self.per_pool_tp and pool == "prefill":
            return self.tp_prefill
        if self.per_pool_tp and pool == "decode":
            return self.tp_decode
        return self.tp_size

    def extra_symbol(self, name: str) -> Symbol:
        """Symbol of a law parameter not named above (created once per instance)."""
        if name not in self.extra:
            self.extra[name] = Symbol(name, **_POS)
        return self.extra[name]

    # ----- groupings -----

    def decision_vars(self) -> list[Symbol]:
        tp = [self.tp_prefill, self.tp_decode] if self.per_pool_tp else [self.tp_size]
        return [self.N_p, self.N_d, self.num_replicas, self.chunk_size, self.batch_cap_tokens,
                self.batch_cap_requests, *tp, self.dp_size, self.ep_size, self.pp_size]

    def frozen_params(self) -> list[Symbol]:
        return [self.cache_hit_rate, self.avg_prompt_len, self.avg_output_len, self.avg_prefix_match,
                self.prompt_len_scv, self.output_len_scv, self.arrival_rate]

    def hardware_params(self) -> list[Symbol]:
        return [self.gpu_flops, self.gpu_mem_bw, self.gpu_mem_cap, self.nvlink_bw, self.network_bw,
                self.network_latency, self.gemm_peak_ratio, self.sm_version, self.gpu_power, self.gpu_price,
                self.gpus_per_node]

    def model_params(self) -> list[Symbol]:
        return [self.num_layers, self.hidden_dim, self.head_dim, self.num_heads, self.num_experts,
                self.top_k_experts, self.kv_bytes_per_token, self.num_kv_heads, self.intermediate_size,
                self.moe_intermediate_size, self.shared_intermediate_size, self.vocab_size,
                self.num_dense_layers, self.weight_bytes, self.act_bytes, self.unquantized_bytes,
                self.kv_lora_rank, self.q_lora_rank,
                self.qk_rope_head_dim, self.qk_nope_head_dim, self.v_head_dim]

    def efficiency_params(self) -> list[Symbol]:
        return [*self.efficiency.values(), *self.backend_speed.values()]

    def knob_params(self) -> list[Symbol]:
        return [self.cache_capacity, self.block_size, self.cuda_graph_max_bs, self.mem_fraction_static,
                self.ttft_slo, self.tpot_slo]

    def all_symbols(self) -> list[Symbol]:
        groups = (self.decision_vars(), self.frozen_params(), self.hardware_params(), self.model_params(),
                  self.efficiency_params(), self.knob_params(), list(self.extra.values()))
        out: list[Symbol] = []
        for group in groups:
            out.extend(s for s in group if s not in out)
        return out

    def by_name(self, name: str) -> Symbol:
        """Look up a symbol by its SymPy name (e.g. 'B_req') or its attribute name (e.g. 'batch_cap_requests')."""
        for sym in self.all_symbols():
            if sym.name == name:
                return sym
        value = getattr(self, name, None)
        if isinstance(value, Symbol):
            return value
        from ..errors import unknown

        raise unknown("symbol", name, [s.name for s in self.all_symbols()])

    # ----- numeric values -----

    def values(self, model: str = "llama-3.1-8b", gpu: str = "h100", *, scenario: Any = None,
               efficiency: Efficiency | Mapping[str, float] | None = None, kv_cache_dtype: str = "auto",
               quantization: str | None = None) -> dict[Symbol, float]:
        """Values of every symbol except the decision variables and the frozen workload parameters.

        Binds the model, the GPU, every efficiency constant (the GPU's fitted
        preset, with `efficiency` overrides on top) and the server knobs at
        SGLang's defaults. With a `Scenario`, its model, GPU, efficiency
        overrides, server arguments and SLOs are used and the other arguments
        are ignored (a P/D scenario gives its decode pool's). Absent features
        bind to 0 (a dense model has E = k = 0). `C_kv` binds to infinity
        unless the scenario caps the KV pool, and the attention backends'
        time factors bind to 1.
        """
        from .binding import bind_values

        return bind_values(self, model, gpu, scenario, efficiency, kv_cache_dtype, quantization)


SYMBOL_UNITS: dict[str, str] = {
    "N_p": "prefill servers (disaggregated), count",
    "N_d": "decode servers (disaggregated), count",
    "N_r": "co-located servers (prefill and decode on the same GPUs), count",
    "c": "chunked_prefill_size: max new tokens of one prefill chunk, tokens",
    "B_tok": "max_prefill_tokens: token budget of one prefill batch, tokens",
    "B_req": "max_running_requests: cap on the decode batch, requests",
    "TP": "tensor-parallel size: GPUs per server, count",
    "TP_p": "tensor-parallel size of prefill servers, count",
    "TP_d": "tensor-parallel size of decode servers, count",
    "DP": "data-parallel attention ranks of a server (--dp-size with --enable-dp-attention), count",
    "EP": "expert-parallel size, count",
    "PP": "pipeline-parallel stages, count",
    "F_gpu": "dense BF16 tensor-core peak of one GPU, FLOP/s",
    "B_mem": "HBM bandwidth of one GPU, bytes/s",
    "M_gpu": "HBM capacity of one GPU, bytes",
    "B_nvlink": "NVLink bandwidth per GPU and direction, bytes/s",
    "B_net": "scale-out network bandwidth per GPU and direction, bytes/s",
    "L_net": "one-way scale-out network latency, s",
    "r_gemm": "GEMM peak in the weight dtype over the BF16 peak (2 for FP8 weights), ratio",
    "SM": "CUDA compute capability x 10 (90 = Hopper), number",
    "P_gpu": "board power of one GPU, W",
    "p_gpu": "rental price of one GPU, USD per hour",
    "G_node": "GPUs in one NVLink domain, count",
    "L": "decoder layers, count",
    "H": "hidden size, elements",
    "d": "head dimension, elements",
    "n_h": "query heads, count",
    "E": "routed experts per MoE layer (0 for dense models), count",
    "k": "experts each token routes to (0 for dense models), count",
    "kv_b": "KV-cache bytes of one token over all layers of the whole model (unsharded), bytes",
    "n_kv": "KV heads, count",
    "I_ff": "dense MLP intermediate size, elements",
    "I_moe": "intermediate size of one routed expert, elements",
    "I_sh": "total intermediate size of the shared experts, elements",
    "V": "vocabulary size, tokens",
    "L_dense": "leading dense layers of an MoE model, count",
    "b_w": "bytes per weight element, bytes",
    "b_act": "bytes per activation element, bytes",
    "b_raw": "bytes per weight of the parts kept in BF16 (embeddings, LM head, router, norms), bytes",
    "r_kv": "MLA latent rank (kv_lora_rank), elements",
    "r_q": "MLA query rank (q_lora_rank), elements",
    "d_rope": "MLA RoPE head dimension, elements",
    "d_nope": "MLA non-RoPE head dimension, elements",
    "d_v": "MLA value head dimension, elements",
    "C_kv": "cap on the KV pool of one server (max_total_tokens), tokens",
    "B_blk": "KV page size (page_size), tokens",
    "bs_graph": "largest decode batch replayed from a CUDA graph (cuda_graph_max_bs), requests",
    "f_mem": "mem_fraction_static: share of GPU memory for weights and KV, fraction",
    "S_ttft": "TTFT target of goodput, s",
    "S_tpot": "TPOT target of goodput, s",
    "pi_hit": "share of requests whose prompt hits the prefix cache, fraction",
    "n_in_avg": "mean prompt length, tokens",
    "n_out_avg": "mean output length, tokens",
    "prefix_match": "mean cached tokens of a hitting request over n_in_avg, ratio",
    "scv_in": "squared coefficient of variation of uncached prompt tokens, ratio",
    "scv_out": "squared coefficient of variation of output lengths, ratio",
    "lambda_req": "request arrival rate of the whole deployment, requests/s",
}
for _f in fields(Efficiency):
    SYMBOL_UNITS[_f.name] = ("efficiency constant, s" if _f.name.endswith("_s")
                             else "efficiency constant, fraction of peak")
for _backend in ATTENTION_BACKENDS:
    SYMBOL_UNITS[f"s_{_backend}"] = f"time factor of the {_backend} attention backend, ratio"


def symbol_unit(sym: sympy.Symbol) -> str:
    """Unit text of a symbol, or 'law parameter' for symbols created by `extra_symbol`."""
    return SYMBOL_UNITS.get(sym.name, "law parameter")
