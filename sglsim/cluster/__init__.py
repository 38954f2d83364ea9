"""Server pools, their routers, prefill/decode disaggregation and KV transfer between pools."""

from .cluster import Cluster, Pool, build_pool_specs

__all__ = ["Cluster", "Pool", "build_pool_specs"]
