"""The simulated prefix-hit ratio on the real Mooncake trace equals an independent count."""

from __future__ import annotations

import json

import pytest

from .helpers import run


def independent_hit_tokens(path) -> tuple[int, int]:
    """Count cached tokens request by request from the hash ids alone.

    A request's hit is its longest run of leading hash ids that some earlier request also
    started with (equal leading ids mean equal prefixes), in tokens: 512 per full block and
    the partial last block's own length. SGLang always computes at least one token, so a
    fully cached prompt counts input_length - 1.
    """
    seen: set[tuple[int, ...]] = set()
    hit = total = 0
    with open(path) as handle:
        for line in handle:
            row = json.loads(line)
            ids, n_in = row["hash_ids"], row["input_length"]
            k = 0
            while k < len(ids) and tuple(ids[:k + 1]) in seen:
                k += 1
            for j in range(1, len(ids) + 1):
                seen.add(tuple(ids[:j]))
            tokens = n_in if k == len(ids) else 512 * k
            hit += min(tokens, n_in - 1)
            total += n_in
    return hit, total


@pytest.mark.slow
def test_mooncake_hit_ratio_matches_independent_count(mooncake_trace):
    # One server, a KV pool too large to ever evict, one request at a time (closed loop with one
    # client), so no request waits on a prefix that is still being computed.
    _, res = run(model="llama-3.1-8b", gpu="h100",
                 server={"kv_pool_tokens": 10**9},
                 workload={"trace": str(mooncake_trace), "concurrency": 1})
    hit, total = independent_hit_tokens(mooncake_trace)
    assert res.summary["num_completed"] == 12031
    assert res.summary["cached_tokens"] == hit
    assert res.summary["input_tokens"] == total
    assert res.summary["cache_hit_rate"] == pytest.approx(hit / total, rel=1e-15)
