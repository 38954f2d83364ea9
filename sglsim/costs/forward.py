"""The forward-step law: one decoder forward of one server, composed from the layer laws.

step_time(ops, shape, ctx) is the single definition of how long a batch takes.
The simulator evaluates it with float ops (memoising the parts that depend on
token counts only), the symbolic trace replays it with recorded branch
choices, and the steady-state model evaluates it with SymPy ops.

Per layer a GPU runs: input norm, attention projections, RoPE and KV store,
attention (prefill and/or decode kernels), O projection, the attention
collective, post-attention norm, then the MLP or MoE and its collectives.
Per step: embedding, final norm, LM head on one row per sequence, sampling.

The collectives follow SGLang's parallel layouts (`ParallelParams`):

* plain TP: an all-reduce after attention and after the MLP/MoE, an all-reduce
  of the vocabulary-parallel embedding, an all-gather of the logits;
* DP attention: attention and its all-reduce stay inside the attn_tp group of
  one DP rank. The MLP/MoE runs on the tokens of all ranks, gathered before it
  and scattered after it. For extend batches SGLang gathers with an all-reduce
  of a zero-padded buffer and all-reduces the output. For padded decode
  batches it uses an all-gather and a reduce-scatter;
* DeepEP (moe_a2a="deepep"): tokens are scattered over the attention TP group,
  dispatched to their experts and combined back with all-to-alls; two-batch
  overlap runs two micro-batches so that one's all-to-alls proceed while the
  other computes: an MoE layer takes max(C', A) + (1 - overlap) x min(C', A)
  for computation C' (slowed by the SMs DeepEP holds) and all-to-all A;
* PP: each stage runs 1/pp of the layers, micro-batches flow between stages
  with one send/recv per stage boundary (see `pipeline_time`).

Launch costs follow SGLang: pure decode batches up to cuda_graph_max_bs replay
a CUDA graph, everything else launches kernels eagerly. With the overlap
scheduler the CPU's scheduling work runs beside the GPU step, so the step
takes the longer of the two.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple, Sequence

from .collectives import (all_gather_time, all_reduce_time, deepep_time, reduce_scatter_time,
                          send_recv_time)
from .efficiency import Efficiency
from .laws import (attention_decode_work, attention_extend_work, gemm_work, mla_decode_work,
                   mla_extend_work, roofline)
from .layers import (ELEMENTWISE_KERNELS_PER_LAYER, attention_projection_time, dense_mlp_time,
                     edge_time, layer_elementwise_time, lm_head_gemm_time, routed_experts_time,
                     router_time, sampling_time, shared_experts_time)
from .params import HardwareParams, ModelParams, Num, ParallelParams, RuntimeParams, StepShape

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


class LayerParts(NamedTuple):
    """Per-layer times that depend on token counts only (the simulator memoises them)."""

    dense_compute: Num
    """One dense-MLP layer: attention projections, elementwise kernels and the MLP."""
    dense_comm: Num
    """Collectives of one dense-MLP layer."""
    moe_compute: Num
    """One MoE layer: attention projections, elementwise kernels, router, shared and routed experts."""
    moe_a2a: Num
    """DeepEP dispatch and combine of one MoE layer (0 without DeepEP)."""
    moe_comm: Num
    """The other collectives of one MoE layer."""
    edge: Num
    """Embedding lookup (and its all-reduce) and final norm, once per step."""


def _is_one(value: Num) -> bool:
    return isinstance(value, (int, float)) and value == 1


def extending(shape: StepShape, par: ParallelParams) -> bool:
    """Return whether the step runs as an extend batch on the MoE side (any DP rank prefills)."""
    return shape.has_extend or (par.dp_attention and shape.any_extend)


def deepep_low_latency(shape: StepShape, par: ParallelParams) -> bool:
    """DeepEP kernel family of a step: low_latency, or auto while no rank extends."""
    if par.deepep_mode == "auto":
        return not extending(shape, par)
    return par.deepep_mode == "low_latency"


def moe_tokens(shape: StepShape, par: ParallelParams) -> Num:
    """Tokens through the MLP/MoE: every DP rank's under DP attention, else the batch's."""
    return shape.dp_tokens if par.dp_attention else shape.tokens


def _dp_gather_time(ops: Any, total_bytes: Num, shape: StepShape, c: LawContext) -> Num:
    """Gather every DP rank's hidden states onto each GPU of the server."""
    if extending(shape, c.par):
        return all_reduce_time(ops, total_bytes, c.par.tp, c.hw, c.eff, shape.steps)
    return all_gather_time(ops, total_bytes, c.par.tp, c.hw, c.eff, shape.steps)


