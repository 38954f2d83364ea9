"""Compute laws of the parts of one decoder layer and of the LM head, per GPU.

Each function returns the time of one kind of kernel for `tokens` tokens
(summed over `steps` steps) on one GPU, with the sharding of its
`ParallelParams`: attention projections split by attention TP, dense MLPs by
their TP degree, routed experts by EP (experts per GPU) and moe_tp (a slice
of each expert), shared experts by shared_tp. `forward.py` composes them with
the attention kernels and the collectives into the step law.
"""

from __future__ import annotations

from typing import Any

from .laws import gemm_time, heads_per_rank, memory_time, roofline
from .params import Num

ELEMENTWISE_KERNELS_PER_LAYER = 5
"""Two fused add+RMSNorm, RoPE, KV-cache store and the gated activation."""
MOE_SHUFFLE_KERNELS = 3
"""Scatter of tokens into expert order, gated activation, weighted gather back."""


def _nonzero(value: Num) -> bool:
    return not (isinstance(value, (int, float)) and value == 0)


def attention_projection_time(ops: Any, tokens: Num, steps: Num, c: Any) -> Num:
    """Time the QKV and O projections of one layer (MLA: its down and up projections).

    SGLang replicates MLA's down projections (q_a, kv_a) on every GPU and
    splits the per-head up projections and the output projection by attention TP.
    """
    m, par = c.model, c.par
    h = m.hidden_size
    if m.is_mla:
        heads = m.num_heads / par.attn_tp
        qk_dim = m.qk_nope_head_dim + m.qk_rope_head_dim
        q_in = m.q_lora_rank if _nonzero(m.q_lora_rank) else h
        t = gemm_time(ops, tokens, m.kv_lora_rank + m.qk_rope_head_dim, h, steps, m, c.hw, c.eff)
        if _nonzero(m.q_lora_rank):
            t += gemm_time(ops, tokens, m.q_lora_rank, h, steps, m, c.hw, c.eff)
        t += gemm_time(ops, tokens, heads * qk_dim, q_in, steps, m, c.hw, c.eff)
        t += gemm_time(ops, tokens, heads * (m.qk_nope_head_dim + m.v_head_dim), m.kv_lora_rank,
                       steps, m, c.hw, c.eff)
        return t + gemm_time(ops, tokens, h, heads * m.v_head_dim, steps, m, c.hw, c.eff)
    q_heads, kv_heads = heads_per_rank(ops, m, par)
    qkv = gemm_time(ops, tokens, (q_heads + 2 * kv_heads) * m.head_dim, h, steps, m, c.hw, c.eff)
    o = gemm_time(ops, tokens, h, q_heads * m.head_dim, steps, m, c.hw, c.eff)
    return qkv + o


def dense_mlp_time(ops: Any, tokens: Num, steps: Num, tp: Num, c: Any) -> Num:
    """Gate/up and down projections of a dense MLP split over `tp` GPUs."""
    m = c.model
    inter = m.intermediate_size / tp
    gate_up = gemm_time(ops, tokens, 2 * inter, m.hidden_size, steps, m, c.hw, c.eff)
    down = gemm_time(ops, tokens, m.hidden_size, inter, steps, m, c.hw, c.eff)
    return gate_up + down


def router_time(ops: Any, tokens: Num, steps: Num, c: Any) -> Num:
    """Time the MoE router (gate) GEMM, replicated on every GPU that routes `tokens`."""
    m = c.model
    return gemm_time(ops, tokens, m.num_experts, m.hidden_size, steps, m, c.hw, c.eff)


