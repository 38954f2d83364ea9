"""Symbolic model sizes and per-GPU memory, mirroring `ModelSpec` and SGLang's memory plan.

`symbolic_model_spec` builds a `ModelSpec` whose dimensions are symbols
(zero where the template model lacks a feature), so `num_params()` and
`active_params_per_token()` run the very code the simulator's memory plan
runs and return SymPy expressions.
"""

from __future__ import annotations

from dataclasses import replace

import sympy
from sympy import Expr

from ..hardware.models import ModelSpec
from ..serving.memory_plan import MB
from .symbols import ConfigSymbols


def symbolic_model_spec(symbols: ConfigSymbols, template: ModelSpec) -> ModelSpec:
    """Return a copy of `template` whose nonzero dimensions are symbols."""
    s = symbols

    def pick(value: int, sym: sympy.Symbol) -> object:
        return sym if value else 0

    return replace(
        template,
        num_layers=s.num_layers, hidden_size=s.hidden_dim, num_attention_heads=s.num_heads,
        num_key_value_heads=s.num_kv_heads, head_dim=s.head_dim,
        intermediate_size=pick(template.intermediate_size, s.intermediate_size), vocab_size=s.vocab_size,
        num_experts=pick(template.num_experts, s.num_experts),
        num_experts_per_tok=pick(template.num_experts_per_tok, s.top_k_experts),
        moe_intermediate_size=pick(template.moe_intermediate_size, s.moe_intermediate_size),
        shared_expert_intermediate_size=pick(template.shared_expert_intermediate_size, s.shared_intermediate_size),
        num_dense_layers=pick(template.num_dense_layers, s.num_dense_layers),
        kv_lora_rank=pick(template.kv_lora_rank, s.kv_lora_rank), q_lora_rank=pick(template.q_lora_rank, s.q_lora_rank),
        qk_rope_head_dim=pick(template.qk_rope_head_dim, s.qk_rope_head_dim),
        qk_nope_head_dim=pick(template.qk_nope_head_dim, s.qk_nope_head_dim),
        v_head_dim=pick(template.v_head_dim, s.v_head_dim),
    )


def weight_bytes_per_gpu(symbols: ConfigSymbols, model: ModelSpec, tp: Expr) -> Expr:
    """Weights one GPU of a server holds, as SGLang shards them (one pipeline stage, no DP attention).

    Attention heads split by TP. A GQA server splits its KV projections over
    min(TP, n_kv) GPUs (one KV head per GPU at least), and an MLA server
    replicates its down projections. Dense MLPs and shared experts split by
    TP. Routed experts split over EP ranks of TP / EP GPUs each, which puts
    1 / TP of them on each GPU whatever EP is. Embedding and LM head split by
    TP, and norms are replicated. Embeddings, LM head, router and norms stay
    in BF16 (b_raw).
    """
    s = symbols
    wb, raw, h = s.weight_bytes, s.unquantized_bytes, model.hidden_size
    if model.is_mla:
        heads = model.num_attention_heads
        qk_dim = model.qk_nope_head_dim + model.qk_rope_head_dim
        q_in = model.q_lora_rank if model.q_lora_rank else h
        replicated = h * (model.kv_lora_rank + model.qk_rope_head_dim) + (h * model.q_lora_rank if model.q_lora_rank else 0)
        split = (q_in * heads * qk_dim + model.kv_lora_rank * heads * (model.qk_nope_head_dim + model.v_head_dim)
                 + heads * model.v_head_dim * h)
        attention = (replicated + split / tp) * wb
    else:
        q = h * model.num_attention_heads * model.head_dim
        kv = 2 * h * model.num_key_value_heads * model.head_dim
        attention = (2 * q / tp + kv / sympy.Min(tp, model.num_key_value_heads)) * wb
    total = attention * model.num_layers
    total += model.dense_mlp_params() * model.num_mlp_dense_layers * wb / tp
    if model.is_moe:
        routed = model.num_experts * model.expert_params() * wb / tp
        shared = model.shared_expert_params() * wb / tp
        total += (routed + shared + model.router_params() * raw) * model.num_moe_layers
    table = model.vocab_size * h * raw
    total += table / tp + (0 if model.tie_word_embeddings else table / tp)
    return total + (2 * model.num_layers + 1) * h * raw


def kv_bytes_per_token_per_gpu(symbols: ConfigSymbols, model: ModelSpec, tp: Expr) -> Expr:
    """KV bytes one token occupies on one GPU: kv_b x max(n_kv / TP, 1) / n_kv (MLA: the whole latent, kv_b)."""
    s = symbols
    if model.is_mla:
        return s.kv_bytes_per_token
    return s.kv_bytes_per_token * sympy.Max(s.num_kv_heads / tp, 1) / s.num_kv_heads


def reserve_bytes(symbols: ConfigSymbols, tp: Expr) -> Expr:
    """SGLang's memory kept outside the static pool: 512 + 1.5 max(c, 2048) + 2 bs_graph + TP / 8 x 1024 MB.

    On GPUs above 60 GB SGLang keeps at least 10 GB; the Max covers it.
    """
    s = symbols
    reserve_mb = 512 + sympy.Rational(3, 2) * sympy.Max(s.chunk_size, 2048) + 2 * s.cuda_graph_max_bs + tp * 128
    floor_mb = sympy.Piecewise((10 * 1024, s.gpu_mem_cap > 60 * 1024 * MB), (0, True))
    return MB * sympy.Max(reserve_mb, floor_mb)


def kv_pool_tokens(symbols: ConfigSymbols, model: ModelSpec, tp: Expr) -> Expr:
    """KV-pool size of one server in tokens: min(C_kv, (f_mem x M_gpu - weights per GPU) / KV bytes per token per GPU).

    Zero when the weights do not fit: such a server can run no request.
    """
    s = symbols
    budget = sympy.Max(s.mem_fraction_static * s.gpu_mem_cap - weight_bytes_per_gpu(symbols, model, tp), 0)
    return sympy.Min(s.cache_capacity, budget / kv_bytes_per_token_per_gpu(symbols, model, tp))


def flops_per_token(symbols: ConfigSymbols, model: ModelSpec) -> Expr:
    """Weight FLOPs of one token through every layer (2 x active parameters, embedding lookups excluded)."""
    embedding = model.embedding_params()
    return 2 * (model.active_params_per_token() - embedding)
