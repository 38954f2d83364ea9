"""Routers that pick a server (or a DP rank of one) for each request, as SGLang's router does."""

from .base import (CacheAwareConfig, PoolRouter, RouteTarget, RoutingPolicy, build_router, make_policy,
                   policy_names, register_policy)

__all__ = ["CacheAwareConfig", "PoolRouter", "RouteTarget", "RoutingPolicy", "build_router",
           "make_policy", "policy_names", "register_policy"]
