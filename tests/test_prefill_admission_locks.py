"""Prefill admission must count prefix locks of requests admitted earlier in the same round."""

from __future__ import annotations

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