def _dp_scatter_time(ops: Any, total_bytes: Num, shape: StepShape, c: LawContext) -> Num:
    """Reduce the MLP/MoE output over the server and hand each DP rank its own rows."""
    if extending(shape, c.par):
        return all_reduce_time(ops, total_bytes, c.par.tp, c.hw, c.eff, shape.steps)
    return reduce_scatter_time(ops, total_bytes, c.par.tp, c.hw, c.eff, shape.steps)


def _dense_layer(ops: Any, shape: StepShape, c: LawContext) -> tuple[Num, Num]:
    """(compute, collectives) of one dense-MLP layer, attention kernels excluded."""
    m, par, hw, eff, steps = c.model, c.par, c.hw, c.eff, shape.steps
    rank_tokens = shape.tokens
    rank_bytes = rank_tokens * m.hidden_size * m.act_bytes
    # The gated activation runs where the MLP runs; it is charged with the rank's tokens.
    attn = (attention_projection_time(ops, rank_tokens, steps, c)
            + layer_elementwise_time(ops, rank_tokens, steps, m.intermediate_size / par.dense_tp, c))
    attn_comm = all_reduce_time(ops, rank_bytes, par.attn_tp, hw, eff, steps)
    if _is_one(par.dense_tp):
        # moe_dense_tp_size 1: every GPU runs the whole MLP on its own tokens, no collective.
        return attn + dense_mlp_time(ops, rank_tokens, steps, 1, c), attn_comm
    if par.dp_attention:
        all_bytes = shape.dp_tokens * m.hidden_size * m.act_bytes
        mlp = dense_mlp_time(ops, shape.dp_tokens, steps, par.dense_tp, c)
        comm = _dp_gather_time(ops, all_bytes, shape, c) + _dp_scatter_time(ops, all_bytes, shape, c)
        return attn + mlp, attn_comm + comm
    mlp = dense_mlp_time(ops, rank_tokens, steps, par.dense_tp, c)
    return attn + mlp, attn_comm + all_reduce_time(ops, rank_bytes, par.dense_tp, hw, eff, steps)


def _moe_layer(ops: Any, shape: StepShape, c: LawContext) -> tuple[Num, Num, Num]:
    """(compute, all-to-all, other collectives) of one MoE layer, attention kernels excluded."""
    m, par, hw, eff, steps = c.model, c.par, c.hw, c.eff, shape.steps
    rank_tokens = shape.tokens
    rank_bytes = rank_tokens * m.hidden_size * m.act_bytes
    attn = (attention_projection_time(ops, rank_tokens, steps, c)
            + layer_elementwise_time(ops, rank_tokens, steps, m.shared_intermediate_size / par.shared_tp, c))
    experts = routed_experts_time(ops, shape.moe_rank_assignments, shape.experts_touched, steps, c)
    if par.deepep:
        # Attention output is reduce-scattered so each GPU dispatches its own slice of tokens,
        # and all-gathered inside the attention TP group after the combine.
        gpu_tokens = rank_tokens / par.attn_tp
        compute = (attn + router_time(ops, gpu_tokens, steps, c) + shared_experts_time(ops, gpu_tokens, steps, c)
                   + experts)
        low_latency = deepep_low_latency(shape, par)
        dispatch = deepep_time(ops, gpu_tokens, m.hidden_size * m.a2a_dispatch_bytes, m, par, hw, eff, steps,
                               low_latency)
        combine = deepep_time(ops, gpu_tokens, m.hidden_size * m.act_bytes, m, par, hw, eff, steps, low_latency)
        comm = (reduce_scatter_time(ops, rank_bytes, par.attn_tp, hw, eff, steps)
                + all_gather_time(ops, rank_bytes, par.attn_tp, hw, eff, steps))
        return compute, dispatch + combine, comm
    tokens = moe_tokens(shape, par)
    compute = attn + router_time(ops, tokens, steps, c) + shared_experts_time(ops, tokens, steps, c) + experts
    attn_comm = all_reduce_time(ops, rank_bytes, par.attn_tp, hw, eff, steps)
    if par.dp_attention:
        all_bytes = tokens * m.hidden_size * m.act_bytes
        comm = _dp_gather_time(ops, all_bytes, shape, c) + _dp_scatter_time(ops, all_bytes, shape, c)
        return compute, 0, attn_comm + comm
    # Without an all-to-all each GPU computes its experts' share of every token; an all-reduce combines.
    return compute, 0, attn_comm + all_reduce_time(ops, rank_bytes, par.tp, hw, eff, steps)


