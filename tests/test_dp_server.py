"""The DP-attention server: lock-step steps of per-rank schedulers, narrated with exact times."""

from __future__ import annotations

import pytest

from sglsim.config.scenario import ServerArgs
from sglsim.engine.events import PRIORITY_ARRIVAL, EventQueue
from sglsim.serving.dp_server import DPAttentionServer
from sglsim.serving.request import Request
from sglsim.serving.server_spec import build_efficiency, build_server_spec, build_servers
from sglsim.simulation import simulate


class Recorder:
    """A worker observer that keeps first-token and finish times by request id."""

    def __init__(self) -> None:
        self.first_token: dict[int, float] = {}
        self.finished: dict[int, float] = {}
        self.extend_steps: list[tuple[int, float, float]] = []
        self.boundaries: list[tuple[int, float]] = []

    def on_first_token(self, req, now):
        self.first_token[req.rid] = now

    def on_finish(self, req, now):
        self.finished[req.rid] = now

    def on_reject(self, req, now, reason):
        raise AssertionError(f"unexpected reject of {req.rid}: {reason}")

    def on_extend_step(self, worker, batch, start, duration):
        self.extend_steps.append((worker.worker_id, start, duration))

    def on_decode_span(self, worker, span, steps, batch_size, start, fresh_token_times):
        pass

    def on_retract(self, worker, reqs, now):
        pass

    def on_step_boundary(self, worker, now):
        worker.scheduler.check_invariants()
        self.boundaries.append((worker.worker_id, now))


def _server(**args):
    spec = build_server_spec("qwen3-30b-a3b", "h100", ServerArgs(tp=2, dp=2, enable_dp_attention=True, **args),
                             build_efficiency({}))
    engine, recorder = EventQueue(), Recorder()
    servers, ranks = build_servers(spec, 1, engine, recorder)
    return spec, engine, recorder, servers[0], ranks


def _arrive(engine, rank, req, time=0.0):
    engine.push(time, PRIORITY_ARRIVAL, lambda now, r: rank.submit(r, now), req)


def _dp(cost, shapes):
    cost.link_dp_shapes(shapes)
    return cost.dp_step_time(shapes)


def test_two_ranks_prefill_then_decode_in_lock_step():
    spec, engine, rec, server, (r0, r1) = _server()
    cost = spec.cost_model()
    assert isinstance(server, DPAttentionServer)
    # A (100 in, 3 out) reaches rank 0 and B (50 in, 2 out) rank 1, both at t = 0
    _arrive(engine, r0, Request(1, 0.0, 100, 3))
    _arrive(engine, r1, Request(2, 0.0, 50, 2))
    engine.run()
    # step 1: both ranks prefill in one lock-step forward; its length is the slower rank's
    d1 = _dp(cost, [cost.extend_shape([(None, 0, 100)]), cost.extend_shape([(None, 0, 50)])])
    assert rec.first_token[1] == d1
    assert rec.first_token[2] == d1
    # step 2: both decode once (contexts 100 and 50); B has its 2 tokens
    d2 = _dp(cost, [cost.decode_shape(1, 100), cost.decode_shape(1, 50)])
    assert rec.finished[2] == pytest.approx(d1 + d2, rel=1e-15)
    # step 3: rank 1 is idle but still steps with rank 0, whose A gets its third token
    d3 = _dp(cost, [cost.decode_shape(1, 101), cost.idle_shape()])
    assert rec.finished[1] == pytest.approx(d1 + d2 + d3, rel=1e-15)
    # every step ends on both ranks at once
    times = {}
    for worker_id, now in rec.boundaries:
        times.setdefault(now, set()).add(worker_id)
    assert all(ids == {r0.worker_id, r1.worker_id} for ids in times.values())


