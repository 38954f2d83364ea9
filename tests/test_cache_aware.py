"""SGLang's cache_aware policy: prefix affinity when balanced, shortest queue when not."""

from __future__ import annotations

import numpy as np

from sglsim.routing import CacheAwareConfig, make_policy
from sglsim.serving.request import PromptKey, Request

B = 512


def _req(rid: int, *blocks: int) -> Request:
    prompt = PromptKey(tuple(blocks), (B,) * len(blocks))
    return Request(rid, 0.0, prompt.num_tokens, 10, prompt)


def _policy(**knobs):
    return make_policy("cache_aware", 2, CacheAwareConfig(**knobs), np.random.default_rng(0))


def test_defaults_match_sglang_launcher():
    cfg = CacheAwareConfig()
    assert (cfg.cache_threshold, cfg.balance_abs_threshold, cfg.balance_rel_threshold,
            cfg.eviction_interval_secs, cfg.max_tree_size) == (0.3, 64, 1.5, 120.0, 67108864)


def test_balanced_decisions_follow_the_tree():
    policy = _policy()
    loads = [0, 0]
    # Empty tree: no match, both targets hold 0 tokens -> the smallest is target 0.
    assert policy.select(_req(0, 1, 2, 3), loads, 1.0) == 0
    # Shares blocks 1, 2: 1024 / 1536 = 0.67 > 0.3 -> target 0 again.
    assert policy.select(_req(1, 1, 2, 4), loads, 2.0) == 0
    # Nothing in common: target 1 has fewer tokens in the tree (0 < 2048).
    assert policy.select(_req(2, 5, 6), loads, 3.0) == 1
    # Shares only block 1: 512 / 2048 = 0.25 <= 0.3 -> smallest tree, target 1 (1024 < 2048).
    assert policy.select(_req(3, 1, 7, 8, 9), loads, 4.0) == 1
    # Shares blocks 5, 6 with target 1: 1024 / 1536 > 0.3 -> target 1.
    assert policy.select(_req(4, 5, 6, 10), loads, 5.0) == 1
    assert policy.num_cache_hits == 2
    assert policy.num_imbalanced == 0


def test_imbalanced_routes_to_least_loaded_and_records_it():
    policy = _policy()
    assert policy.select(_req(0, 1, 2, 3), [0, 0], 1.0) == 0
    # 100 - 10 > 64 and 100 > 10 x 1.5: imbalanced -> least loaded, despite the full match on 0.
    assert policy.select(_req(1, 1, 2, 3), [100, 10], 2.0) == 1
    assert policy.num_imbalanced == 1
    # The prompt went into target 1's part of the tree: 1536 tokens each now.
    assert policy.tree.tenant_tokens == [3 * B, 3 * B]


def test_imbalance_needs_both_thresholds():
    policy = _policy()
    policy.select(_req(0, 1, 2, 3), [0, 0], 1.0)
    # Difference 30 <= 64: balanced, so the match on target 0 wins.
    assert policy.select(_req(1, 1, 2, 3), [100, 70], 2.0) == 0
    # Difference 65 > 64 but 200 <= 135 x 1.5 = 202.5: still balanced.
    assert policy.select(_req(2, 1, 2, 3), [200, 135], 3.0) == 0
    # Difference 65 and 200 > 130 x 1.5 = 195: imbalanced.
    assert policy.select(_req(3, 1, 2, 3), [200, 130], 4.0) == 1
    assert policy.num_imbalanced == 1


def test_tree_trimmed_every_interval():
    policy = _policy(eviction_interval_secs=10.0, max_tree_size=2 * B)
    policy.select(_req(0, 1, 2), [0, 0], 1.0)
    # Imbalanced loads send an unrelated prompt to target 0 too (no match stamps the tree).
    assert policy.select(_req(1, 5, 6), [0, 100], 2.0) == 0
    # Target 0 has 2048 tokens in the tree until the first trim at t >= 10.
    assert policy.tree.tenant_tokens == [4 * B, 0]
    # At t = 12 the trim drops target 0's least recently used leaf, blocks 1, 2 (stamped at t = 1).
    # The new prompt shares nothing, so it goes to the smaller tree, target 1.
    assert policy.select(_req(2, 9), [0, 0], 12.0) == 1
    assert policy.tree.tenant_tokens == [2 * B, B]
    assert policy.tree.prefix_match((1, 2), (B, B), 13.0) == (0, None)
    assert policy.tree.prefix_match((5, 6), (B, B), 13.0) == (2 * B, 0)
    # No second trim before t = 20.
    policy.select(_req(3, 5, 6, 7), [0, 0], 15.0)
    assert policy.tree.tenant_tokens == [3 * B, B]


def test_trimming_off_with_zero_interval():
    policy = _policy(eviction_interval_secs=0.0, max_tree_size=1)
    policy.select(_req(0, 1, 2), [0, 0], 1.0)
    policy.select(_req(1, 3), [0, 0], 1000.0)
    assert policy.tree.tenant_tokens == [2 * B, B]
