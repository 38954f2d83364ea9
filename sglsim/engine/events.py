"""A deterministic event queue ordered by (time, priority, sequence number).

Same-time events run in priority order, then in the order they were pushed,
so a run never depends on comparing callbacks. Priorities:

- PRIORITY_ARRIVAL (0): a request reaches the router or a server;
- PRIORITY_TRANSFER (1): a KV transfer completes;
- PRIORITY_STEP (2): a server step boundary (it then forms the next batch,
  so every request that arrived at that instant is already queued).
"""

from __future__ import annotations

import heapq
from typing import Any, Callable

PRIORITY_ARRIVAL = 0
PRIORITY_TRANSFER = 1
PRIORITY_STEP = 2

Callback = Callable[[float, Any], None]


class EventQueue:
    """Min-heap of (time, priority, seq, callback, arg); `now` never moves backwards."""

    __slots__ = ("_heap", "_seq", "now", "num_events")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, int, Callback, Any]] = []
        self._seq = 0
        self.now = 0.0
        self.num_events = 0

    def push(self, time: float, priority: int, callback: Callback, arg: Any = None) -> None:
        if time < self.now:
            raise RuntimeError(f"event scheduled in the past: {time} < now {self.now}")
        self._seq += 1
        heapq.heappush(self._heap, (time, priority, self._seq, callback, arg))

    def __len__(self) -> int:
        return len(self._heap)

    def run(self, until: float = float("inf")) -> None:
        """Process events in order until the queue is empty or the next one is after `until`."""
        heap = self._heap
        pop = heapq.heappop
        while heap and heap[0][0] <= until:
            time, _, _, callback, arg = pop(heap)
            self.now = time
            self.num_events += 1
            callback(time, arg)
