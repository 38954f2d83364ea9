"""The KV-transfer cost law, the per-port transfer queue and server placement on nodes."""

from __future__ import annotations

import pytest

from sglsim.cluster.transfer import KVTransferEngine
from sglsim.costs.efficiency import DEFAULT_EFFICIENCY
from sglsim.costs.kv_transfer import kv_transfer_bytes_per_rank, kv_transfer_time
from sglsim.costs.ops import FLOAT_OPS, symbolic_ops
from sglsim.costs.params import ModelParams
from sglsim.hardware.gpus import get_gpu
from sglsim.hardware.links import LinkSpec, link_between, place_servers
from sglsim.hardware.models import get_model
from sglsim.serving.memory_plan import kv_bytes_per_token_per_gpu

LLAMA_70B = ModelParams.from_spec(get_model("llama-3.1-70b"))
H100 = get_gpu("h100")


def test_gqa_bytes_per_rank():
    # 80 layers x 2 (K, V) x 128 dims x 8 / 4 heads x 2 bytes = 81,920 bytes per token.
    assert kv_transfer_bytes_per_rank(FLOAT_OPS, LLAMA_70B, 1000, 4, 4) == 81_920_000
    # The side with fewer ranks moves the bigger shards: TP4 -> TP8 is bound by TP4.
    assert kv_transfer_bytes_per_rank(FLOAT_OPS, LLAMA_70B, 1000, 4, 8) == 81_920_000
    # Past one KV head per rank the head is replicated, not split: TP16 moves one head per rank.
    assert kv_transfer_bytes_per_rank(FLOAT_OPS, LLAMA_70B, 1000, 16, 16) == 40_960_000


@pytest.mark.parametrize("model,tp", [("llama-3.1-70b", 4), ("llama-3.1-8b", 1), ("llama-3.1-8b", 8)])
def test_bytes_match_memory_plan_per_gpu(model, tp):
    spec = get_model(model)
    per_token = kv_transfer_bytes_per_rank(FLOAT_OPS, ModelParams.from_spec(spec), 1, tp, tp)
    assert per_token == kv_bytes_per_token_per_gpu(spec, tp, "bf16")


def test_mla_latent_is_whole_on_every_rank():
    deepseek = ModelParams.from_spec(get_model("deepseek-v3"))
    # (512 latent + 64 rope) x 61 layers x 2 bytes, whatever the TP.
    assert kv_transfer_bytes_per_rank(FLOAT_OPS, deepseek, 1, 8, 16) == 576 * 61 * 2


def test_transfer_time_latency_plus_bytes_over_bandwidth():
    ib = LinkSpec("infiniband", 50e9, 15e-6)
    # 81.92 MB / (50 GB/s x 0.8) = 2.048 ms, plus 15 us of latency.
    seconds = kv_transfer_time(FLOAT_OPS, LLAMA_70B, 1000, 4, 4, ib.bandwidth_bytes_s, ib.latency_s,
                               DEFAULT_EFFICIENCY)
    assert seconds == pytest.approx(15e-6 + 2.048e-3, rel=1e-12)


def test_symbolic_law_matches_float():
    import sympy

    tokens, bw, latency = sympy.symbols("n_tok B_link L_link", positive=True)
    expr = kv_transfer_time(symbolic_ops(), LLAMA_70B, tokens, 4, 8, bw, latency, DEFAULT_EFFICIENCY)
    value = float(expr.subs({tokens: 1234, bw: 50e9, latency: 15e-6}))
    assert value == pytest.approx(kv_transfer_time(FLOAT_OPS, LLAMA_70B, 1234, 4, 8, 50e9, 15e-6,
                                                   DEFAULT_EFFICIENCY), rel=1e-12)


def test_two_transfers_share_a_port_in_order():
    engine = KVTransferEngine(LLAMA_70B, 4, 4, DEFAULT_EFFICIENCY)
    ib = LinkSpec("infiniband", 50e9, 15e-6)
    one_transfer_s = engine.duration(1000, ib)
    # Both ready at t = 1 from server 0 to server 5: the second waits for the first.
    first = engine.schedule(0, 5, ib, 1000, 1.0)
    second = engine.schedule(0, 5, ib, 1000, 1.0)
    assert (first.start, first.end, first.queue_s) == (1.0, 1.0 + one_transfer_s, 0.0)
    assert second.start == first.end
    assert second.end == first.end + one_transfer_s
    assert second.queue_s == pytest.approx(one_transfer_s, rel=1e-12)


def test_transfers_on_other_ports_overlap():
    engine = KVTransferEngine(LLAMA_70B, 4, 4, DEFAULT_EFFICIENCY)
    ib = LinkSpec("infiniband", 50e9, 15e-6)
    nvlink = LinkSpec("nvlink", 450e9, 10e-6)
    engine.schedule(0, 5, ib, 1000, 0.0)
    # Another sender and receiver: no wait.
    assert engine.schedule(1, 6, ib, 1000, 0.0).queue_s == 0.0
    # Same receiver but over NVLink: another port, no wait.
    assert engine.schedule(2, 5, nvlink, 1000, 0.0).queue_s == 0.0
    # Same receiver over InfiniBand: waits for the first transfer into server 5.
    assert engine.schedule(3, 5, ib, 1000, 0.0).queue_s == pytest.approx(engine.duration(1000, ib))


def test_servers_packed_onto_nodes_in_order():
    # Three TP4 prefill servers and one TP4 decode server on 8-GPU H100 nodes.
    placed = place_servers([(0, H100, 4), (1, H100, 4), (2, H100, 4), (3, H100, 4)])
    assert [placed[i].node for i in range(4)] == [0, 0, 1, 1]
    assert [placed[i].first_gpu for i in range(4)] == [0, 4, 0, 4]
    assert link_between(placed[2], placed[3], "infiniband").name == "nvlink"
    cross = link_between(placed[0], placed[3], "infiniband")
    assert (cross.name, cross.bandwidth_bytes_s, cross.latency_s) == ("infiniband", 50e9, 15e-6)
    assert link_between(placed[0], placed[3], "ethernet").bandwidth_bytes_s == 12.5e9


def test_other_gpu_model_starts_a_new_node():
    h200 = get_gpu("h200")
    placed = place_servers([(0, h200, 2), (1, H100, 2), (2, H100, 8)])
    assert [placed[i].node for i in range(3)] == [0, 1, 2]