def layer_parts(ops: Any, shape: StepShape, c: LawContext) -> LayerParts:
    """Compute the token-dependent per-layer times of a step (attention kernels and LM head excluded)."""
    m, par = c.model, c.par
    dense_compute, dense_comm = _dense_layer(ops, shape, c)
    if m.is_moe:
        moe_compute, moe_a2a, moe_comm = _moe_layer(ops, shape, c)
    else:
        moe_compute = moe_a2a = moe_comm = 0
    edge = edge_time(shape.tokens, shape.steps, c)
    if not par.dp_attention:
        # The vocabulary-parallel embedding sums its shards with an all-reduce (SGLang replicates
        # the embedding under DP attention instead).
        embed_bytes = shape.tokens * m.hidden_size * m.act_bytes
        edge += all_reduce_time(ops, embed_bytes, par.tp, c.hw, c.eff, shape.steps)
    return LayerParts(dense_compute, dense_comm, moe_compute, moe_a2a, moe_comm, edge)


def head_time(ops: Any, shape: StepShape, c: LawContext) -> Num:
    """Time the LM head on the last position of each sequence, the logits all-gather, and sampling.

    The vocabulary is split over the TP group. Under DP attention the rows of
    every rank are gathered first. With --enable-dp-lm-head each rank keeps
    its own rows instead, and its attention TP group splits the vocabulary.
    """
    m, par, hw, eff, steps = c.model, c.par, c.hw, c.eff, shape.steps
    if par.dp_attention and not par.dp_lm_head:
        rows = shape.dp_seqs
        gather = _dp_gather_time(ops, rows * m.hidden_size * m.act_bytes, shape, c)
        vocab_tp = par.tp
    else:
        rows = shape.seqs
        gather = 0
        vocab_tp = par.attn_tp
    logits = all_gather_time(ops, rows * m.vocab_size * m.act_bytes, vocab_tp, hw, eff, steps)
    return (gather + lm_head_gemm_time(ops, rows, vocab_tp, steps, c) + logits
            + sampling_time(shape.seqs, steps, c))


def attention_time(ops: Any, shape: StepShape, c: LawContext) -> Num:
    """Attention kernels of one layer: the prefill kernel and/or the decode kernel.

    Each prefill query token costs `attn_prefill_pad_tokens` more query-key
    pairs than its causal span, and each decode sequence reads
    `attn_decode_pad_tokens` more KV tokens than its context: the kernels
    work on fixed-size tiles, so short spans cost more than their size.
    """
    m, par, hw, eff = c.model, c.par, c.hw, c.eff
    total: Num = 0
    if shape.has_extend:
        pairs = shape.extend_pairs + eff.attn_prefill_pad_tokens * shape.extend_tokens
        if m.is_mla:
            work = mla_extend_work(m, par, shape.extend_tokens, pairs, shape.extend_kv_tokens)
        else:
            work = attention_extend_work(ops, m, par, shape.extend_tokens, pairs, shape.extend_kv_tokens)
        total += roofline(ops, work, hw.attn_flops, hw.mem_bw, eff.attn_prefill_compute,
                          eff.attn_prefill_memory, eff.attn_floor_s, shape.steps)
    if shape.has_decode:
        ctx_tokens = shape.decode_ctx_tokens + eff.attn_decode_pad_tokens * shape.decode_seqs
        if m.is_mla:
            work = mla_decode_work(m, par, shape.decode_seqs, ctx_tokens)
        else:
            work = attention_decode_work(ops, m, par, shape.decode_seqs, ctx_tokens)
        total += roofline(ops, work, hw.attn_flops, hw.mem_bw, eff.attn_decode_compute,
                          eff.attn_decode_memory, eff.attn_floor_s, shape.steps)
    return total


def pipeline_time(ops: Any, stage_s: Num, shape: StepShape, c: LawContext) -> Num:
    """Step time of a pipeline of pp stages whose slowest stage takes `stage_s` for the whole batch.

    The batch is cut into m micro-batches (pp_microbatches). A micro-batch
    costs stage_s / m per stage, and pp - 1 of every pp slots end with a
    send/recv of its activations to the next stage. `steady` mirrors
    SGLang's PP event loop, which keeps m micro-batches in flight: a round in
    which every micro-batch advances through all stages takes max(m, pp)
    slots, so pp - m slots are bubbles when m < pp. `gpipe` fills and drains
    the pipeline every step: m + pp - 1 slots. With pp = 1 the law reduces to
    stage_s (the same branch structure in every algebra, so recorded branch
    choices replay with a symbolic pp).
    NOTE: per-kernel floors are counted once per batch, not once per micro-batch.
    """
    par, m = c.par, c.model
    micro = par.pp_microbatches
    slots = ops.max(micro, par.pp) if par.pp_schedule == "steady" else micro + par.pp - 1
    micro_bytes = shape.tokens * m.hidden_size * m.act_bytes / micro
    hop = send_recv_time(ops, micro_bytes, par, c.hw, c.eff, shape.steps)
    return slots / micro * stage_s + slots * (par.pp - 1) / par.pp * hop


