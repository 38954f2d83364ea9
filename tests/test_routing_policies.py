"""Load-only routing policies, the policy registry and the router's in-flight counts."""

from __future__ import annotations

import numpy as np
import pytest

from sglsim.errors import ConfigError
from sglsim.routing import CacheAwareConfig, RouteTarget, build_router, make_policy, policy_names, register_policy
from sglsim.serving.request import Request

CFG = CacheAwareConfig()


def _targets(n: int) -> list[RouteTarget]:
    return [RouteTarget(i, 10 + i) for i in range(n)]


def _req(rid: int = 0) -> Request:
    return Request(rid, 0.0, 100, 10)


def test_registry_lists_sglang_policies():
    assert policy_names() == ("cache_aware", "power_of_two", "random", "round_robin", "shortest_queue")


def test_registry_rejects_duplicate_name():
    with pytest.raises(RuntimeError, match="registered twice"):
        register_policy("round_robin")(object)


def test_unknown_policy_is_config_error():
    with pytest.raises(ConfigError, match="unknown router policy 'fastest': choose one of cache_aware"):
        make_policy("fastest", 2, CFG, np.random.default_rng(0))


def test_round_robin_cycles_targets():
    router = build_router("round_robin", _targets(3), CFG, np.random.default_rng(0))
    picks = [router.route(_req(i), 0.0).worker_id for i in range(7)]
    assert picks == [10, 11, 12, 10, 11, 12, 10]


def test_router_counts_in_flight_requests():
    router = build_router("round_robin", _targets(2), CFG, np.random.default_rng(0))
    # Route three requests: targets 0, 1, 0.
    first = router.route(_req(0), 0.0)
    router.route(_req(1), 0.0)
    router.route(_req(2), 0.0)
    assert router.loads == [2, 1]
    # The first request leaves its server.
    router.release(first)
    assert router.loads == [1, 1]
    assert router.num_routed == [2, 1]


def test_router_release_below_zero_raises():
    router = build_router("random", _targets(2), CFG, np.random.default_rng(0))
    with pytest.raises(RuntimeError, match="negative"):
        router.release(RouteTarget(1, 11))


def test_shortest_queue_prefers_lowest_index_on_tie():
    router = build_router("shortest_queue", _targets(3), CFG, np.random.default_rng(0))
    # Loads 0,0,0 -> target 0; then 1,0,0 -> target 1; then 1,1,0 -> target 2.
    assert [router.route(_req(i), 0.0).index for i in range(4)] == [0, 1, 2, 0]


def test_power_of_two_takes_less_loaded_of_sample():
    policy = make_policy("power_of_two", 4, CFG, np.random.default_rng(7))
    reference = np.random.default_rng(7)
    loads = [5, 0, 3, 1]
    for _ in range(50):
        a, b = reference.choice(4, size=2, replace=False)
        expected = a if loads[a] <= loads[b] else b
        assert policy.select(_req(), loads, 0.0) == expected


def test_power_of_two_single_target():
    policy = make_policy("power_of_two", 1, CFG, np.random.default_rng(0))
    assert policy.select(_req(), [3], 0.0) == 0


def test_random_is_deterministic_per_seed():
    picks = []
    for _ in range(2):
        router = build_router("random", _targets(4), CFG, np.random.default_rng(3))
        picks.append([router.route(_req(i), 0.0).index for i in range(20)])
    assert picks[0] == picks[1]
    assert set(picks[0]) == {0, 1, 2, 3}