def routed_experts_time(ops: Any, rank_assignments: Num, experts_touched: Num, steps: Num, c: Any) -> Num:
    """Time the routed experts' grouped GEMMs on the busiest EP rank, and their token shuffling.

    The rank has (E + R) / ep experts (R redundant replicas), each split
    over moe_tp GPUs. FLOPs: 2 x 3 x hidden x inter / moe_tp per (token,
    expert) pair the rank computes. Weight bytes: the rank's share of the
    experts the batch touches, experts_touched x (E + R) / (E x ep). Two
    grouped GEMMs (gate/up and down) per step. Separate bandwidth-bound
    kernels move every pair: the scatter into expert order (hidden at the
    dispatch precision, read and written), the gated activation (2 inter in,
    inter out) and the weighted gather back (hidden).
    """
    m, par = c.model, c.par
    h = m.hidden_size
    inter = m.moe_intermediate_size / par.moe_tp
    local_share = (m.num_experts + par.num_redundant_experts) / (m.num_experts * par.ep)
    flops = 2 * rank_assignments * 3 * h * inter
    bytes_ = (experts_touched * local_share * 3 * h * inter * m.weight_bytes
              + rank_assignments * (2 * h + 3 * inter) * m.act_bytes)
    gemms = roofline(ops, (flops, bytes_), c.hw.gemm_flops, c.hw.mem_bw, c.eff.gemm_compute,
                     c.eff.gemm_memory, c.eff.gemm_floor_s, 2 * steps)
    shuffle_bytes = rank_assignments * (2 * h * m.a2a_dispatch_bytes + (h + 3 * inter) * m.act_bytes)
    shuffle = memory_time(shuffle_bytes, c.hw.mem_bw, c.eff.elementwise_memory, c.eff.elementwise_floor_s,
                          MOE_SHUFFLE_KERNELS * steps)
    return gemms + shuffle


def shared_experts_time(ops: Any, tokens: Num, steps: Num, c: Any) -> Num:
    """Shared experts of one MoE layer on `tokens` tokens, split over shared_tp GPUs (0 if none)."""
    m = c.model
    if not _nonzero(m.shared_intermediate_size):
        return 0
    shared = m.shared_intermediate_size / c.par.shared_tp
    return (gemm_time(ops, tokens, 2 * shared, m.hidden_size, steps, m, c.hw, c.eff)
            + gemm_time(ops, tokens, m.hidden_size, shared, steps, m, c.hw, c.eff))


def layer_elementwise_time(ops: Any, tokens: Num, steps: Num, mlp_inter: Num, c: Any) -> Num:
    """Norms, residual adds, RoPE, KV store and the MLP's gated activation of one layer.

    `mlp_inter` is the intermediate width per GPU whose activation runs on
    these tokens (the dense MLP's, or the shared experts' in an MoE layer;
    the routed experts' activation belongs to `routed_experts_time`).
    """
    m, par = c.model, c.par
    if m.is_mla:
        heads = m.num_heads / par.attn_tp
        qk = heads * (m.qk_nope_head_dim + m.qk_rope_head_dim) + m.qk_rope_head_dim
        kv_store = m.kv_lora_rank + m.qk_rope_head_dim
    else:
        q_heads, kv_heads = heads_per_rank(ops, m, par)
        qk = (q_heads + kv_heads) * m.head_dim
        kv_store = 2 * kv_heads * m.head_dim
    per_token = (8 * m.hidden_size + 2 * qk + 3 * mlp_inter) * m.act_bytes + kv_store * m.kv_bytes
    return memory_time(tokens * per_token, c.hw.mem_bw, c.eff.elementwise_memory,
                       c.eff.elementwise_floor_s, ELEMENTWISE_KERNELS_PER_LAYER * steps)


def edge_time(tokens: Num, steps: Num, c: Any) -> Num:
    """Embedding lookup and final norm of a step (bandwidth-bound)."""
    m = c.model
    return memory_time(tokens * 3 * m.hidden_size * m.act_bytes, c.hw.mem_bw,
                       c.eff.elementwise_memory, c.eff.elementwise_floor_s, 2 * steps)


def lm_head_gemm_time(ops: Any, rows: Num, vocab_tp: Num, steps: Num, c: Any) -> Num:
    """LM head on `rows` last positions with the vocabulary split over `vocab_tp` GPUs."""
    m = c.model
    return gemm_time(ops, rows, m.vocab_size / vocab_tp, m.hidden_size, steps, m, c.hw, c.eff)


def sampling_time(seqs: Num, steps: Num, c: Any) -> Num:
    """Softmax and sampling over the full vocabulary of each sequence (FP32 logits read twice)."""
    m = c.model
    return memory_time(seqs * m.vocab_size * 4 * 2, c.hw.mem_bw, c.eff.elementwise_memory,
                       c.eff.elementwise_floor_s, 2 * steps)
