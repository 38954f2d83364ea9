"""Per-operation latency laws of one forward step, written once for both algebras.

Each law takes an `ops` object (see `ops.py`) and parameters that are numbers
or SymPy expressions. The work laws return FLOPs and bytes per GPU of the TP
group; `roofline` turns work into time:

    t = max(flops / (peak * eff_compute), bytes / (bandwidth * eff_memory)) + floor * kernels

Every law is linear in the step's shape features (see `StepShape`) once each
max/min/where has chosen a side, so the sum of a law over steps that chose the
same sides equals the law of the summed shape.
"""

from __future__ import annotations

from typing import Any

from .efficiency import Efficiency
from .params import HardwareParams, ModelParams, Num, ParallelParams

Work = tuple[Num, Num]
"""(FLOPs, bytes) of one kernel class on one GPU."""


def roofline(ops: Any, work: Work, peak_flops: Num, mem_bw: Num, eff_compute: Num,
             eff_memory: Num, floor_s: Num, kernels: Num) -> Num:
    """Roofline time of `kernels` launches doing `work` in total, plus their floors."""
    flops, bytes_ = work
    return ops.max(flops / (peak_flops * eff_compute), bytes_ / (mem_bw * eff_memory)) + floor_s * kernels


def memory_time(bytes_: Num, mem_bw: Num, eff_memory: Num, floor_s: Num, kernels: Num) -> Num:
    """Time of bandwidth-bound kernels (no FLOP side): bytes / (bw x eff) + floors."""
    return bytes_ / (mem_bw * eff_memory) + floor_s * kernels


def gemm_work(tokens: Num, n: Num, k: Num, weight_bytes: Num, act_bytes: Num, steps: Num) -> Work:
    """FLOPs and bytes of `steps` GEMMs [tokens x k] @ [k x n] (tokens summed over steps).

    Bytes: the weight matrix once per step, plus activations in and out.
    """
    flops = 2 * tokens * n * k
    bytes_ = steps * n * k * weight_bytes + tokens * (k + n) * act_bytes
    return flops, bytes_


def gemm_time(ops: Any, tokens: Num, n: Num, k: Num, steps: Num, m: ModelParams,
              hw: HardwareParams, eff: Efficiency) -> Num:
    """Time of one projection per step with a weight of shape [k x n] per GPU."""
    work = gemm_work(tokens, n, k, m.weight_bytes, m.act_bytes, steps)
    return roofline(ops, work, hw.gemm_flops, hw.mem_bw, eff.gemm_compute, eff.gemm_memory,
                    eff.gemm_floor_s, steps)


def heads_per_rank(ops: Any, m: ModelParams, par: ParallelParams) -> tuple[Num, Num]:
    """Query and KV heads on one GPU; KV heads are replicated when kv_heads < attention TP."""
    return m.num_heads / par.attn_tp, ops.max(m.num_kv_heads / par.attn_tp, 1)


def attention_extend_work(ops: Any, m: ModelParams, par: ParallelParams, extend_tokens: Num,
                          extend_pairs: Num, extend_kv_tokens: Num) -> Work:
    """Causal prefill attention over new tokens that follow a cached prefix.

    FLOPs: 4 x q_heads x head_dim per query-key pair (QK^T and PV, 2 FLOPs per
    multiply-add). Bytes: K and V of every visible token, plus Q in and O out.
    """
    q_heads, kv_heads = heads_per_rank(ops, m, par)
    flops = 4 * q_heads * m.head_dim * extend_pairs
    bytes_ = (2 * kv_heads * m.head_dim * m.kv_bytes * extend_kv_tokens
              + 2 * q_heads * m.head_dim * m.act_bytes * extend_tokens)
    return flops, bytes_


def attention_decode_work(ops: Any, m: ModelParams, par: ParallelParams, decode_seqs: Num,
                          decode_ctx_tokens: Num) -> Work:
    """Decode attention: one query per sequence against its whole KV cache."""
    q_heads, kv_heads = heads_per_rank(ops, m, par)
    flops = 4 * q_heads * m.head_dim * decode_ctx_tokens
    bytes_ = (2 * kv_heads * m.head_dim * m.kv_bytes * decode_ctx_tokens
              + 2 * q_heads * m.head_dim * m.act_bytes * decode_seqs)
    return flops, bytes_


