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
    """Query and KV heads on one GPU; KV heads are replicated when kv_heads < TP."""
    return m.num_heads / par.tp, ops.max(m.num_kv_heads / par.tp, 1)


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
    """Prefill attention of multi-head latent attention (MLA), heads split by TP.

    Prefill expands the latent into per-head keys and values, so it runs as
    MHA with qk_dim = nope + rope and v_dim per head; the cache holds the
    latent (kv_lora_rank + rope) per token.
    """
    heads = m.num_heads / par.tp
    qk_dim = m.qk_nope_head_dim + m.qk_rope_head_dim
    flops = 2 * heads * (qk_dim + m.v_head_dim) * extend_pairs
    latent = m.kv_lora_rank + m.qk_rope_head_dim
    bytes_ = (latent * m.kv_bytes * extend_kv_tokens
              + heads * (qk_dim + m.v_head_dim) * m.act_bytes * extend_tokens)
    return flops, bytes_


def mla_decode_work(m: ModelParams, par: ParallelParams, decode_seqs: Num, decode_ctx_tokens: Num) -> Work:
    """Absorbed MLA decode: every head attends over the shared latent cache.

    FLOPs per (head, context token): 2 x (kv_lora_rank + rope) for scores and
    2 x kv_lora_rank for the value sum. Bytes: the latent cache once per sequence.
    """
    heads = m.num_heads / par.tp
    latent = m.kv_lora_rank + m.qk_rope_head_dim
    flops = 2 * heads * (latent + m.kv_lora_rank) * decode_ctx_tokens
    bytes_ = latent * m.kv_bytes * decode_ctx_tokens + 2 * heads * latent * m.act_bytes * decode_seqs
    return flops, bytes_


def expected_experts_touched(ops: Any, num_experts: Num, top_k: Num, tokens: Num) -> Num:
    """Expected distinct experts that `tokens` tokens route to, each choosing top_k of E.

    E x (1 - (1 - k/E)^tokens), assuming uniform independent routing.
    """
    return num_experts * (1 - (1 - top_k / num_experts) ** tokens)


def all_reduce_time(ops: Any, message_bytes: Num, ranks: Num, link_bw: Num, steps: Num,
                    eff: Efficiency) -> Num:
    """All-reduce of `message_bytes` per step over `ranks` GPUs of one NVLink domain.

    The cheaper of SGLang's one-shot custom all-reduce (each GPU reads the
    other ranks' buffers: latency + (ranks - 1) x bytes / bw) and a ring
    all-reduce (2 (ranks - 1) / ranks x bytes / bw plus 2 (ranks - 1) latency
    hops), as SGLang switches to NCCL for large messages. Zero for one rank.
    """
    bw = link_bw * eff.comm_bandwidth
    one_shot = eff.allreduce_latency_s * steps + (ranks - 1) * message_bytes / bw
    ring = 2 * (ranks - 1) * eff.nccl_latency_s * steps + 2 * (ranks - 1) / ranks * message_bytes / bw
    return ops.where(ops.gt(ranks, 1), ops.min(one_shot, ring), 0)
