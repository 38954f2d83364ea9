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

import numpy as np

from ..config.scenario import Scenario
from ..costs.efficiency import Efficiency
from ..engine.events import EventQueue
from ..hardware.links import place_servers
from ..routing.base import CacheAwareConfig, PoolRouter, RouteTarget, build_router
from ..serving.disagg import DecodeRole, PrefillRole
from ..serving.request import Request
from ..serving.server_spec import ServerSpec, build_server_spec
from ..serving.worker import ServerRole, Worker, WorkerObserver
from .pd_flow import PDFlow
from .transfer import KVTransferEngine

POOL_ORDER = ("prefill", "decode", "aggregated")


@dataclass
class Pool:
    """Identical servers behind one router."""

    name: str
    spec: ServerSpec
    workers: list[Worker]
    router: PoolRouter


def build_pool_specs(scenario: Scenario, efficiency: Efficiency) -> dict[str, ServerSpec]:
    """Resolve each pool's server: the P/D pools get their disaggregation mode.

    A decode server runs without a radix cache, SGLang's default unless
    `--disaggregation-decode-enable-radix-cache` is given.
    """
    cluster = scenario.cluster
    specs: dict[str, ServerSpec] = {}
    if cluster.has_pd:
        for name in ("prefill", "decode"):
            spec = build_server_spec(scenario.model, scenario.pool_gpu(name), scenario.pool_server_args(name),
                                     efficiency)
            sched = replace(spec.scheduler, disaggregation_mode=name,
                            disable_radix_cache=spec.scheduler.disable_radix_cache or name == "decode")
            specs[name] = replace(spec, scheduler=sched)
    if cluster.num_replicas:
        specs["aggregated"] = build_server_spec(scenario.model, scenario.gpu, scenario.server, efficiency)
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

    def __init__(self, scenario: Scenario, engine: EventQueue, observer: WorkerObserver,
                 efficiency: Efficiency) -> None:
        cfg = scenario.cluster
        self.scenario = scenario
        self.specs = build_pool_specs(scenario, efficiency)
        self.ledger = _Ledger()
        seeds = np.random.SeedSequence(cfg.seed).spawn(1 + len(POOL_ORDER))
        self._path_rng = np.random.default_rng(seeds[0])
        self.workers: dict[int, Worker] = {}
        self.pools: dict[str, Pool] = {}
        self.pd = self._build_flow(engine, observer) if cfg.has_pd else None
        for index, name in enumerate(POOL_ORDER):
            if name in self.specs:
                self._build_pool(name, engine, observer, np.random.default_rng(seeds[1 + index]))
        self.placements = place_servers([(w.worker_id, self.specs[w.pool].gpu, self.specs[w.pool].num_gpus)
                                         for w in self.workers.values()])
        if self.pd is not None:
            pd_workers = {w.worker_id: w for name in ("prefill", "decode") for w in self.pools[name].workers}
            self.pd.attach(self.pools["prefill"].router, self.pools["decode"].router, pd_workers, self.placements)

    # ----- construction -----

    def _build_pool(self, name: str, engine: EventQueue, observer: WorkerObserver,
                    rng: np.random.Generator) -> None:
        cfg = self.scenario.cluster
        spec = self.specs[name]
        pool_cfg = getattr(cfg, name) if name != "aggregated" else None
        count = pool_cfg.workers if pool_cfg is not None else cfg.num_replicas
        workers = []
        cost = spec.cost_model()
        for _ in range(count):
            worker = Worker(len(self.workers), spec.scheduler, cost, engine, observer, name, self._role(name))
            self.workers[worker.worker_id] = worker
            workers.append(worker)
        policy = (pool_cfg.policy if pool_cfg is not None else None) or cfg.router
        router = build_router(policy, self._targets(workers), CacheAwareConfig(**cfg.cache_aware.model_dump()), rng)
        self.pools[name] = Pool(name, spec, workers, router)

    def _build_flow(self, engine: EventQueue, observer: WorkerObserver) -> PDFlow:
        prefill, decode = self.specs["prefill"], self.specs["decode"]
        transfers = KVTransferEngine(prefill.law.model, prefill.num_gpus, decode.num_gpus, prefill.law.eff)
        cfg = self.scenario.cluster
        return PDFlow(engine, transfers, cfg.inter_node_link, cfg.decode.num_reserved_decode_tokens,
                      self.ledger, observer.on_reject)

    def _role(self, name: str) -> ServerRole | None:
        if name == "prefill":
            return PrefillRole(self.pd.on_kv_ready)
        if name == "decode":
            return DecodeRole(self.pd.on_preallocated, self.scenario.cluster.decode.num_reserved_decode_tokens)
        return None

    def _targets(self, workers: list[Worker]) -> list[RouteTarget]:
        """Build one target per server, or one per DP rank when the router is DP-aware."""
        targets: list[RouteTarget] = []
        for worker in workers:
            if self.scenario.cluster.dp_aware:
                for rank in range(worker.num_dp_ranks):
                    targets.append(RouteTarget(len(targets), worker.worker_id, rank))
            else:
                targets.append(RouteTarget(len(targets), worker.worker_id, None))
        return targets

    # ----- requests -----

    def dispatch(self, req: Request, now: float) -> None:
        """Send an arriving request down the aggregated or the P/D path."""
        if self._takes_pd_path():
            self.pd.admit(req, now)
            return
        pool = self.pools["aggregated"]
        target = pool.router.route(req, now)
        self.ledger.hold(req, pool.router, target)
        req.data_parallel_rank = target.dp_rank
        self.workers[target.worker_id].submit(req, now)

    def _takes_pd_path(self) -> bool:
        if self.pd is None:
            return False
        if "aggregated" not in self.pools:
            return True
        aggregated = len(self.pools["aggregated"].workers)
        pd = len(self.pools["prefill"].workers) + len(self.pools["decode"].workers)
        return float(self._path_rng.random()) * (aggregated + pd) >= aggregated

    def on_request_done(self, req: Request) -> None:
        """Stop counting a finished or rejected request at every router."""
        self.ledger.release_all(req)

    @property
    def num_gpus(self) -> int:
        return sum(pool.spec.num_gpus * len(pool.workers) for pool in self.pools.values())
