"""The forward-step law: one decoder forward on one TP group, composed from `laws.py`.

step_time(ops, shape, ctx) is the single definition of how long a batch takes.
The simulator evaluates it with float ops (memoising the parts that depend on
one integer only), the symbolic trace replays it with recorded branch choices,
and the steady-state model evaluates it with SymPy ops.

Per layer the GPU runs: input norm, QKV projection, RoPE and KV store,
attention (prefill and/or decode kernels), O projection, all-reduce,
post-attention norm, MLP or MoE, all-reduce. Per step: embedding, final norm,
LM head on one row per sequence, sampling. Launch costs follow SGLang: pure
decode batches up to cuda_graph_max_bs replay a CUDA graph, everything else
launches kernels eagerly. With the overlap scheduler the CPU's scheduling work
runs beside the GPU step, so the step takes the longer of the two.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .efficiency import Efficiency
from .laws import (all_reduce_time, attention_decode_work, attention_extend_work, gemm_time,
                   gemm_work, heads_per_rank, memory_time, mla_decode_work, mla_extend_work,
                   roofline)
from .params import HardwareParams, ModelParams, Num, ParallelParams, RuntimeParams, StepShape

ELEMENTWISE_KERNELS_PER_LAYER = 5
"""Two fused add+RMSNorm, RoPE, KV-cache store and the gated activation."""
STEP_KERNELS = 5
"""Embedding, final norm, LM head, logits gather and sampling."""


@dataclass(frozen=True)
class LawContext:
    """Everything a forward-step law reads besides the batch shape."""

    model: ModelParams
    par: ParallelParams
    hw: HardwareParams
    eff: Efficiency
    rt: RuntimeParams


def attention_projection_time(ops: Any, tokens: Num, steps: Num, c: LawContext) -> Num:
    """QKV and O projections of one layer (MLA: its down/up projections)."""
    m, par = c.model, c.par
    h = m.hidden_size
    if m.is_mla:
        heads = m.num_heads / par.tp
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


def _nonzero(value: Num) -> bool:
    """False for a zero in either algebra (SymPy's L - L is zero too): the feature is absent."""
    if isinstance(value, (int, float)):
        return value != 0
    return getattr(value, "is_zero", None) is not True


def dense_mlp_time(ops: Any, tokens: Num, steps: Num, c: LawContext) -> Num:
    """Gate/up and down projections of a dense MLP sharded by TP."""
    m = c.model
    inter = m.intermediate_size / c.par.tp
    gate_up = gemm_time(ops, tokens, 2 * inter, m.hidden_size, steps, m, c.hw, c.eff)
    down = gemm_time(ops, tokens, m.hidden_size, inter, steps, m, c.hw, c.eff)
    return gate_up + down


def moe_time(ops: Any, tokens: Num, experts_touched: Num, steps: Num, c: LawContext) -> Num:
    """Routed experts (grouped GEMM over the experts touched), router and shared experts.

    Experts are sharded by TP (SGLang's default without expert parallelism):
    each GPU holds 1/TP of every expert. Weight bytes read per step are the
    experts the batch touches; FLOPs count top_k experts per token.
    """
    m, h = c.model, c.model.hidden_size
    inter = m.moe_intermediate_size / c.par.tp
    router = gemm_time(ops, tokens, m.num_experts, h, steps, m, c.hw, c.eff)
    flops = 2 * tokens * m.top_k * 3 * h * inter
    bytes_ = (experts_touched * 3 * h * inter * m.weight_bytes
              + tokens * m.top_k * (2 * h + 3 * inter) * m.act_bytes)
    experts = roofline(ops, (flops, bytes_), c.hw.gemm_flops, c.hw.mem_bw, c.eff.gemm_compute,
                       c.eff.gemm_memory, c.eff.gemm_floor_s, 2 * steps)
    total = router + experts
    if _nonzero(m.shared_intermediate_size):
        shared = m.shared_intermediate_size / c.par.tp
        total += gemm_time(ops, tokens, 2 * shared, h, steps, m, c.hw, c.eff)
        total += gemm_time(ops, tokens, h, shared, steps, m, c.hw, c.eff)
    return total


def layer_elementwise_time(ops: Any, tokens: Num, steps: Num, c: LawContext) -> Num:
    """Norms, residual adds, RoPE, KV store and activation of one layer (bandwidth-bound)."""
    m = c.model
    if m.is_mla:
        heads = m.num_heads / c.par.tp
        qk = heads * (m.qk_nope_head_dim + m.qk_rope_head_dim) + m.qk_rope_head_dim
        kv_store = m.kv_lora_rank + m.qk_rope_head_dim
    else:
        q_heads, kv_heads = heads_per_rank(ops, m, c.par)
        qk = (q_heads + kv_heads) * m.head_dim
        kv_store = 2 * kv_heads * m.head_dim
    inter = (m.moe_intermediate_size * m.top_k if m.is_moe else m.intermediate_size) / c.par.tp
    per_token = (8 * m.hidden_size + 2 * qk + 3 * inter) * m.act_bytes + kv_store * m.kv_bytes
    return memory_time(tokens * per_token, c.hw.mem_bw, c.eff.elementwise_memory,
                       c.eff.elementwise_floor_s, ELEMENTWISE_KERNELS_PER_LAYER * steps)


def layer_comm_time(ops: Any, tokens: Num, steps: Num, c: LawContext) -> Num:
    """The two TP all-reduces of one layer (after the O projection and after the MLP)."""
    message = tokens * c.model.hidden_size * c.model.act_bytes
    return 2 * all_reduce_time(ops, message, c.par.tp, c.hw.tp_link_bw, steps, c.eff)


def layer_kernels(c: LawContext) -> int:
    """Kernel launches per layer, for the eager-launch cost."""
    m = c.model
    gemms = 7 if m.is_mla else 2
    mlp = 6 if m.is_moe else 2
    return gemms + mlp + ELEMENTWISE_KERNELS_PER_LAYER + 2 + 2


def token_layers_time(ops: Any, tokens: Num, experts_touched: Num, steps: Num, c: LawContext) -> Num:
    """All per-layer work that depends on the token count only, over every layer.

    Includes the embedding lookup and the final norm. This is the part the
    simulator memoises by token count.
    """
    m = c.model
    per_layer = (attention_projection_time(ops, tokens, steps, c)
                 + layer_elementwise_time(ops, tokens, steps, c)
                 + layer_comm_time(ops, tokens, steps, c))
    total = m.num_layers * per_layer
    dense_layers = m.num_layers - m.num_moe_layers
    if m.is_moe:
        total += m.num_moe_layers * moe_time(ops, tokens, experts_touched, steps, c)
        if _nonzero(dense_layers):
            total += dense_layers * dense_mlp_time(ops, tokens, steps, c)
    else:
        total += m.num_layers * dense_mlp_time(ops, tokens, steps, c)
    edge = memory_time(tokens * 3 * m.hidden_size * m.act_bytes, c.hw.mem_bw,
                       c.eff.elementwise_memory, c.eff.elementwise_floor_s, 2 * steps)
    return total + edge


def head_time(ops: Any, seqs: Num, steps: Num, c: LawContext) -> Num:
    """LM head on the last position of each sequence, then sampling over the vocabulary."""
    m = c.model
    vocab = m.vocab_size / c.par.tp
    lm_head = gemm_time(ops, seqs, vocab, m.hidden_size, steps, m, c.hw, c.eff)
    sampling = memory_time(seqs * m.vocab_size * 4 * 2, c.hw.mem_bw, c.eff.elementwise_memory,
                           c.eff.elementwise_floor_s, 2 * steps)
    return lm_head + sampling


def attention_time(ops: Any, shape: StepShape, c: LawContext) -> Num:
    """Attention kernels of one layer: the prefill kernel and/or the decode kernel."""
    m, par, hw, eff = c.model, c.par, c.hw, c.eff
    total: Num = 0
    if shape.has_extend:
        if m.is_mla:
            work = mla_extend_work(m, par, shape.extend_tokens, shape.extend_pairs, shape.extend_kv_tokens)
        else:
            work = attention_extend_work(ops, m, par, shape.extend_tokens, shape.extend_pairs,
                                         shape.extend_kv_tokens)
        total += roofline(ops, work, hw.attn_flops, hw.mem_bw, eff.attn_prefill_compute,
                          eff.attn_prefill_memory, eff.attn_floor_s, shape.steps)
    if shape.has_decode:
        if m.is_mla:
            work = mla_decode_work(m, par, shape.decode_seqs, shape.decode_ctx_tokens)
        else:
            work = attention_decode_work(ops, m, par, shape.decode_seqs, shape.decode_ctx_tokens)
        total += roofline(ops, work, hw.attn_flops, hw.mem_bw, eff.attn_decode_compute,
                          eff.attn_decode_memory, eff.attn_floor_s, shape.steps)
    return total


def step_kernels(shape: StepShape, c: LawContext) -> Num:
    """Kernel launches of a step: per-layer kernels, attention kernels and per-step kernels."""
    attn = int(shape.has_extend) + int(shape.has_decode)
    return shape.steps * ((layer_kernels(c) + attn) * c.model.num_layers + STEP_KERNELS)


def combine_step_time(ops: Any, gpu_s: Num, shape: StepShape, c: LawContext) -> Num:
    """Add launch and CPU costs to the GPU time of a step.

    Pure decode batches of at most cuda_graph_max_bs sequences replay a graph
    (one replay cost); others launch every kernel, and the GPU idles whenever
    launching is slower than the kernels run. The scheduler's CPU time either
    overlaps the step (overlap scheduler) or adds to it.
    """
    eff, rt = c.eff, c.rt
    eager = ops.max(gpu_s, step_kernels(shape, c) * eff.launch_overhead_s)
    if rt.cuda_graph and shape.has_decode and not shape.has_extend:
        launched = ops.where(ops.le(shape.decode_seqs, rt.cuda_graph_max_bs),
                             gpu_s + eff.graph_launch_s * shape.steps, eager)
    else:
        launched = eager
    cpu = eff.sched_overhead_s * shape.steps + eff.sched_overhead_per_seq_s * shape.seqs
    if rt.overlap:
        return ops.max(launched, cpu)
    return launched + cpu


def gpu_time(ops: Any, shape: StepShape, c: LawContext) -> Num:
    """GPU time of one step (or of a group of steps sharing branch choices)."""
    return (token_layers_time(ops, shape.tokens, shape.experts_touched, shape.steps, c)
            + c.model.num_layers * attention_time(ops, shape, c)
            + head_time(ops, shape.seqs, shape.steps, c))


def step_time(ops: Any, shape: StepShape, c: LawContext) -> Num:
    """Wall time of one forward step of a TP group (the law the simulator runs)."""
    return combine_step_time(ops, gpu_time(ops, shape, c), shape, c)


__all__ = ["LawContext", "step_time", "gpu_time", "combine_step_time", "token_layers_time",
           "head_time", "attention_time", "step_kernels", "gemm_work"]
