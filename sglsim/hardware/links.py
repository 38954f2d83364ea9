"""Interconnect presets between GPUs: bandwidth per direction and one-way latency."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import unknown
from .gpus import GPUSpec


@dataclass(frozen=True)
class LinkSpec:
    """A point-to-point path between two GPUs."""

    name: str
    bandwidth_bytes_s: float
    """Bandwidth per GPU and direction, bytes/s."""
    latency_s: float
    """One-way latency of a transfer, s (software stack included)."""


# NVLink latency: SGLang's custom all-reduce reaches about 10 us on 8 H100s for
# small messages, and NVIDIA's system files use 10 us for point-to-point.
# InfiniBand NDR (400 Gb/s per GPU) and 100 GbE RoCE figures are nominal line
# rates; latencies include the RDMA software path (estimates).
LINK_KINDS = ("nvlink", "infiniband", "ethernet")


def get_link(kind: str, gpu: GPUSpec) -> LinkSpec:
    """Return the link of `kind` as seen from `gpu` (NVLink speed depends on the GPU)."""
    if kind == "nvlink":
        return LinkSpec("nvlink", gpu.nvlink_bw_bytes_s, 10e-6)
    if kind == "infiniband":
        return LinkSpec("infiniband", gpu.network_bw_bytes_s, 15e-6)
    if kind == "ethernet":
        return LinkSpec("ethernet", 12.5e9, 40e-6)
    raise unknown("link", kind, LINK_KINDS)
