"""KV transfers between a prefill and a decode server, queued per link port.

Link sharing model: every server has one egress and one ingress port per
link kind (NVLink inside a node, the inter-node network across nodes). Each
port is the per-GPU links of all its TP ranks taken together, because the
ranks move their KV shards in parallel. A transfer occupies the sender's egress port and the
receiver's ingress port from its start to its end, and transfers are served
in the order they become ready (first come, first served):

    start = max(ready, egress port free, ingress port free)
    end   = start + kv_transfer_time(tokens)          (see `costs/kv_transfer.py`)
    queue = start - ready

So two transfers out of one prefill server, or into one decode server,
never overlap on the same link kind: the second waits (its queue time) and
then gets the full bandwidth. A queue per port is simpler to reason about
than bandwidth sharing and gives the same completion time for the last of
a burst of equal transfers.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..costs.efficiency import Efficiency
from ..costs.kv_transfer import kv_transfer_time
from ..costs.ops import FLOAT_OPS
from ..costs.params import ModelParams
from ..hardware.links import LinkSpec


@dataclass(frozen=True)
class TransferSlot:
    """When one transfer ran on its ports (simulated seconds)."""

    start: float
    end: float
    queue_s: float


class KVTransferEngine:
    """FIFO port reservations for the KV transfers of one prefill pool -> decode pool pair."""

    def __init__(self, model: ModelParams, prefill_tp: int, decode_tp: int, eff: Efficiency) -> None:
        self.model = model
        self.prefill_tp = prefill_tp
        self.decode_tp = decode_tp
        self.eff = eff
        self._port_free_at: dict[tuple[int, str, str], float] = {}
        self.num_transfers = 0
        self.bytes_per_rank_total = 0.0

    def duration(self, num_tokens: int, link: LinkSpec) -> float:
        """Seconds one transfer of `num_tokens` tokens' KV takes on `link` once it starts."""
        return kv_transfer_time(FLOAT_OPS, self.model, num_tokens, self.prefill_tp, self.decode_tp,
                                link.bandwidth_bytes_s, link.latency_s, self.eff)

    def schedule(self, src_worker: int, dst_worker: int, link: LinkSpec, num_tokens: int,
                 ready_at: float) -> TransferSlot:
        """Reserve the ports for a transfer that is ready at `ready_at`; return its slot.

        Callers must submit transfers in order of `ready_at` (the event loop does).
        """
        egress = (src_worker, "egress", link.name)
        ingress = (dst_worker, "ingress", link.name)
        start = max(ready_at, self._port_free_at.get(egress, 0.0), self._port_free_at.get(ingress, 0.0))
        end = start + self.duration(num_tokens, link)
        self._port_free_at[egress] = end
        self._port_free_at[ingress] = end
        self.num_transfers += 1
        return TransferSlot(start, end, start - ready_at)
