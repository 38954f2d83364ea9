"""GPU presets: peak throughput, memory and interconnect per GPU.

Peaks are dense (not 2:4 sparse) tensor-core FLOP/s. Numbers come from NVIDIA
datasheets as tabulated in the system files of NVIDIA's `aiconfigurator-core`
0.12.0 wheel (`aiconfigurator_core/systems/*.yaml`). Memory capacities are the
sizes those files give (H100: 80 GiB, H200: 141 GiB as reported by the driver).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import unknown

GIB = 1024**3


@dataclass(frozen=True)
class GPUSpec:
    """One GPU model and the node it usually sits in."""

    name: str
    bf16_flops: float
    """Dense BF16 tensor-core peak, FLOP/s."""
    fp8_flops: float | None
    """Dense FP8 peak, FLOP/s; None where the GPU has no FP8 tensor cores."""
    fp4_flops: float | None
    """Dense NVFP4 peak, FLOP/s; None before Blackwell."""
    mem_bw_bytes_s: float
    """HBM bandwidth, bytes/s."""
    mem_capacity_bytes: float
    """HBM capacity, bytes."""
    nvlink_bw_bytes_s: float
    """NVLink bandwidth per GPU and direction, bytes/s."""
    network_bw_bytes_s: float
    """Scale-out (InfiniBand) bandwidth per GPU and direction, bytes/s."""
    gpus_per_node: int
    """GPUs that share one NVLink domain (8 on HGX boards, 72 on an NVL72 rack)."""
    power_w: float
    """Board power, W."""
    cost_per_hour_usd: float
    """Rental price used by cost metrics; an estimate of 2025 cloud list prices."""

    def peak_flops(self, dtype: str) -> float:
        """Return the dense tensor-core peak for a GEMM input dtype (bf16, fp8, fp4)."""
        if dtype == "fp4" and self.fp4_flops:
            return self.fp4_flops
        if dtype in ("fp8", "fp4") and self.fp8_flops:
            return self.fp8_flops
        return self.bf16_flops


_T = 1e12
GPU_PRESETS: dict[str, GPUSpec] = {
    "a100": GPUSpec("a100", 312 * _T, None, None, 2.039e12, 80 * GIB, 300e9, 25e9, 8, 400, 1.8),
    "h100": GPUSpec("h100", 989 * _T, 1978 * _T, None, 3.35e12, 80 * GIB, 450e9, 50e9, 8, 700, 3.0),
    "h200": GPUSpec("h200", 989 * _T, 1978 * _T, None, 4.8e12, 141 * GIB, 450e9, 50e9, 8, 700, 3.8),
    # H800: an H100 with NVLink cut to 400 GB/s in both directions (200 GB/s each way); DeepEP's
    # published kernel benchmarks ran on it with one 400 Gb/s NIC per GPU.
    "h800": GPUSpec("h800", 989 * _T, 1978 * _T, None, 3.35e12, 80 * GIB, 200e9, 50e9, 8, 700, 3.0),
    "b200": GPUSpec("b200", 2250 * _T, 4500 * _T, 9000 * _T, 7.7e12, 180 * GIB, 900e9, 100e9, 8, 1000, 5.5),
    "b300": GPUSpec("b300", 2250 * _T, 4500 * _T, 14000 * _T, 7.75e12, 288400343040, 900e9, 100e9, 8, 1100, 7.0),
    "gb200": GPUSpec("gb200", 2500 * _T, 5000 * _T, 10000 * _T, 8.0e12, 198674743296, 900e9, 100e9, 72, 1200, 6.5),
    "gb300": GPUSpec("gb300", 2500 * _T, 5000 * _T, 15000 * _T, 8.0e12, 298013687808, 900e9, 100e9, 72, 1400, 8.0),
}


def get_gpu(name: str) -> GPUSpec:
    """Look up a GPU preset by its lower-case id."""
    key = name.lower()
    if key not in GPU_PRESETS:
        raise unknown("gpu", name, GPU_PRESETS)
    return GPU_PRESETS[key]
