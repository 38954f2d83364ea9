"""Collective-communication laws between the GPUs of one server, in both algebras.

Each law returns the time of one collective per step summed over `steps`
steps: message sizes are totals over those steps and fixed latencies are
multiplied by `steps`, so every law is homogeneous of degree one like the
rest of the step law. Topology comes from the GPU preset. A group of `ranks`
GPUs that fits in one NVLink domain talks over NVLink. Larger groups span
ranks / nvlink_domain nodes joined by InfiniBand, one NIC per GPU.

Algorithms (the cheapest applicable one is taken with `ops.min`, as NCCL's
tuner and SGLang's custom all-reduce switch pick the fastest):

* one-shot all-reduce (SGLang's custom all-reduce, small messages): every GPU
  reads the other ranks' buffers, latency + (n - 1) x S / bw;
* two-shot all-reduce (custom all-reduce, larger messages): reduce-scatter and
  all-gather through peer buffers, 2 latencies + 2 (n - 1) / n x S / bw;
* ring (NCCL): 2 (n - 1) steps, 2 (n - 1) / n x S / bw;
* across nodes (NCCL, hierarchical): reduce-scatter inside the node, ring or
  tree all-reduce of the 1/local shard between nodes, all-gather inside the node.

SGLang uses its custom all-reduce only inside one NVLink domain and for
messages up to 8 MiB (its custom all-reduce buffer).
"""

from __future__ import annotations

from typing import Any

from .efficiency import Efficiency
from .params import HardwareParams, ModelParams, Num, ParallelParams

CUSTOM_ALLREDUCE_MAX_BYTES = 8 * 1024 * 1024
"""Largest message SGLang's custom all-reduce takes (its buffer size); NCCL handles larger ones."""


def _log2(ops: Any, x: Num) -> Num:
    return ops.log(x) / ops.log(2)


def _nvlink_bw(hw: HardwareParams, eff: Efficiency) -> Num:
    return hw.tp_link_bw * eff.comm_bandwidth


def _net_bw(hw: HardwareParams, eff: Efficiency) -> Num:
    return hw.net_bw * eff.net_bandwidth


def ranks_per_node(ops: Any, ranks: Num, hw: HardwareParams) -> Num:
    """GPUs of a group that share one NVLink domain: min(ranks, nvlink_domain)."""
    return ops.min(ranks, hw.nvlink_domain)


def one_shot_all_reduce_time(message_bytes: Num, ranks: Num, hw: HardwareParams, eff: Efficiency,
                             steps: Num) -> Num:
    """SGLang's one-shot custom all-reduce inside an NVLink domain."""
    return eff.allreduce_latency_s * steps + (ranks - 1) * message_bytes / _nvlink_bw(hw, eff)


def two_shot_all_reduce_time(message_bytes: Num, ranks: Num, hw: HardwareParams, eff: Efficiency,
                             steps: Num) -> Num:
    """SGLang's two-shot custom all-reduce: a reduce-scatter then an all-gather through peer buffers."""
    return (2 * eff.allreduce_latency_s * steps
            + 2 * (ranks - 1) / ranks * message_bytes / _nvlink_bw(hw, eff))


def ring_all_reduce_time(message_bytes: Num, ranks: Num, hw: HardwareParams, eff: Efficiency,
                         steps: Num) -> Num:
    """NCCL's ring all-reduce over NVLink: 2 (n - 1) steps moving 2 (n - 1) / n of the message."""
    return (2 * (ranks - 1) * eff.nccl_hop_latency_s * steps
            + 2 * (ranks - 1) / ranks * message_bytes / _nvlink_bw(hw, eff))


