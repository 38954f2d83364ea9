"""Efficiency constants of the cost laws, in one place, each with its source.

A roofline law divides FLOPs by `peak x *_compute` and bytes by
`bandwidth x *_memory`, then adds a per-kernel floor. The defaults below were
fitted on the SGLang 0.5.14 kernel timings of an H100 SXM shipped in NVIDIA's
`aiconfigurator-core` 0.12.0 wheel (`systems/data/h100_sxm/{gemm,attention,comm}`);
`bench/calibrate.py` reproduces the fit and prints its error per table. Other
GPUs use the same fractions: no end-to-end measurement of another GPU was used
to tune them (those rows are kept for evaluation).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace


@dataclass(frozen=True)
class Efficiency:
    """Fractions of peak reached by each kernel class, and fixed per-kernel costs."""

    gemm_compute: float = 0.72
    """GEMM FLOP/s as a fraction of the dense tensor-core peak (64-81 % at 1K-16K tokens on H100)."""
    gemm_memory: float = 0.84
    """GEMM bytes/s as a fraction of HBM bandwidth (84 % for 8192x8192 at <= 64 tokens on H100)."""
    attn_prefill_compute: float = 0.62
    """Causal prefill attention FLOP/s as a fraction of the BF16 peak (65 % at 16K tokens)."""
    attn_prefill_memory: float = 0.80
    """Prefill attention bytes/s (reading cached prefix KV) as a fraction of HBM bandwidth."""
    attn_decode_compute: float = 0.50
    """Decode attention FLOP/s as a fraction of the BF16 peak (binds only for MLA-like head ratios)."""
    attn_decode_memory: float = 0.78
    """Decode attention KV-read bytes/s as a fraction of HBM bandwidth (72-86 % at large batch x context)."""
    elementwise_memory: float = 0.70
    """Norm, RoPE, activation and embedding bytes/s as a fraction of HBM bandwidth."""
    comm_bandwidth: float = 0.80
    """All-reduce bus bandwidth as a fraction of the link rate (NCCL on a DGX H100: about 77 % at 64 MiB)."""
    gemm_floor_s: float = 4e-6
    """Minimum time of one GEMM kernel, s."""
    attn_floor_s: float = 12e-6
    """Minimum time of one attention kernel, s (decode attention at batch 1, 1K context: about 12 us)."""
    elementwise_floor_s: float = 2e-6
    """Minimum time of one elementwise kernel, s."""
    allreduce_latency_s: float = 8e-6
    """Fixed cost of SGLang's one-shot custom all-reduce inside an NVLink domain, s."""
    nccl_latency_s: float = 20e-6
    """Fixed cost per ring phase of an NCCL all-reduce, s."""
    launch_overhead_s: float = 8e-6
    """GPU idle gap per kernel when a step runs eagerly (PyTorch dispatch and launch not hidden), s."""
    graph_launch_s: float = 30e-6
    """CPU and GPU cost of replaying one captured CUDA graph, s."""
    sched_overhead_s: float = 0.35e-3
    """Scheduler CPU time per step (batch formation, sampling bookkeeping), s."""
    sched_overhead_per_seq_s: float = 4e-6
    """Scheduler CPU time per sequence in the batch, s."""
    # ----- collectives across GPUs (costs/collectives.py) -----
    nccl_hop_latency_s: float = 2e-6
    """Latency of one NCCL ring step inside an NVLink domain, s (set so an 8-rank 1 MiB
    all-reduce on a DGX H100 takes the 34 us Vidur's NCCL profile measured)."""
    net_bandwidth: float = 0.85
    """NCCL bus bandwidth over InfiniBand as a fraction of the NIC line rate (an estimate)."""
    net_latency_s: float = 15e-6
    """Latency of one NCCL step across InfiniBand, s (RDMA software path included; an estimate)."""
    p2p_latency_s: float = 10e-6
    """Fixed cost of one pipeline send/recv, s (the P2P latency of NVIDIA's aiconfigurator system files)."""
    a2a_nvlink_bandwidth: float = 0.77
    """DeepEP all-to-all NVLink throughput as a fraction of the link rate (153-158 GB/s of an
    H800's 200 GB/s in DeepEP's intranode normal-kernel benchmark)."""
    a2a_net_bandwidth: float = 0.86
    """DeepEP all-to-all RDMA throughput as a fraction of the NIC line rate (set from DeepEP's
    internode and low-latency H800 benchmarks at EP16-EP64)."""
    deepep_normal_latency_s: float = 50e-6
    """Fixed cost of one DeepEP normal-mode dispatch or combine (layout and notify pass), s; an estimate."""
    deepep_ll_latency_s: float = 30e-6
    """Fixed cost of one DeepEP low-latency dispatch or combine, s (set from DeepEP's EP8 row)."""
    tbo_compute_fraction: float = 0.85
    """Compute throughput left while DeepEP kernels run beside it under two-batch overlap:
    DeepEP reserves 20 of an H100's 132 SMs by default (deepseek-ai/DeepEP Buffer.num_sms)."""
    tbo_overlap_fraction: float = 0.5
    """Share of the shorter of MoE-layer computation and all-to-all that two-batch overlap hides
    (an estimate, not fitted: DeepEP normal-mode dispatch blocks the CPU until it has received the
    count of arriving tokens, and half-size micro-batches run less efficient kernels)."""
    moe_rank_skew: float = 0.30
    """Excess load of the busiest EP rank over the mean from uneven expert popularity, with
    SGLang's trivial expert placement. It is an estimate because no expert-load trace was fitted."""
    moe_rank_skew_eplb: float = 0.05
    """The same excess after EPLB rebalancing without redundant experts (an estimate)."""
    # ----- prefill/decode disaggregation (costs/kv_transfer.py) -----
    kv_transfer_bandwidth: float = 0.80
    """P/D KV-transfer bytes/s as a fraction of the link rate. NOTE: an estimate set equal to the
    all-reduce fraction above; no Mooncake or NIXL transfer was measured to fit it."""

    def updated(self, **overrides: float) -> "Efficiency":
        """Return a copy with some constants replaced (names as the fields)."""
        known = {f.name for f in fields(self)}
        bad = sorted(set(overrides) - known)
        if bad:
            from ..errors import unknown

            raise unknown("efficiency constant", bad[0], known)
        return replace(self, **overrides)


DEFAULT_EFFICIENCY = Efficiency()
