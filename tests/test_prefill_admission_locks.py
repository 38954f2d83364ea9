"""Prefill admission must count prefix locks of requests admitted earlier in the same round."""

from __future__ import annotations

import pytest

from sglsim.serving.request import PromptKey, Request
from sglsim.serving.scheduler import Scheduler, SchedulerConfig


def test_earlier_prefix_lock_shrinks_budget():
    sched = Scheduler(SchedulerConfig(max_total_tokens=3000, chunked_prefill_size=None, max_prefill_tokens=16384,
                                      max_running_requests=8))
    # A 1000-token prefix sits in the cache, unlocked: 2000 slots free + 1000 evictable.
    sched.tree.insert((7,), (1000,), 0.0)
    sched.free_tokens -= 1000
    first = Request(0, 0.0, 1500, 1, PromptKey((7, 8), (1000, 500)))
    second = Request(1, 0.0, 1600, 1)
    sched.add_request(first)
    sched.add_request(second)
    batch = sched.get_new_batch_prefill(1.0)
    # The first request hits the prefix and locks it, so only the 2000 free slots remain:
    # 500 go to the first request, and the second (1600 + 1 tokens) no longer fits.
    assert [(req.rid, prefix, new) for req, prefix, new in batch.items] == [(0, 1000, 500)]
    assert sched.waiting == [second]
    assert sched.batch_is_full
    # The step completes and the first request (one output token) finishes.
    _, finished = sched.commit_extend(batch, 2.0)
    assert finished == [first]
    sched.check_invariants()


@pytest.mark.parametrize("input_len", [1473, 1485, 1489])
def test_last_chunk_shorter_than_page_runs(input_len):
    # The prompt runs in 64-token chunks on 16-token pages. After 23 chunks (1472 tokens) only
    # 28 KV slots are free: the last piece (1, 13 or 17 tokens) fits, and it must run.
    sched = Scheduler(SchedulerConfig(max_total_tokens=1500, chunked_prefill_size=64, max_prefill_tokens=512,
                                      max_running_requests=1, page_size=16))
    req = Request(0, 0.0, input_len, 7)
    sched.add_request(req)
    for step in range(23):
        batch = sched.get_new_batch_prefill(float(step))
        sched.commit_extend(batch, float(step) + 0.5)
    assert req.num_computed_tokens == 1472
    assert sched.free_tokens == 28
    batch = sched.get_new_batch_prefill(30.0)
    assert [(r.rid, new) for r, _, new in batch.items] == [(0, input_len - 1472)]
    first_tokens, _ = sched.commit_extend(batch, 31.0)
    assert first_tokens == [req]
    sched.check_invariants()
