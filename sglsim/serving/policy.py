"""Waiting-queue ordering policies: `fcfs` (SGLang's default) and `lpm`.

lpm sorts by the longest cached prefix and, like SGLang, falls back to fcfs
when more than 128 requests wait (matching every request is too costly then).
It also applies SGLang's in-batch prefix deduplication: a request whose cache
match is at most 32 tokens but that shares at least 32 tokens with a request
earlier in the queue is moved back, so only one of the sharing requests
prefills first and the others can then hit the cache.
"""

from __future__ import annotations

from ..errors import unknown
from .radix_cache import RadixCache
from .request import Request

SCHEDULE_POLICIES = ("fcfs", "lpm")
LPM_FALLBACK_QUEUE_LEN = 128
IN_BATCH_PREFIX_CHECK_THRESHOLD = 32
IN_BATCH_PREFIX_DEPRIORITIZE_THRESHOLD = 32


def validate_policy(name: str) -> str:
    if name not in SCHEDULE_POLICIES:
        raise unknown("schedule_policy", name, SCHEDULE_POLICIES)
    return name


def order_waiting_queue(policy: str, waiting: list[Request], tree: RadixCache, now: float) -> list[Request]:
    """Return the waiting queue in the order the prefill adder will try it."""
    if policy == "fcfs" or len(waiting) > LPM_FALLBACK_QUEUE_LEN or tree.disabled:
        return waiting
    matched: dict[int, int] = {}
    for req in waiting:
        matched[req.rid] = tree.match_prefix(req.prompt.ids, req.prompt.lens, now)[0]
    deprioritized: set[int] = set()
    queue_tree = RadixCache()
    for req in waiting:
        if matched[req.rid] > IN_BATCH_PREFIX_CHECK_THRESHOLD:
            continue
        shared, _ = queue_tree.match_prefix(req.prompt.ids, req.prompt.lens, now)
        if shared >= IN_BATCH_PREFIX_DEPRIORITIZE_THRESHOLD:
            deprioritized.add(req.rid)
        else:
            queue_tree.insert(req.prompt.ids, req.prompt.lens, now)
    return sorted(waiting, key=lambda r: (r.rid in deprioritized, -matched[r.rid]))
