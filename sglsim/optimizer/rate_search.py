"""SLO checks of a simulated run, and the search for the highest request rate that still meets them.

The rate search brackets, then bisects on the logarithm of the rate:

1. simulate at the predicted rate r0;
2. while the last run met the SLOs, multiply the rate by g (else divide),
   with g = 1.25 growing by a factor 1.25 after each step in the same
   direction (1.25, 1.56, 1.95, ...), until one run meets and one fails; a
   failed run also caps the next rate at the request throughput it
   achieved, which is about the capacity when the run was overloaded;
3. bisect geometrically (sqrt(lo x hi), but at most lo x 1.5625 so that a
   wide bracket is narrowed from the side that met) until
   hi / lo <= 1 + tolerance.

A good prediction brackets in two runs and 5 % needs three more. A
candidate that fails even at r0 / `MAX_DROP` cannot meet the SLOs at any
load worth serving and gets goodput 0; one that still meets them at r0 x
`MAX_RISE` is reported at that rate, flagged as not bracketed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Generator

from ..errors import ConfigError
from .store import RunRecord

PERCENTILES = ("mean", "p50", "p90", "p95", "p99", "max")
FIRST_STEP = 1.25
MAX_DROP = 1000.0
MAX_RISE = 1000.0


@dataclass(frozen=True)
class SLOSpec:
    """Latency targets checked on a simulated run; None disables a target.

    By default the 90th percentiles of TTFT and TPOT must not exceed the
    targets, and every request must complete (a rejected request fails the run).
    """

    ttft_s: float | None = None
    tpot_s: float | None = None
    ttft_percentile: str = "p90"
    tpot_percentile: str = "p90"

    def __post_init__(self) -> None:
        for name in ("ttft_percentile", "tpot_percentile"):
            if getattr(self, name) not in PERCENTILES:
                raise ConfigError(f"invalid {name} {getattr(self, name)!r}: choose one of {', '.join(PERCENTILES)}")
        for name in ("ttft_s", "tpot_s"):
            value = getattr(self, name)
            if value is not None and not 0 < value < math.inf:
                raise ConfigError(f"invalid {name} {value!r}: expected a positive, finite number of seconds")

    def check(self, record: RunRecord) -> tuple[bool, str]:
        """(met, reason): the reason names the first target missed, with the simulated value."""
        if record.num_rejected:
            return False, f"{record.num_rejected} of {record.num_requests} requests rejected"
        for label, target, stats, pct in (("TTFT", self.ttft_s, record.ttft_s, self.ttft_percentile),
                                          ("TPOT", self.tpot_s, record.tpot_s, self.tpot_percentile)):
            if target is None:
                continue
            value = stats.get(pct)
            if value is not None and value > target:
                return False, f"{pct} {label} {value:.4g} s > {target:g} s"
        return True, "meets the SLOs"


@dataclass
class RateRun:
    rate_req_s: float
    met: bool
    reason: str


@dataclass
class RateSearchResult:
    """The highest rate found to meet the SLOs (0 if none), its run, and every run made."""

    rate_req_s: float
    record: RunRecord | None
    runs: list[RateRun] = field(default_factory=list)
    bracketed: bool = True
    """False when the search stopped at its rise limit with the SLOs still met."""
    failed_record: RunRecord | None = None
    """The run at the lowest rate tried when no rate met the SLOs."""


def rate_search(scenario_at: Callable[[float], dict], slo: SLOSpec, start_rate_req_s: float,
                tolerance: float = 0.05) -> Generator[dict, RunRecord, RateSearchResult]:
    """Find the highest rate (req/s) at which `scenario_at(rate)` meets `slo`, to a relative `tolerance`."""
    if not (start_rate_req_s > 0 and math.isfinite(start_rate_req_s)):
        raise ConfigError(f"invalid start rate {start_rate_req_s!r}: expected a positive number of requests/s")
    if not tolerance > 0:
        raise ConfigError(f"invalid rate tolerance {tolerance!r}: expected a positive fraction (0.05 = 5 %)")
    runs: list[RateRun] = []
    records: dict[float, RunRecord] = {}

    def probe(rate: float) -> Generator[dict, RunRecord, bool]:
        record = yield scenario_at(rate)
        met, reason = slo.check(record)
        runs.append(RateRun(rate, met, reason))
        records[rate] = record
        return met

    rate, step = start_rate_req_s, FIRST_STEP
    low = high = 0.0
    direction = 0
    while True:
        if (yield from probe(rate)):
            low = rate
            if high:
                break
            if rate >= start_rate_req_s * MAX_RISE:
                return RateSearchResult(rate, records[rate], runs, bracketed=False)
            step = step * FIRST_STEP if direction > 0 else FIRST_STEP
            direction = 1
            rate *= step
        else:
            high = rate
            if low:
                break
            if rate <= start_rate_req_s / MAX_DROP:
                return RateSearchResult(0.0, None, runs, failed_record=records[rate])
            step = step * FIRST_STEP if direction < 0 else FIRST_STEP
            direction = -1
            # An overloaded run completes requests at about the capacity: no rate above it can meet the SLOs.
            rate = min(rate / step, records[rate].request_throughput_req_s or rate)
    while high / low > 1.0 + tolerance:
        middle = min(math.sqrt(low * high), low * FIRST_STEP * FIRST_STEP)
        if (yield from probe(middle)):
            low = middle
        else:
            high = middle
    return RateSearchResult(low, records[low], runs)


def fixed_check(scenario: dict, slo: SLOSpec) -> Generator[dict, RunRecord, RateSearchResult]:
    """Run once at the workload's own arrival process; goodput is its request rate if the SLOs hold."""
    record = yield scenario
    met, reason = slo.check(record)
    rate = record.request_throughput_req_s
    result = RateSearchResult(rate if met else 0.0, record if met else None, [RateRun(rate, met, reason)])
    if not met:
        result.failed_record = record
    return result


def search_record(result: RateSearchResult) -> RunRecord | None:
    """Return the run to report for a search: at the goodput rate, else the failed one."""
    return result.record if result.record is not None else result.failed_record


def describe(result: RateSearchResult) -> dict[str, Any]:
    return {"goodput_rate_req_s": result.rate_req_s, "bracketed": result.bracketed,
            "runs": [{"rate_req_s": r.rate_req_s, "met": r.met, "reason": r.reason} for r in result.runs]}