def cross_node_all_reduce_time(ops: Any, message_bytes: Num, ranks: Num, hw: HardwareParams,
                               eff: Efficiency, steps: Num) -> Num:
    """Hierarchical NCCL all-reduce over several NVLink domains.

    Inside each node a reduce-scatter leaves every GPU 1/local of the message.
    The GPUs with the same local index then all-reduce that shard across the
    m nodes over their own NICs, by ring (2 (m - 1) / m of the shard) or by
    tree (twice the shard, 2 log2(m) latency hops), whichever is cheaper. An
    all-gather inside the node completes the result.
    """
    local = ranks_per_node(ops, ranks, hw)
    nodes = ranks / local
    shard = message_bytes / local
    intra = (local - 1) / local * message_bytes / _nvlink_bw(hw, eff) + (local - 1) * eff.nccl_hop_latency_s * steps
    ring = 2 * (nodes - 1) / nodes * shard / _net_bw(hw, eff) + 2 * (nodes - 1) * eff.net_latency_s * steps
    tree = 2 * shard / _net_bw(hw, eff) + 2 * _log2(ops, nodes) * eff.net_latency_s * steps
    return 2 * intra + ops.min(ring, tree)


def nccl_all_reduce_time(ops: Any, message_bytes: Num, ranks: Num, hw: HardwareParams, eff: Efficiency,
                         steps: Num) -> Num:
    """NCCL's all-reduce: the ring inside one NVLink domain, the hierarchical form across nodes."""
    intra = ring_all_reduce_time(message_bytes, ranks, hw, eff, steps)
    cross = cross_node_all_reduce_time(ops, message_bytes, ranks, hw, eff, steps)
    return ops.where(ops.le(ranks, hw.nvlink_domain), intra, cross)


def all_reduce_time(ops: Any, message_bytes: Num, ranks: Num, hw: HardwareParams, eff: Efficiency,
                    steps: Num) -> Num:
    """All-reduce of `message_bytes` (summed over steps) as SGLang runs it; zero for one rank.

    Inside one NVLink domain and up to 8 MiB per step the custom one-shot or
    two-shot kernel competes with NCCL; otherwise NCCL runs alone.
    """
    nccl = nccl_all_reduce_time(ops, message_bytes, ranks, hw, eff, steps)
    custom = ops.min(one_shot_all_reduce_time(message_bytes, ranks, hw, eff, steps),
                     two_shot_all_reduce_time(message_bytes, ranks, hw, eff, steps))
    custom_fits = ops.le(message_bytes, CUSTOM_ALLREDUCE_MAX_BYTES * steps)
    in_domain = ops.where(custom_fits, ops.min(custom, nccl), nccl)
    chosen = ops.where(ops.le(ranks, hw.nvlink_domain), in_domain, nccl)
    return ops.where(ops.gt(ranks, 1), chosen, 0)


def all_gather_time(ops: Any, total_bytes: Num, ranks: Num, hw: HardwareParams, eff: Efficiency,
                    steps: Num) -> Num:
    """Time an all-gather whose result is `total_bytes` on every rank (NCCL ring); zero for one rank.

    Inside a node every GPU receives (n - 1) / n of the result over NVLink.
    Across m nodes each NIC also carries (m - 1) / m of the result's 1/local share.
    """
    local = ranks_per_node(ops, ranks, hw)
    nodes = ranks / local
    intra = (local - 1) / local * total_bytes / _nvlink_bw(hw, eff) + (local - 1) * eff.nccl_hop_latency_s * steps
    inter = (nodes - 1) / nodes * total_bytes / local / _net_bw(hw, eff) + (nodes - 1) * eff.net_latency_s * steps
    return ops.where(ops.gt(ranks, 1), intra + inter, 0)


def reduce_scatter_time(ops: Any, total_bytes: Num, ranks: Num, hw: HardwareParams, eff: Efficiency,
                        steps: Num) -> Num:
    """Reduce-scatter of a `total_bytes` input per rank: the same traffic as an all-gather."""
    return all_gather_time(ops, total_bytes, ranks, hw, eff, steps)


# ----- expert-parallel all-to-all (DeepEP) -----

def ranks_hit_per_token(par: ParallelParams, m: ModelParams) -> Num:
    """Return the expected EP ranks one token's top-k experts land on: ep (1 - (1 - 1/ep)^k).

    The formula draws experts uniformly with replacement, so it slightly
    overestimates the exact hypergeometric value when each rank has few experts.
    """
    return par.ep * (1 - (1 - 1 / par.ep) ** m.top_k)


