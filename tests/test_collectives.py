"""Collective laws: exact values for each algorithm, topology choice, and invariants.

The efficiency constants are pinned here (not read from the defaults) so the
expected values stay valid when the defaults are recalibrated.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sglsim.costs.collectives import (CUSTOM_ALLREDUCE_MAX_BYTES, all_gather_time, all_reduce_time,
                                      cross_node_all_reduce_time, deepep_low_latency_time,
                                      deepep_normal_time, nccl_all_reduce_time, nodes_hit_per_token,
                                      one_shot_all_reduce_time, ranks_hit_per_token, reduce_scatter_time,
                                      ring_all_reduce_time, send_recv_time, two_shot_all_reduce_time)
from sglsim.costs.efficiency import Efficiency
from sglsim.costs.ops import FLOAT_OPS
from sglsim.costs.params import HardwareParams, ModelParams, ParallelParams

MiB = 1024 * 1024
EFF = Efficiency(comm_bandwidth=0.8, allreduce_latency_s=8e-6, nccl_hop_latency_s=2e-6, net_bandwidth=0.85,
                 net_latency_s=15e-6, p2p_latency_s=10e-6, a2a_nvlink_bandwidth=0.77, a2a_net_bandwidth=0.86,
                 deepep_normal_latency_s=50e-6, deepep_ll_latency_s=30e-6)
H100 = HardwareParams(gemm_flops=989e12, attn_flops=989e12, mem_bw=3.35e12, tp_link_bw=450e9, net_bw=50e9,
                      nvlink_domain=8)
NVLINK = 450e9 * 0.8
IB = 50e9 * 0.85
# DeepSeek-V3's routing: 256 experts, top-8, 8 groups of which a token may use 4.
DEEPSEEK = ModelParams(num_layers=61, num_moe_layers=58, hidden_size=7168, num_heads=128, num_kv_heads=128,
                       head_dim=128, intermediate_size=18432, vocab_size=129280, weight_bytes=1.0, act_bytes=2.0,
                       kv_bytes=2.0, num_experts=256, top_k=8, moe_num_groups=8, moe_topk_group=4,
                       a2a_dispatch_bytes=1 + 4 / 128, is_moe=True)


def test_one_shot_all_reduce_exact():
    # latency + (n - 1) x S / bw: 8 us + 7 x 1 MiB / 360 GB/s
    expected = 8e-6 + 7 * MiB / NVLINK
    assert one_shot_all_reduce_time(MiB, 8, H100, EFF, 1) == pytest.approx(expected, rel=1e-12)


def test_two_shot_all_reduce_exact():
    # two latencies + 2 (n - 1) / n x S / bw
    expected = 2 * 8e-6 + 2 * 7 / 8 * MiB / NVLINK
    assert two_shot_all_reduce_time(MiB, 8, H100, EFF, 1) == pytest.approx(expected, rel=1e-12)


def test_ring_all_reduce_exact():
    # 2 (n - 1) NCCL hops plus the same bandwidth term as two-shot
    expected = 14 * 2e-6 + 2 * 7 / 8 * 64 * MiB / NVLINK
    assert ring_all_reduce_time(64 * MiB, 8, H100, EFF, 1) == pytest.approx(expected, rel=1e-12)


def test_all_reduce_picks_cheapest_custom_kernel():
    # 64 KiB on 8 GPUs: the one-shot kernel wins (8 + 1.27 us < 16 + 0.32 us)
    small = 64 * 1024
    expected = 8e-6 + 7 * small / NVLINK
    assert all_reduce_time(FLOAT_OPS, small, 8, H100, EFF, 1) == pytest.approx(expected, rel=1e-12)
    # 1 MiB: two-shot (21.1 us) beats one-shot (28.4 us) and the ring (33.1 us)
    expected = 2 * 8e-6 + 2 * 7 / 8 * MiB / NVLINK
    assert all_reduce_time(FLOAT_OPS, MiB, 8, H100, EFF, 1) == pytest.approx(expected, rel=1e-12)


def test_all_reduce_above_custom_limit_uses_nccl():
    # 16 MiB exceeds SGLang's 8 MiB custom all-reduce buffer, so only NCCL's ring is allowed
    size = 16 * MiB
    assert size > CUSTOM_ALLREDUCE_MAX_BYTES
    expected = ring_all_reduce_time(size, 8, H100, EFF, 1)
    assert all_reduce_time(FLOAT_OPS, size, 8, H100, EFF, 1) == expected


def test_all_reduce_one_rank_is_free():
    assert all_reduce_time(FLOAT_OPS, 64 * MiB, 1, H100, EFF, 1) == 0


def test_cross_node_all_reduce_exact():
    # 32 GPUs = 4 nodes of 8: reduce-scatter and all-gather inside the node, then the
    # 1/8 shard crosses the nodes by ring (2 x 3/4 x shard / IB + 6 hops) or tree
    size = 64 * MiB
    shard = size / 8
    intra = 7 / 8 * size / NVLINK + 7 * 2e-6
    ring = 2 * 3 / 4 * shard / IB + 6 * 15e-6
    tree = 2 * shard / IB + 2 * math.log2(4) * 15e-6
    expected = 2 * intra + min(ring, tree)
    assert cross_node_all_reduce_time(FLOAT_OPS, size, 32, H100, EFF, 1) == pytest.approx(expected, rel=1e-12)
    assert all_reduce_time(FLOAT_OPS, size, 32, H100, EFF, 1) == pytest.approx(expected, rel=1e-12)


def test_all_gather_and_reduce_scatter_exact():
    # inside a node: (n - 1) / n of the result per GPU plus n - 1 hops
    size = 8 * MiB
    expected = 7 / 8 * size / NVLINK + 7 * 2e-6
    assert all_gather_time(FLOAT_OPS, size, 8, H100, EFF, 1) == pytest.approx(expected, rel=1e-12)
    assert reduce_scatter_time(FLOAT_OPS, size, 8, H100, EFF, 1) == pytest.approx(expected, rel=1e-12)
    # across 2 nodes: each NIC also carries 1/2 of the result's 1/8 share
    cross = expected + 1 / 2 * size / 8 / IB + 15e-6
    assert all_gather_time(FLOAT_OPS, size, 16, H100, EFF, 1) == pytest.approx(cross, rel=1e-12)


def test_ranks_and_nodes_hit_per_token():
    # EP8: 8 (1 - (7/8)^8) ranks; one node
    par8 = ParallelParams(tp=8, ep=8)
    assert ranks_hit_per_token(par8, DEEPSEEK) == pytest.approx(8 * (1 - (7 / 8) ** 8), rel=1e-12)
    assert nodes_hit_per_token(FLOAT_OPS, par8, DEEPSEEK, H100) == pytest.approx(1.0)
    # EP32 = 4 nodes: uniform 4 (1 - (3/4)^8) = 3.60 is below the group cap 4 x max(4/8, 1) = 4
    par32 = ParallelParams(tp=32, ep=32)
    assert nodes_hit_per_token(FLOAT_OPS, par32, DEEPSEEK, H100) == pytest.approx(4 * (1 - 0.75 ** 8), rel=1e-12)
    # EP64 = 8 nodes: uniform 8 (1 - (7/8)^8) = 5.25 is capped at topk_group = 4 nodes
    par64 = ParallelParams(tp=64, ep=64)
    assert nodes_hit_per_token(FLOAT_OPS, par64, DEEPSEEK, H100) == pytest.approx(4.0)


def test_deepep_normal_intranode_exact():
    # EP8 in one node: every copy travels over NVLink; no RDMA share
    par = ParallelParams(tp=8, ep=8)
    token_bytes = 7168 * (1 + 4 / 128)
    copies = 8 * (1 - (7 / 8) ** 8)
    expected = 4096 * copies * token_bytes / (450e9 * 0.77) + 50e-6
    got = deepep_normal_time(FLOAT_OPS, 4096, token_bytes, DEEPSEEK, par, H100, EFF, 1)
    assert got == pytest.approx(expected, rel=1e-12)


def test_deepep_normal_internode_binds_on_rdma():
    # EP32: RDMA carries nodes_hit x 3/4 copies per token at 43 GB/s, NVLink 7.2 copies at 346 GB/s
    par = ParallelParams(tp=32, ep=32)
    token_bytes = 7168 * 2.0
    nodes_hit = 4 * (1 - 0.75 ** 8)
    rdma = 4096 * nodes_hit * 3 / 4 * token_bytes / (50e9 * 0.86)
    nvlink = 4096 * 32 * (1 - (31 / 32) ** 8) * token_bytes / (450e9 * 0.77)
    assert rdma > nvlink
    got = deepep_normal_time(FLOAT_OPS, 4096, token_bytes, DEEPSEEK, par, H100, EFF, 1)
    assert got == pytest.approx(rdma + 50e-6, rel=1e-12)


def test_deepep_low_latency_exact():
    # EP16 = 2 nodes: top_k copies per token, half of them to the other node over RDMA
    par = ParallelParams(tp=16, ep=16)
    token_bytes = 7168 * (1 + 4 / 128)
    rdma = 128 * 4 * token_bytes / (50e9 * 0.86)
    nvlink = 128 * 4 * token_bytes / (450e9 * 0.77)
    got = deepep_low_latency_time(FLOAT_OPS, 128, token_bytes, DEEPSEEK, par, H100, EFF, 1)
    assert got == pytest.approx(max(rdma, nvlink) + 30e-6, rel=1e-12)


def test_send_recv_link_choice():
    # TP4 x PP2 = 8 GPUs fit one node: NVLink; TP8 x PP2 spans two nodes: InfiniBand
    inside = send_recv_time(FLOAT_OPS, MiB, ParallelParams(tp=4, pp=2), H100, EFF, 1)
    across = send_recv_time(FLOAT_OPS, MiB, ParallelParams(tp=8, pp=2), H100, EFF, 1)
    assert inside == pytest.approx(10e-6 + MiB / NVLINK, rel=1e-12)
    assert across == pytest.approx(10e-6 + MiB / IB, rel=1e-12)


@settings(max_examples=60, deadline=None)
@given(size=st.floats(min_value=1e3, max_value=1e9), ranks=st.sampled_from([2, 4, 8, 16, 32, 64]),
       steps=st.integers(min_value=1, max_value=8))
def test_all_reduce_homogeneous_in_steps(size, ranks, steps):
    # k steps of message S each cost k times one step when the same algorithm wins
    one = all_reduce_time(FLOAT_OPS, size, ranks, H100, EFF, 1)
    many = all_reduce_time(FLOAT_OPS, size * steps, ranks, H100, EFF, steps)
    assert many == pytest.approx(steps * one, rel=1e-9)


@settings(max_examples=60, deadline=None)
@given(size=st.floats(min_value=1e3, max_value=1e9), ranks=st.sampled_from([2, 4, 8, 16, 32, 64]))
def test_all_reduce_monotone_and_bounded(size, ranks):
    # more bytes never take less time, and the chosen algorithm is never slower than NCCL
    t = all_reduce_time(FLOAT_OPS, size, ranks, H100, EFF, 1)
    assert all_reduce_time(FLOAT_OPS, size * 2, ranks, H100, EFF, 1) >= t
    assert t <= nccl_all_reduce_time(FLOAT_OPS, size, ranks, H100, EFF, 1)
    assert t > 0
