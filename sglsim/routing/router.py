"""Request routers in front of a pool of servers.

`round_robin` cycles through the servers; `shortest_queue` picks the server
with the fewest requests queued or running (ties go to the lowest id), which
is what SGLang's router falls back to when its load is imbalanced.
"""

from __future__ import annotations

from typing import Protocol, Sequence

from ..errors import unknown
from ..serving.request import Request


class RoutedWorker(Protocol):
    worker_id: int

    @property
    def load(self) -> int: ...


class Router(Protocol):
    name: str

    def select(self, req: Request, workers: Sequence[RoutedWorker], now: float) -> RoutedWorker: ...


class RoundRobinRouter:
    name = "round_robin"

    def __init__(self) -> None:
        self._next = 0

    def select(self, req: Request, workers: Sequence[RoutedWorker], now: float) -> RoutedWorker:
        worker = workers[self._next % len(workers)]
        self._next += 1
        return worker


class ShortestQueueRouter:
    name = "shortest_queue"

    def select(self, req: Request, workers: Sequence[RoutedWorker], now: float) -> RoutedWorker:
        return min(workers, key=lambda w: (w.load, w.worker_id))


ROUTERS = {"round_robin": RoundRobinRouter, "shortest_queue": ShortestQueueRouter}


def make_router(name: str) -> Router:
    if name not in ROUTERS:
        raise unknown("router policy", name, ROUTERS)
    return ROUTERS[name]()
