"""Drive many simulation searches at once through an executor, storing every run as it finishes.

A *search* is a generator that yields scenario dicts to simulate and is
sent back each run's `RunRecord`. Its return value is its result. A rate
search yields one rate after another, and a fixed-rate check yields once.
`SimulationRunner.run` advances all searches together: each request is
answered from the results store when it is there, else submitted to the
executor; as runs finish (in any order) they are stored, committed, and
sent to their search. The searches are deterministic given their records,
so a resumed sweep replays finished runs from the store and simulates only
the rest.
"""

from __future__ import annotations

from concurrent.futures import FIRST_COMPLETED, Future, wait
from typing import Any, Callable, Generator, Hashable, Mapping

from .executors import SerialExecutor
from .measure import simulate_record
from .store import ResultStore, RunRecord, scenario_key

Search = Generator[dict, RunRecord, Any]
ProgressFn = Callable[[int, int], None]
"""Called with (runs finished, runs requested so far), cached runs included."""


class SimulationRunner:
    """Runs searches' simulations on an executor, with a results store in front of it."""

    def __init__(self, executor: Any = None, store: ResultStore | None = None,
                 progress: ProgressFn | None = None) -> None:
        self.executor = executor if executor is not None else SerialExecutor()
        self.store = store if store is not None else ResultStore()
        self.progress = progress
        self.simulated = 0
        """Runs simulated by this runner (not read from the store)."""
        self.requested = 0
        self.finished = 0

    def run(self, searches: Mapping[Hashable, Search]) -> dict[Hashable, Any]:
        """Advance every search to completion; return each one's result by its key."""
        results: dict[Hashable, Any] = {}
        pending: dict[Future, tuple[Hashable, str, dict]] = {}

        def advance(name: Hashable, search: Search, record: RunRecord | None) -> None:
            # Feed records until the search requests a run that is not in the store, or finishes.
            while True:
                try:
                    scenario = next(search) if record is None else search.send(record)
                except StopIteration as stop:
                    results[name] = stop.value
                    return
                self.requested += 1
                key = scenario_key(scenario)
                record = self.store.get(key)
                if record is None:
                    pending[self.executor.submit(simulate_record, scenario)] = (name, key, scenario)
                    return
                self._tick()

        for name, search in searches.items():
            advance(name, search, None)
        while pending:
            done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
            for future in done:
                name, key, scenario = pending.pop(future)
                record = RunRecord.from_dict(future.result())
                self.store.put(key, scenario, record)
                self.simulated += 1
                self._tick()
                advance(name, searches[name], record)
        return results

    def _tick(self) -> None:
        self.finished += 1
        if self.progress is not None:
            self.progress(self.finished, self.requested)
