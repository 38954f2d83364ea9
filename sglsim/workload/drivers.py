"""Workload drivers: when requests arrive, open loop, concurrency-limited or as multi-turn sessions.

A driver schedules arrivals through a `RequestSink` and hears back when each
request finishes or is rejected, which closed-loop clients and sessions need
to send their next request. Request ids and block ids come from counters on
the driver instance, never from process-wide state.
"""

from __future__ import annotations

from typing import Callable, Protocol

import numpy as np

from ..serving.request import PromptKey, Request


class RequestSink(Protocol):
    def schedule_arrival(self, time: float, req: Request) -> None: ...


class WorkloadDriver(Protocol):
    num_requests: int
    """Requests the driver will send in total."""

    def start(self, sink: RequestSink) -> None: ...
    def on_done(self, req: Request, now: float) -> None: ...


PromptFn = Callable[[int], "tuple[tuple[int, ...], tuple[int, ...]] | None"]


class OpenLoopDriver:
    """Requests at fixed arrival times, pushed one at a time to keep the event heap small."""

    def __init__(self, arrival_s: np.ndarray, input_len: np.ndarray, output_len: np.ndarray,
                 prompt_fn: PromptFn | None = None) -> None:
        self.arrival_s = arrival_s
        self.input_len = input_len
        self.output_len = output_len
        self.prompt_fn = prompt_fn
        self.num_requests = len(input_len)
        self._next = 0
        self._sink: RequestSink | None = None

    def _make(self, i: int) -> Request:
        blocks = self.prompt_fn(i) if self.prompt_fn is not None else None
        prompt = PromptKey(*blocks) if blocks is not None else None
        return Request(i, float(self.arrival_s[i]), int(self.input_len[i]), int(self.output_len[i]), prompt)

    def start(self, sink: RequestSink) -> None:
        self._sink = sink
        self._push_next()

    def _push_next(self) -> None:
        if self._next < self.num_requests:
            req = self._make(self._next)
            self._next += 1
            self._sink.schedule_arrival(req.arrived_at, req)

    def on_arrival(self, req: Request, now: float) -> None:
        """Called when a request of this driver reaches the router: queue the next one."""
        self._push_next()

    def on_done(self, req: Request, now: float) -> None:
        pass


class ClosedLoopDriver:
    """At most `concurrency` requests in flight; a finished request frees its slot for the next one.

    Without `ready_s` and `slot_open_s` this is a plain closed loop: each of
    `concurrency` clients sends its next request the moment its last one
    finishes (SGLang's `bench_serving --max-concurrency C` at the default
    `--request-rate inf`, aiperf `--concurrency C`).

    `ready_s[i]` (non-decreasing) is when request i is issued
    (`bench_serving --request-rate R --max-concurrency C`). A ready request
    takes a free slot at once, else it waits, first in first out, for the
    next slot to free. Its server arrival, where its TTFT starts, is the
    moment it gets the slot: bench_serving starts a request's clock after the
    concurrency semaphore lets it through.

    `slot_open_s[k]` (non-decreasing) is when slot k may send its first
    request (aiperf `--concurrency-ramp-duration`, see `ramp_open_times`).

    Request i is sent at max(ready_s[i], the time its slot is free), so slot
    k's first request goes at max(ready_s[k], slot_open_s[k]).
    """

    def __init__(self, concurrency: int, input_len: np.ndarray, output_len: np.ndarray,
                 prompt_fn: PromptFn | None = None, ready_s: np.ndarray | None = None,
                 slot_open_s: np.ndarray | None = None) -> None:
        self.concurrency = concurrency
        self.input_len = input_len
        self.output_len = output_len
        self.prompt_fn = prompt_fn
        self.num_requests = len(input_len)
        self.ready_s = ready_s
        self.slot_open_s = slot_open_s
        self._next = 0
        self._sink: RequestSink | None = None

    def start(self, sink: RequestSink) -> None:
        self._sink = sink
        for client in range(min(self.concurrency, self.num_requests)):
            opens = 0.0 if self.slot_open_s is None else float(self.slot_open_s[client])
            self._send(client, opens)

    def _send(self, client: int, now: float) -> None:
        if self._next >= self.num_requests:
            return
        i = self._next
        self._next += 1
        if self.ready_s is not None:
            now = max(now, float(self.ready_s[i]))
        blocks = self.prompt_fn(i) if self.prompt_fn is not None else None
        prompt = PromptKey(*blocks) if blocks is not None else None
        req = Request(i, now, int(self.input_len[i]), int(self.output_len[i]), prompt, client_id=client)
        self._sink.schedule_arrival(now, req)

    def on_arrival(self, req: Request, now: float) -> None:
        pass

    def on_done(self, req: Request, now: float) -> None:
        self._send(req.client_id, now)


