"""Efficiency constants of the cost laws, and the fitted presets of each GPU.

A roofline law divides FLOPs by `peak x *_compute` and bytes by
`bandwidth x *_memory`, then adds a per-kernel floor. The dataclass defaults
are hand-set starting values; a simulation uses
`efficiency_for_gpu(gpu, weight_dtype)`, which loads the constants fitted for
that GPU from `sglsim/data/efficiency_presets.yaml`:

- kernel constants (GEMM, attention, all-reduce) are fitted by
  `bench/calibrate.py` on that GPU's own SGLang kernel timings shipped in
  NVIDIA's `aiconfigurator-core` 0.12.0 wheel
  (`systems/data/<gpu>/{gemm,attention,comm}/sglang/<version>/`), using the
  laws of `laws.py` and `forward.py`; FP8 and NVFP4 weights get their own GEMM
  constants;
- serving overheads are fitted by `bench/validate_silicon.py --fit` on the
  SGLang rows of h100_sxm in the wheel's `silicon_sample.csv` only, and are
  shared by every GPU;
- elementwise, eager-launch and scheduler CPU constants have no table to fit
  and keep the defaults below.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

PRESETS_PATH = Path(__file__).resolve().parents[1] / "data" / "efficiency_presets.yaml"
"""Fitted constants per GPU preset (written by bench/calibrate.py and bench/validate_silicon.py)."""


@dataclass(frozen=True)
class Efficiency:
    """Fractions of peak reached by each kernel class, and fixed per-kernel costs.

    "Fitted per GPU on <table>" names the SGLang kernel table of
    aiconfigurator-core 0.12.0 that `bench/calibrate.py` fits the constant on.
    """

    gemm_compute: float = 0.72
    """GEMM FLOP/s as a fraction of the dense tensor-core peak of the weight dtype.
    Fitted per GPU on gemm_perf (n and k >= 1024), per weight dtype."""
    gemm_memory: float = 0.84
    """GEMM bytes/s as a fraction of HBM bandwidth. Fitted per GPU on gemm_perf, per weight dtype."""
    attn_prefill_compute: float = 0.62
    """Causal prefill attention FLOP/s as a fraction of the BF16 peak. Fitted per GPU on
    context_attention_perf (BF16, full attention, SGLang's default kernel for the GPU)."""
    attn_prefill_memory: float = 0.80
    """Prefill attention bytes/s as a fraction of HBM bandwidth. Fitted per GPU on
    context_attention_perf, which has no cached prefix, so this side rarely binds there."""
    attn_decode_compute: float = 0.50
    """Decode attention FLOP/s as a fraction of the BF16 peak (binds only for MLA-like head ratios).
    Fitted per GPU on generation_attention_perf."""
    attn_decode_memory: float = 0.78
    """Decode attention KV-read bytes/s as a fraction of HBM bandwidth. Fitted per GPU on
    generation_attention_perf."""
    attn_prefill_pad_tokens: float = 0.0
    """Extra keys each prefill query token costs beyond its causal span (tile and pipeline
    overhead of short sequences), tokens. Fitted per GPU on context_attention_perf."""
    attn_decode_pad_tokens: float = 0.0
    """Extra KV tokens each decode sequence reads beyond its context (the kernel reads whole
    KV tiles), tokens. Fitted per GPU on generation_attention_perf."""
    elementwise_memory: float = 0.70
    """Norm, RoPE, activation and embedding bytes/s as a fraction of HBM bandwidth (not fitted)."""
    comm_bandwidth: float = 0.80
    """All-reduce bus bandwidth as a fraction of the NVLink rate. Fitted per GPU on
    custom_allreduce_perf (CUDA-graph rows)."""
    gemm_floor_s: float = 4e-6
    """Minimum time of one GEMM kernel, s. Fitted per GPU on gemm_perf, per weight dtype."""
    attn_floor_s: float = 12e-6
    """Minimum time of one attention kernel, s. Fitted per GPU on both attention tables."""
    elementwise_floor_s: float = 2e-6
    """Minimum time of one elementwise kernel, s (not fitted)."""
    allreduce_latency_s: float = 8e-6
    """Fixed cost of SGLang's one-shot custom all-reduce inside an NVLink domain, s. Fitted per
    GPU on custom_allreduce_perf."""
    launch_overhead_s: float = 8e-6
    """GPU idle gap per kernel when a step runs eagerly (PyTorch dispatch and launch not hidden), s
    (not fitted)."""
    graph_launch_s: float = 30e-6
    """Fixed cost of one CUDA-graph decode step beyond its kernels (graph replay, sampling and
    synchronisation), s. Fitted end to end as a serving overhead."""
    sched_overhead_s: float = 0.35e-3
    """Scheduler CPU time per step (batch formation, sampling bookkeeping), s (not fitted: it
    hides behind the GPU step under the overlap scheduler in every fitted row)."""
    sched_overhead_per_seq_s: float = 4e-6
    """Scheduler CPU time per sequence in the batch, s (not fitted, as sched_overhead_s)."""
    # ----- collectives across GPUs (costs/collectives.py) -----
    nccl_hop_latency_s: float = 2e-6
    """Latency of one NCCL ring step inside an NVLink domain, s. The default makes an 8-rank
    1 MiB all-reduce on a DGX H100 take the 34 us of Vidur's NCCL profile; the GPU presets fit
    it per GPU on custom_allreduce_perf, whose large messages run on NCCL."""
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

OPEN_FRACTIONS = ("tbo_overlap_fraction",)
"""Constants that may be 0 (nothing hidden) up to 1."""
NON_NEGATIVE_SUFFIXES = ("_s", "_tokens", "_skew", "_skew_eplb")
"""Times, padding tokens and skews: any value >= 0. Every other constant is a fraction of a peak."""


def check_overrides(values: Mapping[str, float], source: str = "scenario") -> None:
    """Raise ConfigError unless every name is a constant and every value is in its range.

    Fractions of a peak lie in (0, 1] (zero would divide by zero, above one beats the silicon);
    `tbo_overlap_fraction` lies in [0, 1]; times, padding tokens and skews are >= 0.
    """
    from ..errors import ConfigError

    known = sorted(f.name for f in fields(Efficiency))
    for name, value in values.items():
        if name not in known:
            raise ConfigError(f"unknown efficiency constant {name!r} in {source}: choose one of {', '.join(known)}")
        if name in OPEN_FRACTIONS:
            ok, allowed = 0 <= value <= 1, "a fraction in [0, 1]"
        elif name.endswith(NON_NEGATIVE_SUFFIXES):
            ok, allowed = value >= 0, "a number >= 0"
        else:
            ok, allowed = 0 < value <= 1, "a fraction of peak in (0, 1]"
        if not ok:
            raise ConfigError(f"invalid efficiency.{name} {value!r} in {source}: expected {allowed}")


def read_presets(path: Path = PRESETS_PATH) -> dict[str, Any]:
    """Parse an efficiency presets YAML file: `gpus` entries and shared `serving_overheads`."""
    import yaml

    data = yaml.safe_load(Path(path).read_text()) or {}
    if not isinstance(data, dict):
        raise RuntimeError(f"broken efficiency presets {path}: expected a mapping at the top level")
    return data


@lru_cache(maxsize=1)
def _packaged_presets() -> dict[str, Any]:
    return read_presets(PRESETS_PATH) if PRESETS_PATH.is_file() else {}


def _apply(eff: Efficiency, values: Mapping[str, Any] | None, where: str) -> Efficiency:
    if not values:
        return eff
    try:
        return eff.updated(**{name: float(value) for name, value in values.items()})
    except ValueError as exc:
        raise RuntimeError(f"broken efficiency presets ({where}): {exc}") from None


KERNEL_TWINS = {"h800": "h100"}
"""GPUs without kernel tables of their own that share another preset's chip and HBM: the H800 is
an H100 whose NVLink is cut to 400 GB/s, and link fractions carry over because they scale the rate."""


def efficiency_for_gpu(gpu_name: str, weight_dtype: str = "bf16",
                       presets: Mapping[str, Any] | None = None) -> Efficiency:
    """Return the fitted constants of one GPU preset for models with `weight_dtype` weights.

    Four layers apply in order, each replacing the constants it names. First
    come the dataclass defaults, then the GPU's kernel constants
    (`gpus.<gpu>.constants`), then its GEMM constants for FP8 or FP4 weights
    (`gpus.<gpu>.gemm_by_weight_dtype`). Last come `serving_overheads`, which
    are CPU-side and shared by every GPU. A GPU absent from the presets keeps
    the default kernel constants. `presets` replaces the packaged file (for
    tests and the calibration scripts).
    """
    data = _packaged_presets() if presets is None else presets
    gpu_name = KERNEL_TWINS.get(gpu_name.lower(), gpu_name.lower())
    entry = (data.get("gpus") or {}).get(gpu_name) or {}
    eff = _apply(DEFAULT_EFFICIENCY, entry.get("constants"), f"gpus.{gpu_name}.constants")
    by_dtype = entry.get("gemm_by_weight_dtype") or {}
    eff = _apply(eff, by_dtype.get(weight_dtype), f"gpus.{gpu_name}.gemm_by_weight_dtype.{weight_dtype}")
    return _apply(eff, data.get("serving_overheads"), "serving_overheads")
