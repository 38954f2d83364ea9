"""Verification machinery: SLO checks, the rate search, the results store, executors and resumption."""

from __future__ import annotations

import pytest

from sglsim.errors import ConfigError
from sglsim.optimizer.executors import LocalExecutor, SerialExecutor, make_executor
from sglsim.optimizer.rate_search import SLOSpec, fixed_check, rate_search
from sglsim.optimizer.runner import SimulationRunner
from sglsim.optimizer.store import ResultStore, RunRecord, scenario_key


def record(ttft_p90: float, tpot_p90: float = 0.01, rejected: int = 0, rate: float = 1.0) -> RunRecord:
    """A run whose requests complete at `rate` req/s with the given p90 latencies."""
    stats = lambda v: {"mean": v, "p50": v, "p90": v, "p95": v, "p99": v, "max": v}  # noqa: E731
    return RunRecord(stats(ttft_p90), stats(tpot_p90), 100.0 * rate, rate, 8, 100, 100 - rejected, rejected, 10.0)


def drive(search, outcome):
    """Run a search generator, answering each requested rate with `outcome(rate)`; return (result, rates)."""
    rates = []
    request = next(search)
    while True:
        rates.append(request["rate"])
        try:
            request = search.send(outcome(request["rate"]))
        except StopIteration as stop:
            return stop.value, rates


def knee(capacity: float):
    """A server whose p90 TTFT stays at 0.2 s up to `capacity` req/s; above it, it saturates at capacity."""
    return lambda rate: record(0.2 if rate <= capacity else 5.0, rate=min(rate, capacity))


SLO = SLOSpec(ttft_s=0.5, tpot_s=0.05)


def test_slo_check_reports_first_miss():
    assert SLO.check(record(0.4)) == (True, "meets the SLOs")
    assert SLO.check(record(0.6)) == (False, "p90 TTFT 0.6 s > 0.5 s")
    assert SLO.check(record(0.4, tpot_p90=0.06)) == (False, "p90 TPOT 0.06 s > 0.05 s")
    assert SLO.check(record(0.1, rejected=3))[1] == "3 of 100 requests rejected"
    assert SLOSpec(ttft_s=0.5, ttft_percentile="p99").check(record(0.4))[0]
    with pytest.raises(ConfigError, match="invalid ttft_percentile 'p42'"):
        SLOSpec(ttft_s=0.5, ttft_percentile="p42")


def test_rate_search_good_prediction_takes_few_runs():
    # Capacity 10 req/s, predicted 9.5: 9.5 meets, 11.875 fails, then bisection to 5 %.
    result, rates = drive(rate_search(lambda r: {"rate": r}, SLO, 9.5), knee(10.0))
    assert rates[:2] == [9.5, 9.5 * 1.25]
    assert len(rates) <= 5
    assert 10.0 / 1.05 <= result.rate_req_s <= 10.0
    assert result.record.request_throughput_req_s == result.rate_req_s
    assert result.bracketed


def test_rate_search_overestimate_uses_capacity():
    # Predicted 100 with capacity 3: the overloaded run completes 3 req/s, so the next try is 3 (met);
    # then the bracket [3, 100] narrows from below: 4.6875 fails, and bisection ends near 3.
    result, rates = drive(rate_search(lambda r: {"rate": r}, SLO, 100.0), knee(3.0))
    assert rates[:3] == [100.0, 3.0, 3.0 * 1.5625]
    assert result.rate_req_s == 3.0
    assert len(rates) <= 7


def test_rate_search_slo_miss_without_overload():
    # TTFT fails above 4 req/s but the server keeps up (throughput = rate): plain geometric descent.
    outcome = lambda r: record(0.2 if r <= 4.0 else 0.9, rate=r)  # noqa: E731
    result, rates = drive(rate_search(lambda r: {"rate": r}, SLO, 10.0), outcome)
    assert rates[:3] == [10.0, 8.0, 8.0 / 1.5625]
    assert 4.0 / 1.05 <= result.rate_req_s <= 4.0
    assert len(rates) <= 9


def test_rate_search_never_met_gives_zero():
    result, rates = drive(rate_search(lambda r: {"rate": r}, SLO, 1.0), lambda r: record(9.0, rate=r))
    assert result.rate_req_s == 0.0 and result.record is None
    assert result.failed_record is not None
    assert rates[-1] <= 1.0 / 1000


def test_fixed_check_single_run():
    result, _ = drive(fixed_check({"rate": 4.0}, SLO), lambda r: record(0.3, rate=r))
    assert result.rate_req_s == 4.0 and len(result.runs) == 1


def test_bad_start_rate_is_rejected():
    with pytest.raises(ConfigError, match="invalid start rate 0"):
        next(rate_search(lambda r: {"rate": r}, SLO, 0))


# ----- real simulations through the runner -----

def tiny_scenario(rate: float, replicas: int = 1) -> dict:
    return {"model": "llama-3.1-8b", "gpu": "h100", "cluster": {"replicas": replicas},
            "workload": {"num_requests": 40, "rate": rate, "input_len": 512, "output_len": 32, "seed": 1}}


def tiny_searches(replica_counts=(1, 2)):
    return {n: rate_search(lambda r, n=n: tiny_scenario(r, n), SLOSpec(ttft_s=0.05), 20.0, 0.2)
            for n in replica_counts}


def test_resumed_sweep_does_not_redo_runs(tmp_path):
    path = tmp_path / "runs.sqlite"
    # An interrupted sweep: only the one-replica search finished before the stop.
    first = SimulationRunner(SerialExecutor(), ResultStore(path))
    partial = first.run(tiny_searches((1,)))
    done = first.simulated
    assert done == len(partial[1].runs) and done > 0
    first.store.close()
    # The resumed sweep replays the finished runs from disk and simulates only the new search.
    resumed = SimulationRunner(SerialExecutor(), ResultStore(path))
    full = resumed.run(tiny_searches((1, 2)))
    assert resumed.store.hits == done
    assert resumed.simulated == len(full[2].runs)
    assert full[1].rate_req_s == partial[1].rate_req_s
    # A third pass simulates nothing at all.
    again = SimulationRunner(SerialExecutor(), ResultStore(path))
    again.run(tiny_searches((1, 2)))
    assert again.simulated == 0
    assert len(again.store) == done + resumed.simulated


def test_store_key_depends_on_scenario():
    assert scenario_key(tiny_scenario(1.0)) == scenario_key(tiny_scenario(1.0))
    assert scenario_key(tiny_scenario(1.0)) != scenario_key(tiny_scenario(1.5))


def test_process_pool_matches_serial():
    serial = SimulationRunner(SerialExecutor()).run(tiny_searches())
    pool = LocalExecutor(workers=2)
    try:
        parallel = SimulationRunner(pool).run(tiny_searches())
    finally:
        pool.shutdown()
    for n in (1, 2):
        assert parallel[n].rate_req_s == serial[n].rate_req_s
        assert parallel[n].record == serial[n].record


def test_ray_executor_matches_serial():
    pytest.importorskip("ray")
    serial = SimulationRunner(SerialExecutor()).run(tiny_searches((1,)))
    executor = make_executor("ray", workers=2)
    try:
        remote = SimulationRunner(executor).run(tiny_searches((1,)))
    finally:
        executor.shutdown()
    assert remote[1].rate_req_s == serial[1].rate_req_s
    assert remote[1].record == serial[1].record


def test_unknown_executor_is_rejected():
    with pytest.raises(ConfigError, match="unknown executor 'slurm'"):
        make_executor("slurm")