def compose_gpu_time(ops: Any, parts: LayerParts, attn_s: Num, head_s: Num, shape: StepShape,
                     c: LawContext) -> Num:
    """GPU time of a step from its layer parts, per-layer attention kernels and LM head."""
    m, par = c.model, c.par
    dense_layer = parts.dense_compute + attn_s + parts.dense_comm
    if m.is_moe:
        compute = parts.moe_compute + attn_s
        if par.two_batch_overlap and par.deepep:
            # Two micro-batches: one computes while the other's dispatch/combine is in flight. The SMs
            # that DeepEP occupies slow the computation, and part of the shorter side stays exposed.
            slowed = compute / c.eff.tbo_compute_fraction
            exposed = (1 - c.eff.tbo_overlap_fraction) * ops.min(slowed, parts.moe_a2a)
            moe_layer = ops.max(slowed, parts.moe_a2a) + exposed + parts.moe_comm
        else:
            moe_layer = compute + parts.moe_a2a + parts.moe_comm
        layers = (m.num_layers - m.num_moe_layers) * dense_layer + m.num_moe_layers * moe_layer
    else:
        layers = m.num_layers * dense_layer
    stage = layers / par.pp + head_s + parts.edge
    return pipeline_time(ops, stage, shape, c)


def layer_kernels(c: LawContext) -> int:
    """Kernel launches per layer, for the eager-launch cost."""
    m, par = c.model, c.par
    gemms = 7 if m.is_mla else 2
    mlp = 6 if m.is_moe else 2
    a2a = 2 if par.deepep and m.is_moe else 0
    return gemms + mlp + a2a + ELEMENTWISE_KERNELS_PER_LAYER + 2 + 2


def step_kernels(shape: StepShape, c: LawContext) -> Num:
    """Kernel launches of a step on one pipeline stage: per-layer, attention and per-step kernels."""
    attn = int(shape.has_extend) + int(shape.has_decode)
    return shape.steps * ((layer_kernels(c) + attn) * c.model.num_layers / c.par.pp + STEP_KERNELS)


def combine_step_time(ops: Any, gpu_s: Num, shape: StepShape, c: LawContext) -> Num:
    """Add launch and CPU costs to the GPU time of a step.

    Pure decode batches of at most cuda_graph_max_bs sequences replay a graph
    (one replay cost) unless another DP rank extends. Every other step runs
    eagerly, where PyTorch's per-kernel dispatch leaves a gap of
    `launch_overhead_s` before each kernel. The scheduler's CPU time either
    overlaps the step (overlap scheduler) or adds to it.
    """
    eff, rt = c.eff, c.rt
    eager = gpu_s + step_kernels(shape, c) * eff.launch_overhead_s
    if rt.cuda_graph and shape.has_decode and not extending(shape, c.par):
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
    return compose_gpu_time(ops, layer_parts(ops, shape, c), attention_time(ops, shape, c),
                            head_time(ops, shape, c), shape, c)


def step_time(ops: Any, shape: StepShape, c: LawContext) -> Num:
    """Wall time of one forward step of a server (of one DP rank's view under DP attention)."""
    return combine_step_time(ops, gpu_time(ops, shape, c), shape, c)


def dp_step_time(ops: Any, rank_shapes: Sequence[StepShape], c: LawContext) -> Num:
    """Lock-step time of a DP-attention server: the slowest rank's step.

    Every rank's shape carries the server-wide dp_tokens, dp_seqs and
    any_extend, so the MoE part is the same on all ranks and the ranks differ
    in attention work only. Idle ranks run an empty batch.
    """
    total = step_time(ops, rank_shapes[0], c)
    for shape in rank_shapes[1:]:
        total = ops.max(total, step_time(ops, shape, c))
    return total


__all__ = ["LawContext", "LayerParts", "step_time", "dp_step_time", "gpu_time", "combine_step_time",
           "layer_parts", "compose_gpu_time", "head_time", "attention_time", "pipeline_time",
           "step_kernels", "gemm_work"]
