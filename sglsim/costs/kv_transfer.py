"""The KV-transfer law of prefill/decode disaggregation, written once for both algebras.

After (or while) a prefill server computes a prompt, it sends the prompt's
KV cache to the decode server over RDMA (SGLang's Mooncake or NIXL
backends). Every TP rank of the sender has a shard of the KV heads and
sends it over its own link at the same time as the other ranks, so the
transfer takes as long as the biggest shard takes on one link:

    bytes per rank = tokens x layers x elements per token per layer per rank x kv_bytes
    t = link latency + bytes per rank / (link bandwidth x eff.kv_transfer_bandwidth)

GQA/MHA shards K and V heads by TP: 2 x head_dim x max(kv_heads / tp, 1)
elements per token and layer, with tp the smaller TP degree of the two
sides (the side with fewer ranks moves bigger shards). MLA caches one
latent of kv_lora_rank + qk_rope_head_dim elements per token that every
rank holds whole.

The law is homogeneous of degree one in (tokens, latency count), like the
step laws, so the time of a request's transfer pieces sums.
"""

from __future__ import annotations

from typing import Any

from .efficiency import Efficiency
from .params import ModelParams, Num


def kv_elements_per_token_per_rank(ops: Any, m: ModelParams, tp_src: Num, tp_dst: Num) -> Num:
    """KV elements of one token in one layer that one rank link carries."""
    if m.is_mla:
        return m.kv_lora_rank + m.qk_rope_head_dim
    ranks = ops.min(tp_src, tp_dst)
    return 2 * m.head_dim * ops.max(m.num_kv_heads / ranks, 1)


def kv_transfer_bytes_per_rank(ops: Any, m: ModelParams, tokens: Num, tp_src: Num, tp_dst: Num) -> Num:
    """Bytes one rank link carries to move the KV of `tokens` tokens over every layer."""
    return tokens * m.num_layers * kv_elements_per_token_per_rank(ops, m, tp_src, tp_dst) * m.kv_bytes


def kv_transfer_time(ops: Any, m: ModelParams, tokens: Num, tp_src: Num, tp_dst: Num, link_bw: Num,
                     link_latency_s: Num, eff: Efficiency) -> Num:
    """Seconds to move the KV of `tokens` tokens from a prefill server to a decode server."""
    bytes_ = kv_transfer_bytes_per_rank(ops, m, tokens, tp_src, tp_dst)
    return link_latency_s + bytes_ / (link_bw * eff.kv_transfer_bandwidth)


__all__ = ["kv_elements_per_token_per_rank", "kv_transfer_bytes_per_rank", "kv_transfer_time"]