def test_arrival_on_idle_rank_cuts_the_decode_span():
    spec, engine, rec, server, (r0, r1) = _server()
    cost = spec.cost_model()
    # A decodes 200 tokens alone on rank 0; C reaches the idle rank 1 during that span
    _arrive(engine, r0, Request(1, 0.0, 64, 200))
    d_prefill = _dp(cost, [cost.extend_shape([(None, 0, 64)]), cost.idle_shape()])
    step = _dp(cost, [cost.decode_shape(1, 64), cost.idle_shape()])
    arrival = d_prefill + 10.5 * step
    _arrive(engine, r1, Request(2, arrival, 32, 1), time=arrival)
    engine.run()
    # the span stops after the step in flight at the arrival (the 11th), then C prefills beside
    # A's next decode step in one lock-step forward
    cut = rec.extend_steps[-1][1]
    assert cut > arrival
    assert cut - arrival < step * 1.01
    mixed = _dp(cost, [cost.decode_shape(1, 64 + 11), cost.extend_shape([(None, 0, 32)])])
    assert rec.first_token[2] == pytest.approx(cut + mixed, rel=1e-12)
    assert rec.extend_steps[-1][0] == r1.worker_id


def test_decode_span_equals_stepping():
    spec, engine, rec, server, (r0, r1) = _server()
    cost = spec.cost_model()
    # rank 0 runs 3 requests and rank 1 runs 2; all prefilled in step 1, then decode together
    for rid, rank in ((1, r0), (2, r0), (3, r0), (4, r1), (5, r1)):
        _arrive(engine, rank, Request(rid, 0.0, 200 + rid, 40))
    engine.run()
    prefill = _dp(cost, [cost.extend_shape([(None, 0, 201), (None, 0, 202), (None, 0, 203)]),
                         cost.extend_shape([(None, 0, 204), (None, 0, 205)])])
    # 39 lock-step decode steps, contexts growing by the batch size of each rank every step
    total = prefill
    ctx0, ctx1 = 201 + 202 + 203, 204 + 205
    for k in range(39):
        total += _dp(cost, [cost.decode_shape(3, ctx0 + 3 * k), cost.decode_shape(2, ctx1 + 2 * k)])
    assert max(rec.finished.values()) == pytest.approx(total, rel=1e-9)


def test_routing_targets_and_gpu_counts():
    dp_attention = simulate({"model": "qwen3-30b-a3b", "gpu": "h100",
                             "server": {"tp": 4, "dp": 4, "enable_dp_attention": True},
                             "cluster": {"replicas": 2},
                             "workload": {"num_requests": 64, "input_len": 300, "output_len": 20},
                             "check_invariants": True})
    # two servers of 4 GPUs, each with 4 attention ranks as routing targets
    assert dp_attention.config["num_gpus"] == 8
    assert len(dp_attention.summary["workers"]) == 8
    assert dp_attention.summary["num_completed"] == 64
    plain = simulate({"model": "qwen3-30b-a3b", "gpu": "h100", "server": {"tp": 2, "dp": 2},
                      "cluster": {"replicas": 2},
                      "workload": {"num_requests": 64, "input_len": 300, "output_len": 20}})
    # plain DP: two copies of a TP-2 group per server, two servers
    assert plain.config["num_gpus"] == 8
    assert len(plain.summary["workers"]) == 4


def test_dp_attention_run_with_retractions_keeps_invariants():
    result = simulate({"model": "qwen3-30b-a3b", "gpu": "h100",
                       "server": {"tp": 2, "dp": 2, "enable_dp_attention": True, "kv_pool_tokens": 3000},
                       "workload": {"num_requests": 80, "input_len": {"dist": "uniform", "min": 100, "max": 500},
                                    "output_len": {"dist": "uniform", "min": 50, "max": 400},
                                    "rate": 40.0, "seed": 3},
                       "check_invariants": True})
    assert result.summary["num_completed"] == 80
    assert result.summary["retractions"] > 0


def test_same_seed_same_result():
    scenario = {"model": "deepseek-v3", "gpu": "h200", "server": {"tp": 8, "dp": 8, "ep": 8,
                                                                    "enable_dp_attention": True},
                "workload": {"num_requests": 120, "input_len": {"dist": "lognormal", "mean": 800, "cv": 0.5},
                             "output_len": {"dist": "lognormal", "mean": 60, "cv": 0.5}, "rate": 30.0}}
    a, b = simulate(scenario), simulate(scenario)
    assert a.summary["duration_s"] == b.summary["duration_s"]
    assert a.summary["ttft_s"] == b.summary["ttft_s"]