def nodes_hit_per_token(ops: Any, par: ParallelParams, m: ModelParams, hw: HardwareParams) -> Num:
    """Return the expected nodes one token reaches, capped by group-limited routing.

    Uniform routing over m nodes gives m (1 - (1 - 1/m)^k). DeepSeek-style
    routing limits a token to topk_group of n_group expert groups, so at most
    topk_group x max(m / n_group, 1) nodes.
    """
    nodes = par.ep / ranks_per_node(ops, par.ep, hw)
    uniform = nodes * (1 - (1 - 1 / nodes) ** m.top_k)
    if _is_zero(m.moe_topk_group) or _is_zero(m.moe_num_groups):
        return uniform
    return ops.min(uniform, m.moe_topk_group * ops.max(nodes / m.moe_num_groups, 1))


def _is_zero(value: Num) -> bool:
    return isinstance(value, (int, float)) and value == 0


def deepep_normal_time(ops: Any, tokens: Num, token_bytes: Num, m: ModelParams, par: ParallelParams,
                       hw: HardwareParams, eff: Efficiency, steps: Num) -> Num:
    """Time one DeepEP normal-mode dispatch or combine of `tokens` tokens per GPU.

    Normal kernels send a token once per destination node over RDMA and
    forward it over NVLink to every GPU it needs there. So the RDMA side
    carries tokens x nodes_hit x (m - 1) / m copies, the NVLink side delivers
    tokens x ranks_hit copies per GPU, and the slower of the two binds.
    """
    local = ranks_per_node(ops, par.ep, hw)
    nodes = par.ep / local
    nvlink = tokens * ranks_hit_per_token(par, m) * token_bytes / (hw.tp_link_bw * eff.a2a_nvlink_bandwidth)
    remote_nodes = nodes_hit_per_token(ops, par, m, hw) * (nodes - 1) / nodes
    rdma = tokens * remote_nodes * token_bytes / (hw.net_bw * eff.a2a_net_bandwidth)
    return ops.max(nvlink, rdma) + eff.deepep_normal_latency_s * steps


def deepep_low_latency_time(ops: Any, tokens: Num, token_bytes: Num, m: ModelParams, par: ParallelParams,
                            hw: HardwareParams, eff: Efficiency, steps: Num) -> Num:
    """Time one DeepEP low-latency dispatch or combine of `tokens` tokens per GPU.

    Low-latency kernels send every (token, expert) pair straight to the
    expert's GPU without deduplication: top_k copies per token, the share on
    other nodes over RDMA and the rest over NVLink.
    """
    local = ranks_per_node(ops, par.ep, hw)
    remote = m.top_k * (par.ep - local) / par.ep
    nvlink = tokens * (m.top_k - remote) * token_bytes / (hw.tp_link_bw * eff.a2a_nvlink_bandwidth)
    rdma = tokens * remote * token_bytes / (hw.net_bw * eff.a2a_net_bandwidth)
    return ops.max(nvlink, rdma) + eff.deepep_ll_latency_s * steps


def deepep_time(ops: Any, tokens: Num, token_bytes: Num, m: ModelParams, par: ParallelParams,
                hw: HardwareParams, eff: Efficiency, steps: Num, low_latency: bool) -> Num:
    """Time a DeepEP dispatch or combine with the chosen kernel family."""
    law = deepep_low_latency_time if low_latency else deepep_normal_time
    return law(ops, tokens, token_bytes, m, par, hw, eff, steps)


def send_recv_time(ops: Any, message_bytes: Num, par: ParallelParams, hw: HardwareParams, eff: Efficiency,
                   steps: Num) -> Num:
    """Time one pipeline-stage send/recv of `message_bytes`.

    It goes over InfiniBand when the stages' tp x pp GPUs outgrow one NVLink
    domain, else over NVLink.
    """
    crosses = ops.gt(par.tp * par.pp, hw.nvlink_domain)
    bandwidth = ops.where(crosses, _net_bw(hw, eff), _nvlink_bw(hw, eff))
    return eff.p2p_latency_s * steps + message_bytes / bandwidth
