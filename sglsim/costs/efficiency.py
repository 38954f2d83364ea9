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
