"""Narrated scenarios with exact expected values: what one SGLang server does, step by step."""

from __future__ import annotations

import pytest

from sglsim.costs.forward import step_time
from sglsim.costs.ops import FLOAT_OPS
from sglsim.costs.step_model import StepCostModel
from sglsim.serving.request import PromptKey, Request
from sglsim.serving.scheduler import Scheduler, SchedulerConfig

from .helpers import run

BASE = dict(model="llama-3.1-8b", gpu="h100")


def decode_total(model: StepCostModel, batch: int, ctx0: int, steps: int) -> float:
    return sum(model.decode_step_time(batch, ctx0 + k * batch) for k in range(steps))


def test_one_request_latency_equals_cost_laws():
    # One 1000-token prompt, 10 output tokens, on an idle H100.
    sim, res = run(**BASE, workload={"num_requests": 1, "input_len": 1000, "output_len": 10})
    law = sim.server.law
    model = StepCostModel(law)
    # Stage 1: the whole prompt is one prefill step; it samples the first token.
    prefill = step_time(FLOAT_OPS, model.extend_shape([(None, 0, 1000)]), law)
    assert res.requests["ttft_s"][0] == prefill
    # Stage 2: nine decode steps at batch 1, context 1000..1008.
    decode = decode_total(model, 1, 1000, 9)
    assert res.requests["e2e_s"][0] == pytest.approx(prefill + decode, rel=1e-12)
    assert res.requests["tpot_s"][0] == pytest.approx(decode / 9, rel=1e-12)
    assert res.summary["output_tokens"] == 10
    assert res.summary["cache_hit_rate"] == 0.0


def test_two_requests_sharing_a_system_prompt():
    # Two single-turn sessions in one group share a 2048-token system prompt.
    # They arrive 10 s apart, so the second finds the first one's KV in the radix cache.
    sim, res = run(**BASE, workload={
        "num_requests": 2, "rate": 0.1, "arrival": "constant", "input_len": 100, "output_len": 5,
        "shared_prefix": {"num_groups": 1, "system_prompt_len": 2048, "turns": 1}})
    model = StepCostModel(sim.server.law)
    cached = res.requests["cached_tokens"]
    assert list(cached) == [0, 2048]
    # The second prefill computes only its 100 new tokens after a 2048-token prefix.
    second = model.step_time(model.extend_shape([(None, 2048, 100)]))
    assert res.requests["ttft_s"][1] == pytest.approx(second, rel=1e-12)
    first = model.step_time(model.extend_shape([(None, 0, 2148)]))
    assert res.requests["ttft_s"][0] == pytest.approx(first, rel=1e-12)
    assert res.summary["cache_hit_rate"] == pytest.approx(2048 / (2 * 2148))


def test_long_prompt_is_prefilled_in_chunks():
    # A 20,000-token prompt with chunked_prefill_size 8192 runs as chunks of 8192, 8192 and 3616
    # tokens, each attending to the tokens computed before it; only the last chunk samples a token.
    sim, res = run(**BASE, server={"chunked_prefill_size": 8192},
                   workload={"num_requests": 1, "input_len": 20000, "output_len": 2})
    model = StepCostModel(sim.server.law)
    chunks = [(0, 8192), (8192, 8192), (16384, 3616)]
    expected = sum(model.step_time(model.extend_shape([(None, p, q)])) for p, q in chunks)
    assert res.requests["ttft_s"][0] == pytest.approx(expected, rel=1e-12)
    stats = res.summary["workers"][0]
    assert stats["prefill_steps"] == 3
    assert stats["prefill_tokens"] == 20000


def test_chunking_off_prefills_in_one_step():
    sim, res = run(**BASE, server={"chunked_prefill_size": -1},
                   workload={"num_requests": 1, "input_len": 20000, "output_len": 2})
    assert res.summary["workers"][0]["prefill_steps"] == 1


def _scheduler(capacity: int) -> Scheduler:
    return Scheduler(SchedulerConfig(max_total_tokens=capacity, chunked_prefill_size=8192,
                                     max_prefill_tokens=16384, max_running_requests=64))


def _prefill(sched: Scheduler, reqs: list[Request], now: float) -> None:
    for req in reqs:
        sched.add_request(req)
    batch = sched.get_new_batch_prefill(now)
    assert [r.rid for r, _, _ in batch.items] == [r.rid for r in reqs]
    sched.commit_extend(batch, now)