def ramp_open_times(concurrency: int, ramp_s: float) -> np.ndarray:
    """Times at which the slots of a concurrency ramp open (aiperf `--concurrency-ramp-duration`).

    aiperf starts at one request in flight and adds one slot at evenly
    spaced instants until `concurrency` slots are open at `ramp_s`:
    slot k opens at k x ramp_s / (concurrency - 1).
    """
    if concurrency <= 1:
        return np.zeros(concurrency)
    return np.arange(concurrency) * (ramp_s / (concurrency - 1))


class SessionDriver:
    """Multi-turn chat sessions whose first turns arrive open loop.

    Session s starts at `start_s[s]` in prefix group `group[s]`; turn t+1 is
    sent `think_time_s` after turn t finishes. Turn t's prompt is the group's
    system prompt, then for each earlier turn its user message and its
    output, then the new user message, so consecutive turns share a growing
    prefix exactly as a chat client re-sends its history.
    """

    def __init__(self, start_s: np.ndarray, group: np.ndarray, turns: int, system_len: int,
                 user_len: np.ndarray, output_len: np.ndarray, think_time_s: float,
                 num_requests: int | None = None) -> None:
        self.start_s = start_s
        self.group = group
        self.turns = turns
        self.system_len = system_len
        self.user_len = user_len.reshape(len(start_s), turns)
        self.out_len = output_len.reshape(len(start_s), turns)
        self.think_time_s = think_time_s
        self.num_requests = len(start_s) * turns if num_requests is None else num_requests
        """Requests sent in all: sessions stop early, latest turns first, once this many are out."""
        self._history: dict[int, tuple[tuple[int, ...], tuple[int, ...]]] = {}
        self._turn: dict[int, int] = {}
        self._next_session = 0
        self._next_rid = 0
        self._next_block = 1 << 20
        self._sink: RequestSink | None = None

    def start(self, sink: RequestSink) -> None:
        self._sink = sink
        self._start_next_session()

    def _start_next_session(self) -> None:
        s = self._next_session
        if s >= len(self.start_s) or self._next_rid >= self.num_requests:
            return
        self._next_session += 1
        g = int(self.group[s])
        ids, lens = ((g,), (self.system_len,)) if self.system_len > 0 else ((), ())
        self._history[s] = (ids, lens)
        self._turn[s] = 0
        self._send(s, float(self.start_s[s]))

    def _block(self) -> int:
        self._next_block += 1
        return self._next_block

    def _send(self, session: int, now: float) -> None:
        t = self._turn[session]
        ids, lens = self._history[session]
        user = int(self.user_len[session, t])
        ids, lens = ids + (self._block(),), lens + (user,)
        rid = self._next_rid
        self._next_rid += 1
        out_block = self._block()
        req = Request(rid, now, sum(lens), int(self.out_len[session, t]), PromptKey(ids, lens),
                      output_block_id=out_block, client_id=session)
        self._history[session] = (ids, lens)
        self._sink.schedule_arrival(now, req)

    def on_arrival(self, req: Request, now: float) -> None:
        if self._turn[req.client_id] == 0:
            self._start_next_session()

    def on_done(self, req: Request, now: float) -> None:
        session = req.client_id
        self._turn[session] += 1
        if self._turn[session] >= self.turns or self._next_rid >= self.num_requests:
            del self._history[session]
            return
        ids, lens = self._history[session]
        n_out = req.num_output_tokens
        if n_out > 1:
            ids, lens = ids + (req.output_block_id,), lens + (n_out - 1,)
        if n_out > 0:
            ids, lens = ids + (self._block(),), lens + (1,)
        self._history[session] = (ids, lens)
        self._send(session, now + self.think_time_s)
