"""Executors of verification simulations: this process, a local process pool, or a Ray cluster.

Every executor has `submit(fn, *args) -> concurrent.futures.Future` and
`shutdown()`. The driver waits on the futures and writes each finished run
to the results store itself, so a store on local disk works with remote
Ray workers too.

- `serial`: runs each task at submission (no parallelism; tests and one-core machines).
- `local`: a `ProcessPoolExecutor` (default: one worker per CPU core).
- `ray`: Ray tasks (`pip install 'sglsim[ray]'`); with no address it starts a
  local Ray instance, with `address` it joins a running cluster (`ray start --head`).
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, Callable

from ..errors import ConfigError, unknown

from .choices import EXECUTORS


class SerialExecutor:
    """Runs each task in this process when it is submitted."""

    name = "serial"
    workers = 1

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args))
        except Exception as err:  # noqa: BLE001 - handed to the caller through the future
            future.set_exception(err)
        return future

    def shutdown(self) -> None:
        pass


class LocalExecutor:
    """A pool of worker processes on this machine (spawned, so no parent state leaks into a run)."""

    name = "local"

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers or os.cpu_count() or 1
        self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"))

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        return self._pool.submit(fn, *args)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class RayExecutor:
    """Ray tasks, on a local Ray instance or a cluster given by `address`."""

    name = "ray"

    def __init__(self, workers: int | None = None, address: str | None = None) -> None:
        try:
            import ray
        except ImportError:
            raise ConfigError("invalid executor ray: ray is not installed; install it with "
                              "pip install 'sglsim[ray]'") from None
        self._ray = ray
        self._started = not ray.is_initialized()
        if self._started:
            options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            if address is not None:
                options["address"] = address
            elif workers is not None:
                options["num_cpus"] = workers
            ray.init(**options)
        self.workers = int(ray.cluster_resources().get("CPU", 1))
        self._remote_fns: dict[Callable[..., Any], Any] = {}

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        remote = self._remote_fns.get(fn)
        if remote is None:
            remote = self._ray.remote(num_cpus=1)(fn)
            self._remote_fns[fn] = remote
        return remote.remote(*args).future()

    def shutdown(self) -> None:
        if self._started:
            self._ray.shutdown()


def make_executor(name: str = "local", workers: int | None = None, address: str | None = None) -> Any:
    """Build an executor by name: serial, local (process pool) or ray."""
    if workers is not None and workers < 1:
        raise ConfigError(f"invalid workers {workers}: expected at least 1")
    if name == "serial":
        return SerialExecutor()
    if name == "local":
        return SerialExecutor() if workers == 1 else LocalExecutor(workers)
    if name == "ray":
        return RayExecutor(workers, address)
    raise unknown("executor", name, EXECUTORS)