def test_retraction_victims_fewest_outputs_then_longest_prompt():
    # Four requests with short prompts join the decode batch at different times, so they hold
    # 16, 6, 1 and 1 outputs; R3 and R4 tie on outputs and R4 has the longer prompt.
    sched = _scheduler(capacity=4000)
    r1, r2, r3, r4 = (Request(1, 0.0, 10, 50), Request(2, 0.0, 12, 50),
                      Request(3, 0.0, 11, 50), Request(4, 0.0, 13, 50))
    _prefill(sched, [r1], 0.0)
    sched.commit_decode(10, 1.0)
    _prefill(sched, [r2], 2.0)
    sched.commit_decode(5, 3.0)
    _prefill(sched, [r3, r4], 4.0)
    assert [sched.outputs_of(r) for r in (r1, r2, r3, r4)] == [16, 6, 1, 1]
    # Prompts are cached (locked) in the tree; the requests hold their decode KV: 15 + 5.
    assert sched.tree.protected_tokens == 10 + 12 + 11 + 13
    assert sched.private_tokens == 20
    sched.check_invariants()
    # Another holder takes every free slot, so the next decode step cannot get KV.
    sched._allocate(sched.free_tokens)
    retracted = sched.retract_decode(5.0)
    # Victims in SGLang's order, each freeing its decode KV and (once unlocked) its evicted
    # prompt, until 20 free tokens remain per running request: R4 frees 13 (< 60),
    # R3 brings it to 24 (< 40), R2's 5 decode tokens to 29 (>= 20, so its prompt stays
    # cached). R1, the last one, stays.
    assert [r.rid for r in retracted] == [4, 3, 2]
    assert sched.free_tokens == 29
    assert sched.tree.evictable_tokens == 12
    assert list(sched.running) == [1]
    assert [r.rid for r in sched.waiting] == [4, 3, 2]
    assert all(r.num_retractions == 1 and r.num_computed_tokens == 0 for r in retracted)
    # The new ratio estimates the remaining request's needs: (16 + 20) / 50.
    assert sched.new_token_ratio == pytest.approx(36 / 50)


def test_retraction_end_to_end_then_reprefill():
    # A 5200-token KV pool. A (500 + 3000 tokens) starts at t=0; B (same shape) arrives at
    # t=5 s, when A has decoded ~745 steps and the new-token ratio has decayed to its floor, so
    # B's reservation fits and B is admitted. Both then decode until the pool runs dry, long
    # before A finishes: B, with fewer outputs, is retracted, waits, and re-prefills its prompt
    # (a cache hit on its own prompt) plus its outputs once memory is free again.
    sim, res = run(**BASE, server={"kv_pool_tokens": 5200},
                   workload={"num_requests": 2, "rate": 0.2, "arrival": "constant",
                             "input_len": 500, "output_len": 3000},
                   check_invariants=True)
    assert res.summary["num_completed"] == 2
    assert list(res.requests["retractions"]) == [0, 1]
    assert list(res.requests["output_len"]) == [3000, 3000]
    # Retraction does not change a request's first-token time: B got its first token on admission.
    assert res.requests["ttft_s"][1] < 0.1
    assert res.requests["finished_at"][1] > res.requests["finished_at"][0]
    # Each of the 2 x 2999 later tokens adds one inter-token gap, the one B's re-prefill emits too.
    # That gap spans B's wait in the queue, so it is the longest.
    assert res.summary["itl_s"]["count"] == 5998
    assert res.summary["itl_s"]["max"] > 1.0


def test_closed_loop_clients_send_on_completion():
    # Two clients, six identical requests: each client sends its next request the moment its
    # previous one finishes, so the run is three rounds of two concurrent requests.
    sim, res = run(**BASE, workload={"num_requests": 6, "concurrency": 2, "input_len": 512, "output_len": 8})
    arrived = sorted(res.requests["arrived_at"])
    finished = sorted(res.requests["finished_at"])
    assert arrived[:2] == [0.0, 0.0]
    assert arrived[2:4] == finished[:2]
    assert arrived[4:6] == finished[2:4]
    model = StepCostModel(sim.server.law)
    round_time = model.step_time(model.extend_shape([(None, 0, 512), (None, 0, 512)])) + \
        decode_total(model, 2, 1024, 7)
    assert finished[-1] == pytest.approx(3 * round_time, rel=1e-9)


def test_prompt_key_blocks_match_across_requests():
    # Requests built from block ids share the tokens of equal leading blocks.
    sched = _scheduler(capacity=100000)
    a = Request(1, 0.0, 1536, 2, PromptKey((7, 8, 9), (512, 512, 512)))
    b = Request(2, 0.0, 1100, 2, PromptKey((7, 8, 10), (512, 512, 76)))
    _prefill(sched, [a], 0.0)
    sched.commit_decode(1, 0.5)
    sched.add_request(b)
    batch = sched.get_new_batch_prefill(1.0)
    assert batch.items == [(b, 1024, 76)]
    assert b.num_cached_tokens == 1024
    sched.check_invariants()
