"""Routing cost when a pool has a single server."""

from __future__ import annotations

from sglsim.routing import RouteTarget
from sglsim.routing.base import PoolRouter
from sglsim.serving.request import PromptKey, Request


class _FailingPolicy:
    name = "failing"

    def select(self, req, loads, now):
        raise AssertionError("a single target needs no policy decision")


def test_single_target_routes_without_the_policy():
    # With one server the cache-aware policy still built its prefix tree and trimmed it every
    # 120 simulated seconds: on 100,000 requests the trims took a third of the run time.
    router = PoolRouter(_FailingPolicy(), [RouteTarget(0, worker_id=7)])
    req = Request(0, 0.0, 100, 10, PromptKey((1,), (100,)))
    assert router.route(req, 0.0).worker_id == 7
    assert router.loads == [1]
    assert router.num_routed == [1]
