"""Concurrency-limited load: a rate gated by a concurrency cap, and a ramp of the cap.

The driver is checked alone with a recording sink (exact send times), then
inside whole simulations (the cap holds, FIFO order, TTFT starts at the slot).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sglsim.config.scenario import WorkloadConfig, validate_scenario
from sglsim.errors import ConfigError
from sglsim.serving.request import Request
from sglsim.simulation import simulate
from sglsim.workload.arrivals import arrival_times
from sglsim.workload.builder import build_driver
from sglsim.workload.drivers import ClosedLoopDriver, ramp_open_times


class Sink:
    """Records what a driver schedules: (send time, request id, client id)."""

    def __init__(self) -> None:
        self.sent: list[tuple[float, int, int]] = []
        self.requests: dict[int, Request] = {}

    def schedule_arrival(self, time: float, req: Request) -> None:
        self.sent.append((time, req.rid, req.client_id))
        self.requests[req.rid] = req


def _driver(concurrency: int, n: int, **kwargs) -> tuple[ClosedLoopDriver, Sink]:
    lengths = np.full(n, 10)
    driver, sink = ClosedLoopDriver(concurrency, lengths, lengths, **kwargs), Sink()
    driver.start(sink)
    return driver, sink


def test_rate_gated_by_two_slots():
    # Five requests issued at 0, 0.1, 5, 5.1 and 5.2 s behind two slots
    driver, sink = _driver(2, 5, ready_s=np.array([0.0, 0.1, 5.0, 5.1, 5.2]))
    # both slots are free: the first two go out when issued
    assert sink.sent == [(0.0, 0, 0), (0.1, 1, 1)]
    # request 0 ends at 1.0: its slot waits idle for request 2, issued at 5.0
    driver.on_done(sink.requests[0], 1.0)
    assert sink.sent[-1] == (5.0, 2, 0)
    # request 1 ends at 1.2: request 3 takes that slot when issued at 5.1
    driver.on_done(sink.requests[1], 1.2)
    assert sink.sent[-1] == (5.1, 3, 1)
    # request 2 ends at 6.0, after request 4 was issued (5.2): request 4 waited 0.8 s for it
    driver.on_done(sink.requests[2], 6.0)
    assert sink.sent[-1] == (6.0, 4, 0)
    assert sink.requests[4].arrived_at == 6.0
    # nothing is left to send
    driver.on_done(sink.requests[3], 7.0)
    assert len(sink.sent) == 5


def test_plain_closed_loop_reuses_slots():
    driver, sink = _driver(2, 3)
    # every request is ready at t = 0: two go out at once, the third when a slot frees
    assert sink.sent == [(0.0, 0, 0), (0.0, 1, 1)]
    driver.on_done(sink.requests[1], 2.5)
    assert sink.sent[-1] == (2.5, 2, 1)


def test_ramp_open_times():
    # one slot at t = 0, one more every 0.5 s, all five open at 2 s
    assert ramp_open_times(5, 2.0).tolist() == [0.0, 0.5, 1.0, 1.5, 2.0]
    assert ramp_open_times(1, 3.0).tolist() == [0.0]
    assert ramp_open_times(2, 0.0).tolist() == [0.0, 0.0]


def test_ramp_opens_slots_one_by_one():
    driver, sink = _driver(3, 5, slot_open_s=ramp_open_times(3, 1.0))
    # slot k sends its first request when it opens: 0, 0.5 and 1.0 s
    assert sink.sent == [(0.0, 0, 0), (0.5, 1, 1), (1.0, 2, 2)]
    # slot 0 finishes before the ramp ends and sends the next request at once
    driver.on_done(sink.requests[0], 0.3)
    assert sink.sent[-1] == (0.3, 3, 0)


def test_builder_gates_rate_with_concurrency():
    wl = WorkloadConfig(concurrency=4, rate=20.0, arrival="poisson", num_requests=50, input_len=100,
                        output_len=10, seed=7)
    driver, _ = build_driver(wl)
    assert isinstance(driver, ClosedLoopDriver)
    # fixed lengths draw nothing, so the issue times are the seed's first Poisson draws
    expected = arrival_times("poisson", 20.0, 50, np.random.default_rng(7), 1.0)
    assert np.array_equal(driver.ready_s, expected)
    assert driver.ready_s[0] == 0.0
    again, _ = build_driver(wl)
    assert np.array_equal(again.ready_s, driver.ready_s)
    assert driver.slot_open_s is None


def test_builder_ramp_without_rate():
    driver, _ = build_driver(WorkloadConfig(concurrency=3, concurrency_ramp_s=4.0, num_requests=9))
    assert driver.ready_s is None
    assert driver.slot_open_s.tolist() == [0.0, 2.0, 4.0]


@pytest.mark.parametrize("fields, message", [
    ({"concurrency_ramp_s": 5.0}, "a concurrency ramp needs workload.concurrency"),
    ({"concurrency_ramp_s": 5.0, "concurrency": 4, "rate": 2.0}, "drop workload.rate"),
])
def test_ramp_rejects_bad_combinations(fields, message):
    with pytest.raises(ConfigError, match=message):
        validate_scenario({"workload": {"num_requests": 10, **fields}})


def test_gated_simulation_times_ttft_from_the_slot():
    # One slot, requests issued every 10 ms: each waits for the one before it. The server
    # gets them back to back, so no request ever queues at the server.
    base = {"model": "llama-3.1-8b", "gpu": "h100",
            "workload": {"num_requests": 4, "input_len": 256, "output_len": 64, "concurrency": 1,
                         "rate": 100.0, "arrival": "constant"}}
    result = simulate(base)
    cols = result.requests
    order = np.argsort(cols["rid"])
    arrived, finished = cols["arrived_at"][order], cols["finished_at"][order]
    # request 0 is issued at 0; each later one is issued before its predecessor ends
    assert arrived[0] == 0.0
    assert np.all(arrived[1:] == finished[:-1])
    # so every request meets an idle server: all four TTFTs are one 256-token prefill
    assert np.allclose(cols["ttft_s"], cols["ttft_s"][0], rtol=1e-12, atol=0)
    # with a slow rate the cap never binds and requests arrive when issued (every 10 s)
    slow = simulate({**base, "workload": {**base["workload"], "rate": 0.1}})
    slow_arrived = np.sort(slow.requests["arrived_at"])
    assert slow_arrived.tolist() == pytest.approx([0.0, 10.0, 20.0, 30.0], abs=1e-9)


@settings(max_examples=15, deadline=None)
@given(concurrency=st.integers(1, 6), rate=st.floats(1.0, 400.0), seed=st.integers(0, 1000),
       ramp=st.sampled_from([None, 0.05]))
def test_cap_holds_and_order_is_fifo(concurrency, rate, seed, ramp):
    workload = {"num_requests": 25, "concurrency": concurrency, "seed": seed,
                "input_len": {"dist": "uniform", "min": 20, "max": 400},
                "output_len": {"dist": "uniform", "min": 2, "max": 40}}
    workload.update({"concurrency_ramp_s": ramp} if ramp else {"rate": rate})
    result = simulate({"model": "llama-3.1-8b", "gpu": "h100", "workload": workload, "check_invariants": True})
    cols = result.requests
    order = np.argsort(cols["rid"])
    arrived, finished = cols["arrived_at"][order], cols["finished_at"][order]
    # never more than `concurrency` requests in flight at any arrival
    for t in arrived:
        in_flight = np.sum((arrived <= t) & (finished > t))
        assert in_flight <= concurrency
    if ramp:
        # every request is ready at t = 0; slot k sends its first one, request k, when it opens
        assert arrived[:concurrency].tolist() == ramp_open_times(concurrency, ramp).tolist()
        return
    # FIFO: requests reach the server in the order they were issued, never before
    assert np.all(np.diff(arrived) >= 0)
    issued = arrival_times("poisson", rate, 25, _rng_after_lengths(seed), 1.0)
    assert np.all(arrived >= issued)


def _rng_after_lengths(seed: int) -> np.random.Generator:
    """The workload's generator after it drew the 25 input and output lengths."""
    rng = np.random.default_rng(seed)
    rng.integers(20, 401, size=25)
    rng.integers(2, 41, size=25)
    return rng


def test_trace_rows_gated_by_rate_and_cap(tmp_path):
    # A trace's own timestamps give way to the rate; its lengths and prompts stay
    path = tmp_path / "t.jsonl"
    rows = [f'{{"timestamp": {1000 * i}, "input_length": {100 + i}, "output_length": 5, "hash_ids": [{i}]}}'
            for i in range(6)]
    path.write_text("\n".join(rows) + "\n")
    wl = WorkloadConfig(trace=str(path), concurrency=2, rate=4.0, arrival="constant")
    driver, trace = build_driver(wl)
    assert isinstance(driver, ClosedLoopDriver)
    assert driver.ready_s.tolist() == [0.0, 0.25, 0.5, 0.75, 1.0, 1.25]
    assert driver.input_len.tolist() == [100, 101, 102, 103, 104, 105]
    sink = Sink()
    driver.start(sink)
    # two slots: requests 0 and 1 go out when issued, each with its trace prompt
    assert sink.sent == [(0.0, 0, 0), (0.25, 1, 1)]
    assert sink.requests[1].prompt is not None
