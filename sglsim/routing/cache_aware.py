"""SGLang's cache_aware routing policy over an approximate prefix tree.

Per request (sgl-router `policies/cache_aware.rs`):
1. Imbalanced, when max load - min load > balance_abs_threshold and
   max load > min load x balance_rel_threshold: route to the least loaded
   target, and still record the prompt under it in the tree.
2. Otherwise match the prompt against the tree; if matched tokens / prompt
   tokens > cache_threshold, route to the matched node's tenant, else to the
   tenant holding the fewest tokens of the tree; record the prompt under it.

Every `eviction_interval_secs` of simulated time the tree is trimmed to
`max_tree_size` tokens per tenant. SGLang does this on a background thread.
Here the trim runs lazily before the first routing decision after each
interval boundary, which is equivalent because the tree only changes when
a request is routed.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from ..serving.request import Request
from .approx_tree import ApproxPrefixTree
from .base import CacheAwareConfig, register_policy
from .load_policies import least_loaded


@register_policy("cache_aware")
class CacheAwarePolicy:
    """Prefix affinity when loads are balanced, shortest queue when they are not."""

    name = "cache_aware"

    def __init__(self, num_targets: int, config: CacheAwareConfig, rng: np.random.Generator) -> None:
        self.config = config
        self.tree = ApproxPrefixTree(num_targets)
        self._next_eviction_s = config.eviction_interval_secs
        self.num_imbalanced = 0
        """Decisions taken by shortest queue because loads were imbalanced."""
        self.num_cache_hits = 0
        """Decisions that followed a prefix match above cache_threshold."""

    def is_imbalanced(self, loads: Sequence[int]) -> bool:
        high, low = max(loads), min(loads)
        cfg = self.config
        return high - low > cfg.balance_abs_threshold and high > low * cfg.balance_rel_threshold

    def select(self, req: Request, loads: Sequence[int], now: float) -> int:
        self._maybe_evict(now)
        ids, lens = req.prompt.ids, req.prompt.lens
        if self.is_imbalanced(loads):
            self.num_imbalanced += 1
            target = least_loaded(loads)
        else:
            matched, tenant = self.tree.prefix_match(ids, lens, now)
            total = req.prompt.num_tokens
            rate = matched / total if total else 0.0
            if tenant is not None and rate > self.config.cache_threshold:
                self.num_cache_hits += 1
                target = tenant
            else:
                target = self.tree.smallest_tenant()
        self.tree.insert(ids, lens, target, now)
        return target

    def _maybe_evict(self, now: float) -> None:
        interval = self.config.eviction_interval_secs
        if interval <= 0 or now < self._next_eviction_s:
            return
        self.tree.evict_tenant_by_size(self.config.max_tree_size)
        self._next_eviction_s = (math.floor(now / interval) + 1) * interval