def mla_extend_work(m: ModelParams, par: ParallelParams, extend_tokens: Num, extend_pairs: Num,
                    extend_kv_tokens: Num) -> Work:
    """Prefill attention of multi-head latent attention (MLA), heads split by attention TP.

    SGLang runs MLA prefill in MHA form (DeepSeek-V2/V3's design for compute-
    bound prefill): the cached latent of every visible token is expanded by
    kv_b_proj into per-head keys (nope + rope dims) and values, then causal
    attention runs with qk_dim = nope + rope and v_dim per head. FLOPs: the
    attention itself, 2 x heads x (qk_dim + v_dim) per query-key pair, plus
    expanding the cached prefix tokens (new tokens are expanded by the
    projection law). Bytes: the latent cache read once, the expanded K and V
    written and read back, Q in and O out.
    """
    heads = m.num_heads / par.attn_tp
    qk_dim = m.qk_nope_head_dim + m.qk_rope_head_dim
    kv_dim = heads * (qk_dim + m.v_head_dim)
    prefix_tokens = extend_kv_tokens - extend_tokens
    flops = (2 * heads * (qk_dim + m.v_head_dim) * extend_pairs
             + 2 * prefix_tokens * m.kv_lora_rank * heads * (m.qk_nope_head_dim + m.v_head_dim))
    latent = m.kv_lora_rank + m.qk_rope_head_dim
    bytes_ = (latent * m.kv_bytes * extend_kv_tokens
              + 2 * kv_dim * m.act_bytes * extend_kv_tokens
              + kv_dim * m.act_bytes * extend_tokens)
    return flops, bytes_


def mla_decode_work(m: ModelParams, par: ParallelParams, decode_seqs: Num, decode_ctx_tokens: Num) -> Work:
    """Absorbed MLA decode: every head attends over the shared latent cache.

    The key projection is absorbed into the query, so each head scores
    against the latent (kv_lora_rank + rope dims) and sums values in the
    latent space (kv_lora_rank dims). FLOPs per (head, context token):
    2 x (kv_lora_rank + rope) + 2 x kv_lora_rank. Bytes: the latent cache
    once per sequence, plus each head's absorbed query in and latent output out.
    """
    heads = m.num_heads / par.attn_tp
    latent = m.kv_lora_rank + m.qk_rope_head_dim
    flops = 2 * heads * (latent + m.kv_lora_rank) * decode_ctx_tokens
    bytes_ = latent * m.kv_bytes * decode_ctx_tokens + heads * (latent + m.kv_lora_rank) * m.act_bytes * decode_seqs
    return flops, bytes_


def expected_experts_touched(ops: Any, num_experts: Num, top_k: Num, tokens: Num) -> Num:
    """Expected distinct experts that `tokens` tokens route to, each choosing top_k of E.

    E x (1 - (1 - k/E)^tokens), assuming uniform independent routing.
    """
    return num_experts * (1 - (1 - top_k / num_experts) ** tokens)


def moe_rank_skew(m: ModelParams, par: ParallelParams, eff: Efficiency) -> Num:
    """Systematic excess load of the busiest EP rank, as a fraction of the mean.

    With SGLang's trivial expert placement it is eff.moe_rank_skew; EPLB
    (enabled, or implied by redundant experts) cuts it to eff.moe_rank_skew_eplb,
    and R redundant replicas of hot experts shrink that by E / (E + R). One EP
    rank has no imbalance, hence the (1 - 1/ep) factor.
    """
    rebalanced = par.eplb or not (isinstance(par.num_redundant_experts, (int, float))
                                  and par.num_redundant_experts == 0)
    if rebalanced:
        base = eff.moe_rank_skew_eplb * m.num_experts / (m.num_experts + par.num_redundant_experts)
    else:
        base = eff.moe_rank_skew
    return base * (1 - 1 / par.ep)


def expected_max_rank_assignments(ops: Any, tokens: Num, m: ModelParams, par: ParallelParams,
                                  eff: Efficiency) -> Num:
    """Expected (token, expert) pairs on the busiest of `ep` ranks for `tokens` MoE tokens.

    The mean is tokens x top_k / ep. The busiest rank adds the systematic skew
    (`moe_rank_skew`) and the random excess of the largest of ep roughly
    normal counts: sqrt(2 ln(ep) x mean x (1 - 1/ep)).
    """
    mean = tokens * m.top_k / par.ep
    spread = (2 * ops.log(par.ep) * mean * (1 - 1 / par.ep)) ** 0.5
    return mean * (1 + moe_rank_skew(m, par, eff)) + spread
