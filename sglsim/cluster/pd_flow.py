"""The path of a request through a prefill/decode pair: routing, bootstrap, KV transfer, merge.

Steps (see `serving/disagg.py` for the server side):
1. `admit`: each pool's router picks a server. The request is rejected if
   either server could never hold it. Otherwise it joins the decode
   server's prealloc queue.
2. The decode server preallocates KV (`_on_preallocated`): the bootstrap is
   done and the request is queued at the prefill server. The handshake
   itself is taken as instant.
3. The prefill server reports KV as each chunk finishes (`_on_kv_ready`);
   each piece is sent at once (`cluster/transfer.py`). Non-final pieces are
   cut to whole pages, as SGLang's `send_kv_chunk` does.
4. When the last piece lands (`_on_transfer_done`) the prefill server frees
   the request's KV, the router stops counting it at the prefill server, and
   the decode server may merge it at its next step boundary.

Client TTFT rule: the prefill server samples the first token, but the client
receives it from the decode server (SGLang's router streams the decode
server's response; the decode server streams the first token when it merges
the transferred request). So TTFT = arrival -> decode preallocation ->
prefill queue and forward -> KV transfer -> the decode server's next step
boundary. With idle servers and free links that is prefill time + transfer
time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Protocol

from ..engine.events import PRIORITY_TRANSFER, EventQueue
from ..hardware.links import LinkSpec, ServerPlacement, link_between
from ..routing.base import PoolRouter, RouteTarget
from ..serving.request import Request
from .transfer import KVTransferEngine

if TYPE_CHECKING:
    from ..serving.disagg import DecodeRole
    from ..serving.worker import Worker


class LoadLedger(Protocol):
    """The cluster's record of the router targets that count each request."""

    def hold(self, req: Request, router: PoolRouter, target: RouteTarget) -> None: ...
    def release(self, req: Request, router: PoolRouter) -> None: ...


class RejectFn(Protocol):
    def __call__(self, req: Request, now: float, reason: str) -> None: ...


@dataclass
class _PairState:
    prefill: "Worker"
    decode: "Worker"
    link: LinkSpec
    sent_tokens: int = 0
    last_piece_end: float = 0.0
    queue_s: float = 0.0


class PDFlow:
    """Moves requests through one prefill pool and one decode pool."""

    def __init__(self, engine: EventQueue, transfers: KVTransferEngine, inter_node_link: str,
                 num_reserved_decode_tokens: int, ledger: LoadLedger, reject: RejectFn) -> None:
        self.engine = engine
        self.transfers = transfers
        self.inter_node_link = inter_node_link
        self.num_reserved_decode_tokens = num_reserved_decode_tokens
        self.ledger = ledger
        self.reject = reject
        self.prefill_router: PoolRouter | None = None
        self.decode_router: PoolRouter | None = None
        self.resolve: Callable[[RouteTarget], "Worker"] | None = None
        self.placements: dict[int, ServerPlacement] = {}
        self._pairs: dict[int, _PairState] = {}
        self._links: dict[tuple[int, int], LinkSpec] = {}

    def attach(self, prefill_router: PoolRouter, decode_router: PoolRouter,
               resolve: Callable[[RouteTarget], "Worker"], placements: dict[int, ServerPlacement]) -> None:
        """Give the flow its routers and servers, which are built after it (their roles call it).

        `resolve` maps a routing target to the server that takes the request.
        """
        self.prefill_router = prefill_router
        self.decode_router = decode_router
        self.resolve = resolve
        self.placements = placements

    # ----- 1. routing -----

    def admit(self, req: Request, now: float) -> None:
        """Route a new request to a (prefill, decode) pair and queue it for decode preallocation."""
        p_target = self.prefill_router.route(req, now)
        d_target = self.decode_router.route(req, now)
        self.ledger.hold(req, self.prefill_router, p_target)
        self.ledger.hold(req, self.decode_router, d_target)
        prefill, decode = self.resolve(p_target), self.resolve(d_target)
        req.prefill_worker_id = prefill.worker_id
        req.worker_id = decode.worker_id
        req.data_parallel_rank = d_target.dp_rank
        reason = self._reject_reason(req, prefill, decode)
        if reason is not None:
            self.reject(req, now, reason)
            return
        max_output = decode.scheduler.config.max_req_len - req.input_len - 1
        if req.output_len > max_output:
            req.output_len = max(max_output, 1)
        self._pairs[req.rid] = _PairState(prefill, decode, self._link(prefill.worker_id, decode.worker_id))
        self._decode_role(decode).enqueue(decode, req, now)

    def _reject_reason(self, req: Request, prefill: "Worker", decode: "Worker") -> str | None:
        if req.input_len > prefill.scheduler.config.max_req_input_len:
            return "input longer than the server accepts"
        decode_cfg = decode.scheduler.config
        if req.input_len > decode_cfg.max_req_input_len:
            return "input longer than the server accepts"
        if req.input_len + self.num_reserved_decode_tokens > decode_cfg.max_total_tokens:
            return "input does not fit the decode server's KV pool"
        return None

    def _link(self, src: int, dst: int) -> LinkSpec:
        key = (src, dst)
        link = self._links.get(key)
        if link is None:
            link = link_between(self.placements[src], self.placements[dst], self.inter_node_link)
            self._links[key] = link
        return link

    @staticmethod
    def _decode_role(worker: "Worker") -> "DecodeRole":
        return worker.role  # type: ignore[return-value]

    # ----- 2. bootstrap done -----

    def on_preallocated(self, req: Request, now: float) -> None:
        """Queue the request at its prefill server once the decode server has reserved its KV."""
        pair = self._pairs[req.rid]
        pair.prefill.submit(req, now)
        req.worker_id = pair.decode.worker_id

    # ----- 3. KV pieces -----

    def on_kv_ready(self, worker: "Worker", req: Request, num_ready_tokens: int, last: bool, now: float) -> None:
        """Send the KV computed since the last piece; after the last one, await its arrival."""
        pair = self._pairs[req.rid]
        page = worker.scheduler.config.page_size
        end = num_ready_tokens if last else num_ready_tokens // page * page
        if end > pair.sent_tokens or last:
            slot = self.transfers.schedule(pair.prefill.worker_id, pair.decode.worker_id, pair.link,
                                           end - pair.sent_tokens, now)
            pair.sent_tokens = end
            pair.queue_s += slot.queue_s
            pair.last_piece_end = max(pair.last_piece_end, slot.end)
        if last:
            self.engine.push(pair.last_piece_end, PRIORITY_TRANSFER, self._on_transfer_done, req)

    # ----- 4. transfer done -----

    def _on_transfer_done(self, now: float, req: Request) -> None:
        pair = self._pairs.pop(req.rid)
        req.transfer_s = now - req.prefill_done_at
        req.transfer_queue_s = pair.queue_s
        pair.prefill.scheduler.release_sent(req, now)
        self.ledger.release(req, self.prefill_router)
        pair.prefill.notify_new_work(now)
        self._decode_role(pair.decode).mark_transferred(pair.decode, req, now)
