"""Routing targets, the policy registry and the per-pool router that owns the load counts.

A router sits in front of one pool of servers. Each server exposes one or
more routing targets: one per server normally, or one per DP rank when the
router is DP-aware (SGLang router's `--dp-aware`, which writes the chosen
rank into the request as `data_parallel_rank`).

Load, as SGLang's router counts it, is the number of requests the router
has sent to a target and not yet seen finish there. The router increments
it on `route` and the cluster decrements it through `release` when the
request leaves that server (for a prefill server of a P/D pair: when its KV
transfer completes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol, Sequence

import numpy as np

from ..errors import unknown
from ..serving.request import Request


@dataclass(frozen=True)
class RouteTarget:
    """One destination a router can pick: a server, or one DP rank of it."""

    index: int
    """Position in the router's target list (the tenant id of the cache-aware tree)."""
    worker_id: int
    dp_rank: int | None = None
    """DP rank when the router is DP-aware; None lets the server pick (SGLang's default)."""


@dataclass(frozen=True)
class CacheAwareConfig:
    """Knobs of the cache_aware policy, defaults as SGLang's `launch_router` CLI."""

    cache_threshold: float = 0.3
    """Route to the best-matching target only if matched tokens / prompt tokens exceed this."""
    balance_abs_threshold: int = 64
    """Imbalanced needs max load - min load above this many requests..."""
    balance_rel_threshold: float = 1.5
    """...and max load above min load times this factor."""
    eviction_interval_secs: float = 120.0
    """Simulated seconds between trims of the approximate tree (0 disables trimming)."""
    max_tree_size: int = 1 << 26
    """Tokens each target may keep in the approximate tree after a trim."""


class RoutingPolicy(Protocol):
    """Picks a target index for a request, given the router's load per target."""

    name: str

    def select(self, req: Request, loads: Sequence[int], now: float) -> int: ...


PolicyFactory = Callable[[int, CacheAwareConfig, np.random.Generator], RoutingPolicy]
"""Builds a policy from (number of targets, cache-aware knobs, the router's RNG)."""

_REGISTRY: dict[str, PolicyFactory] = {}


def register_policy(name: str) -> Callable[[PolicyFactory], PolicyFactory]:
    """Class decorator that adds a policy to the registry; a duplicate name is a RuntimeError."""

    def add(factory: PolicyFactory) -> PolicyFactory:
        if name in _REGISTRY:
            raise RuntimeError(f"routing policy {name!r} is registered twice")
        _REGISTRY[name] = factory
        return factory

    return add


def policy_names() -> tuple[str, ...]:
    """Names of every registered routing policy."""
    from . import cache_aware, load_policies  # noqa: F401  (importing registers them)

    return tuple(sorted(_REGISTRY))


def make_policy(name: str, num_targets: int, config: CacheAwareConfig,
                rng: np.random.Generator) -> RoutingPolicy:
    """Build the registered policy `name`; an unknown name is a ConfigError listing the choices."""
    names = policy_names()
    if name not in _REGISTRY:
        raise unknown("router policy", name, names)
    return _REGISTRY[name](num_targets, config, rng)


class PoolRouter:
    """A routing policy over the targets of one pool, with the in-flight count per target."""

    def __init__(self, policy: RoutingPolicy, targets: Sequence[RouteTarget]) -> None:
        if not targets:
            raise RuntimeError("a router needs at least one target")
        self.policy = policy
        self.targets = list(targets)
        self.loads = [0] * len(self.targets)
        self.num_routed = [0] * len(self.targets)

    @property
    def name(self) -> str:
        return self.policy.name

    def route(self, req: Request, now: float) -> RouteTarget:
        """Pick a target for `req` and count the request in flight there.

        With a single target every policy picks it, so the policy is not consulted: its state
        (cache_aware's prefix tree, a random policy's RNG) is private and its choice is fixed.
        """
        index = 0 if len(self.targets) == 1 else self.policy.select(req, self.loads, now)
        self.loads[index] += 1
        self.num_routed[index] += 1
        return self.targets[index]

    def release(self, target: RouteTarget) -> None:
        """Stop counting a request at `target` because it has left that server."""
        if self.loads[target.index] <= 0:
            raise RuntimeError(f"router load of target {target.index} would go negative")
        self.loads[target.index] -= 1


def build_router(name: str, targets: Sequence[RouteTarget], config: CacheAwareConfig,
                 rng: np.random.Generator) -> PoolRouter:
    """Build a `PoolRouter` that runs policy `name` over `targets`."""
    return PoolRouter(make_policy(name, len(targets), config, rng), targets)
