"""The results store: every finished simulation of a sweep, keyed by its scenario, in SQLite.

A run's key is the SHA-256 of its scenario's canonical JSON plus the sglsim
version, so a resumed sweep finds each finished run and never simulates it
again, and a run of another sglsim version is never mistaken for a cached
one. Each record is committed as soon as it arrives (an interrupted sweep
keeps everything that finished). Without a path the store lives in memory.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ..errors import ConfigError

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    key TEXT PRIMARY KEY,
    scenario TEXT NOT NULL,
    record TEXT NOT NULL
)
"""


@dataclass
class RunRecord:
    """The figures of one finished simulation that verification reads.

    Latency statistics are dicts with mean, p50, p90, p95, p99 and max
    (seconds; None when no request contributed). `workload` holds the
    frozen workload parameters measured in this run.
    """

    ttft_s: dict[str, float | None]
    tpot_s: dict[str, float | None]
    output_throughput_tok_s: float
    request_throughput_req_s: float
    num_gpus: int
    num_requests: int
    num_completed: int
    num_rejected: int
    duration_s: float
    workload: dict[str, float] = field(default_factory=dict)

    @property
    def output_tok_s_per_gpu(self) -> float:
        return self.output_throughput_tok_s / self.num_gpus

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "RunRecord":
        return cls(**data)


def scenario_key(scenario: Mapping[str, Any]) -> str:
    """Stable key of a scenario dict (canonical JSON + sglsim version)."""
    from .. import __version__

    text = json.dumps(scenario, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{__version__}\n{text}".encode()).hexdigest()


class ResultStore:
    """Finished runs by scenario key; SQLite on disk when `path` is given, else a dict in memory."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self._memory: dict[str, RunRecord] = {}
        self._db: sqlite3.Connection | None = None
        self.hits = 0
        """Lookups answered from the store (runs a resumed sweep did not redo)."""
        if self.path is not None:
            try:
                self._db = sqlite3.connect(str(self.path), timeout=30.0)
                self._db.execute(SCHEMA)
                self._db.commit()
            except sqlite3.DatabaseError as err:
                raise ConfigError(f"invalid results store {self.path}: {err}") from None

    def get(self, key: str) -> RunRecord | None:
        if self._db is None:
            record = self._memory.get(key)
        else:
            row = self._db.execute("SELECT record FROM runs WHERE key = ?", (key,)).fetchone()
            record = RunRecord.from_dict(json.loads(row[0])) if row else None
        if record is not None:
            self.hits += 1
        return record

    def put(self, key: str, scenario: Mapping[str, Any], record: RunRecord) -> None:
        """Store one finished run and commit at once."""
        if self._db is None:
            self._memory[key] = record
            return
        self._db.execute("INSERT OR REPLACE INTO runs (key, scenario, record) VALUES (?, ?, ?)",
                         (key, json.dumps(scenario, sort_keys=True, default=str), json.dumps(record.to_dict())))
        self._db.commit()

    def __len__(self) -> int:
        if self._db is None:
            return len(self._memory)
        return int(self._db.execute("SELECT COUNT(*) FROM runs").fetchone()[0])

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
