"""All servers of a scenario in their pools, their routers, and the path each request takes.

Pools: `prefill` and `decode` (a P/D pair), and `aggregated` replicas. Worker
ids and GPU placement follow that order: servers are packed onto nodes of
`gpus_per_node` GPUs (one NVLink domain) in the order prefill, decode,
aggregated (`hardware/links.py`).

When a cluster has both aggregated replicas and a P/D pair, each request
picks one of the two at random, weighted by server count (aggregated
replicas against prefill + decode servers), as SGLang Model Gateway does
in its multi-router mode. The pool routers then pick the servers.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..config.scenario import Scenario
from ..engine.events import EventQueue
from ..hardware.links import ServerPlacement, place_servers
from ..routing.base import CacheAwareConfig, PoolRouter, RouteTarget, build_router
from ..serving.disagg import DecodeRole, PrefillRole
from ..serving.request import Request
from ..serving.server_spec import ServerSpec, build_server_spec, build_servers
from ..serving.worker import ServerRole, WorkerObserver
from .pd_flow import PDFlow
from .transfer import KVTransferEngine

POOL_ORDER = ("prefill", "decode", "aggregated")


@dataclass
class Pool:
    """Identical servers (replicas) behind one router."""

    name: str
    spec: ServerSpec
    replicas: list[list[Any]]
    """Per replica, its schedulers: one `Worker` per DP copy, or the ranks of a DP-attention server."""
    router: PoolRouter

    @property
    def workers(self) -> list[Any]:
        """Every scheduler of the pool (a `Worker` or a DP rank), in worker-id order."""
        return [member for replica in self.replicas for member in replica]


def build_pool_specs(scenario: Scenario) -> dict[str, ServerSpec]:
    """Resolve each pool's server: the P/D pools get their disaggregation mode.

    Each pool takes the efficiency constants of its own GPU, with the
    scenario's `efficiency` overrides applied.

    A decode server runs without a radix cache, SGLang's default unless
    `--disaggregation-decode-enable-radix-cache` is given.
    """
    cluster = scenario.cluster
    specs: dict[str, ServerSpec] = {}
    if cluster.has_pd:
        for name in ("prefill", "decode"):
            spec = build_server_spec(scenario.model, scenario.pool_gpu(name), scenario.pool_server_args(name),
                                     scenario.efficiency)
            sched = replace(spec.scheduler, disaggregation_mode=name,
                            disable_radix_cache=spec.scheduler.disable_radix_cache or name == "decode")
            specs[name] = replace(spec, scheduler=sched)
    if cluster.num_replicas:
        specs["aggregated"] = build_server_spec(scenario.model, scenario.gpu, scenario.server, scenario.efficiency)
    return specs


class _Ledger:
    """Record of the router targets that count each request in flight, so loads drop when it leaves."""

    def __init__(self) -> None:
        self._held: dict[int, list[tuple[PoolRouter, RouteTarget]]] = {}

    def hold(self, req: Request, router: PoolRouter, target: RouteTarget) -> None:
        self._held.setdefault(req.rid, []).append((router, target))

    def release(self, req: Request, router: PoolRouter) -> None:
        counted = self._held.get(req.rid, [])
        for i, (owner, target) in enumerate(counted):
            if owner is router:
                owner.release(target)
                del counted[i]
                return
        raise RuntimeError(f"request {req.rid} is not counted by router {router.name}")

    def release_all(self, req: Request) -> None:
        for router, target in self._held.pop(req.rid, []):
            router.release(target)


class Cluster:
    """Builds the pools of a scenario and dispatches each arriving request."""

    def __init__(self, scenario: Scenario, engine: EventQueue, observer: WorkerObserver) -> None:
        cfg = scenario.cluster
        self.scenario = scenario
        self.specs = build_pool_specs(scenario)
        self.ledger = _Ledger()
        seeds = np.random.SeedSequence(cfg.seed).spawn(1 + len(POOL_ORDER))
        self._path_rng = np.random.default_rng(seeds[0])
        self.workers: dict[int, Any] = {}
        """Every scheduler of the cluster (a `Worker` or a DP rank) by worker id."""
        self.pools: dict[str, Pool] = {}
        self._replica_of: dict[int, list[Any]] = {}
        self._next_rank: dict[int, int] = {}
        self.pd = self._build_flow(engine, observer) if cfg.has_pd else None
        for index, name in enumerate(POOL_ORDER):
            if name in self.specs:
                self._build_pool(name, engine, observer, np.random.default_rng(seeds[1 + index]))
        self.placements = self._place()
        if self.pd is not None:
            self.pd.attach(self.pools["prefill"].router, self.pools["decode"].router, self.resolve,
                           self.placements)

    # ----- construction -----

    def _build_pool(self, name: str, engine: EventQueue, observer: WorkerObserver,
                    rng: np.random.Generator) -> None:
        cfg = self.scenario.cluster
        spec = self.specs[name]
        pool_cfg = getattr(cfg, name) if name != "aggregated" else None
        count = pool_cfg.workers if pool_cfg is not None else cfg.num_replicas
        servers, members = build_servers(spec, count, engine, observer, name, first_worker_id=len(self.workers))
        if spec.parallel.dp_attention:
            replicas = [server.ranks for server in servers]
        else:
            dp = spec.parallel.dp
            replicas = [members[i:i + dp] for i in range(0, len(members), dp)]
        for replica in replicas:
            for member in replica:
                if pool_cfg is not None:
                    member.role = self._role(name)
                self.workers[member.worker_id] = member
                self._replica_of[member.worker_id] = replica
        policy = (pool_cfg.policy if pool_cfg is not None else None) or cfg.router
        router = build_router(policy, self._targets(replicas), CacheAwareConfig(**cfg.cache_aware.model_dump()), rng)
        self.pools[name] = Pool(name, spec, replicas, router)

    def _build_flow(self, engine: EventQueue, observer: WorkerObserver) -> PDFlow:
        prefill, decode = self.specs["prefill"], self.specs["decode"]
        # NOTE: with pipeline stages each stage sends only its own layers, in parallel; the law
        # moves every layer over one rank's link, an overestimate when pp > 1.
        transfers = KVTransferEngine(prefill.law.model, prefill.parallel.attn_tp, decode.parallel.attn_tp,
                                     prefill.law.eff)
        cfg = self.scenario.cluster
        return PDFlow(engine, transfers, cfg.inter_node_link, cfg.decode.num_reserved_decode_tokens,
                      self.ledger, observer.on_reject)

    def _role(self, name: str) -> ServerRole | None:
        if name == "prefill":
            return PrefillRole(self.pd.on_kv_ready)
        if name == "decode":
            return DecodeRole(self.pd.on_preallocated, self.scenario.cluster.decode.num_reserved_decode_tokens)
        return None

    def _targets(self, replicas: list[list[Any]]) -> list[RouteTarget]:
        """Build one target per replica, or one per DP rank or copy when the router is DP-aware."""
        targets: list[RouteTarget] = []
        for replica in replicas:
            if self.scenario.cluster.dp_aware:
                for rank, member in enumerate(replica):
                    targets.append(RouteTarget(len(targets), member.worker_id, rank))
            else:
                targets.append(RouteTarget(len(targets), replica[0].worker_id, None))
        return targets

    def _place(self) -> dict[int, ServerPlacement]:
        """Pack replicas onto nodes in pool order; every scheduler of a replica shares its placement."""
        replicas = [(name, replica) for name in POOL_ORDER if name in self.pools
                    for replica in self.pools[name].replicas]
        placed = place_servers([(replica[0].worker_id, self.specs[name].gpu, self.specs[name].num_gpus)
                                for name, replica in replicas])
        return {member.worker_id: placed[replica[0].worker_id] for _, replica in replicas for member in replica}

    # ----- requests -----

    def resolve(self, target: RouteTarget) -> Any:
        """Return the scheduler a routed request goes to.

        A DP-aware target names its rank. Otherwise a replica with several DP
        ranks or copies picks one in turn, as SGLang's data-parallel
        controller does with its round_robin load balancing.
        """
        replica = self._replica_of[target.worker_id]
        if target.dp_rank is not None:
            return replica[target.dp_rank]
        if len(replica) == 1:
            return replica[0]
        turn = self._next_rank.get(target.worker_id, 0)
        self._next_rank[target.worker_id] = (turn + 1) % len(replica)
        return replica[turn]

    def dispatch(self, req: Request, now: float) -> None:
        """Send an arriving request down the aggregated or the P/D path."""
        if self._takes_pd_path():
            self.pd.admit(req, now)
            return
        pool = self.pools["aggregated"]
        target = pool.router.route(req, now)
        self.ledger.hold(req, pool.router, target)
        req.data_parallel_rank = target.dp_rank
        self.resolve(target).submit(req, now)

    def _takes_pd_path(self) -> bool:
        if self.pd is None:
            return False
        if "aggregated" not in self.pools:
            return True
        aggregated = len(self.pools["aggregated"].replicas)
        pd = len(self.pools["prefill"].replicas) + len(self.pools["decode"].replicas)
        return float(self._path_rng.random()) * (aggregated + pd) >= aggregated

    def on_request_done(self, req: Request) -> None:
        """Stop counting a finished or rejected request at every router."""
        self.ledger.release_all(req)

    @property
    def num_gpus(self) -> int:
        return sum(pool.spec.num_gpus * len(pool.replicas) for pool in self.pools.values())
