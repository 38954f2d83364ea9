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


INTER_NODE_LINKS = ("infiniband", "ethernet")


@dataclass(frozen=True)
class ServerPlacement:
    """Location of one server's GPUs: a node (one NVLink domain) and a GPU range in it."""

    worker_id: int
    gpu: GPUSpec
    node: int
    first_gpu: int
    num_gpus: int


def place_servers(servers: list[tuple[int, GPUSpec, int]]) -> dict[int, ServerPlacement]:
    """Pack servers, given as (worker id, GPU, GPUs per server) in order, onto nodes.

    Servers fill a node in the given order. A server never spans two nodes
    because its TP group needs one NVLink domain. A node has one GPU model,
    so a server starts a new node when the current one lacks room or has
    another GPU model.
    """
    placements: dict[int, ServerPlacement] = {}
    node, used, node_gpu = -1, 0, None
    for worker_id, gpu, num_gpus in servers:
        if node_gpu is None or node_gpu.name != gpu.name or used + num_gpus > gpu.gpus_per_node:
            node, used, node_gpu = node + 1, 0, gpu
        placements[worker_id] = ServerPlacement(worker_id, gpu, node, used, num_gpus)
        used += num_gpus
    return placements


def link_between(src: ServerPlacement, dst: ServerPlacement, inter_node: str) -> LinkSpec:
    """Return the path KV takes from `src` to `dst`: NVLink inside a node, else the inter-node network.

    Across nodes the slower of the two GPUs' network ports sets the bandwidth.
    """
    if src.node == dst.node:
        return get_link("nvlink", src.gpu)
    if inter_node not in INTER_NODE_LINKS:
        raise unknown("inter-node link", inter_node, INTER_NODE_LINKS)
    a, b = get_link(inter_node, src.gpu), get_link(inter_node, dst.gpu)
    return LinkSpec(inter_node, min(a.bandwidth_bytes_s, b.bandwidth_bytes_s), max(a.latency_s, b.latency_s))
