"""Radix cache: matching, node splits, lock references and LRU eviction, block by block."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from sglsim.serving.radix_cache import RadixCache


def test_insert_match_split_and_counts():
    tree = RadixCache()
    # A fresh tree caches nothing.
    assert tree.match_prefix((1, 2, 3), (512, 512, 100), 0.0)[0] == 0
    # Insert a three-block prompt: all 1124 tokens become one evictable leaf.
    existing, added, leaf = tree.insert((1, 2, 3), (512, 512, 100), 1.0)
    assert (existing, added) == (0, 1124)
    assert tree.evictable_tokens == 1124 and tree.num_nodes == 1
    # A prompt sharing two blocks matches 1024 tokens and splits the leaf after block 2.
    matched, node = tree.match_prefix((1, 2, 9), (512, 512, 7), 2.0)
    assert matched == 1024
    assert node.ids == (1, 2) and tree.num_nodes == 2
    # Inserting it adds only its new block under the split node.
    existing, added, leaf2 = tree.insert((1, 2, 9), (512, 512, 7), 3.0)
    assert (existing, added) == (1024, 7)
    assert leaf2.parent is node
    assert tree.total_tokens == 1131
    tree.check_invariants()


def test_same_id_with_other_length_does_not_match():
    tree = RadixCache()
    tree.insert((5,), (300,), 0.0)
    assert tree.match_prefix((5,), (301,), 1.0)[0] == 0


def test_locks_protect_the_path_and_release_it():
    tree = RadixCache()
    _, _, leaf = tree.insert((1, 2), (10, 20), 0.0)
    _, node = tree.match_prefix((1, 3), (10, 5), 1.0)  # splits (1,2) after block 1
    tree.inc_lock_ref(leaf)
    # The leaf and its parent (the split node) are protected.
    assert (tree.protected_tokens, tree.evictable_tokens) == (30, 0)
    assert tree.evict(100) == 0
    tree.inc_lock_ref(node)
    tree.dec_lock_ref(leaf)
    # Only the parent stays locked (by the second lock); the leaf can be evicted.
    assert (tree.protected_tokens, tree.evictable_tokens) == (10, 20)
    assert tree.evict(1) == 20
    tree.dec_lock_ref(node)
    assert tree.evict(1) == 10
    assert tree.total_tokens == 0
    tree.check_invariants()


def test_lru_eviction_order():
    # Three leaves inserted at t=1, 2, 3; touching the oldest makes the middle one the LRU victim.
    tree = RadixCache()
    tree.insert((1,), (100,), 1.0)
    tree.insert((2,), (200,), 2.0)
    tree.insert((3,), (300,), 3.0)
    tree.match_prefix((1,), (100,), 4.0)
    assert tree.evict(150) == 200
    assert tree.match_prefix((2,), (200,), 5.0)[0] == 0
    assert tree.evict(1) == 300  # then block 3 (t=3) before block 1 (t=4)
    assert tree.match_prefix((1,), (100,), 6.0)[0] == 100


def test_parent_becomes_evictable_after_its_children():
    tree = RadixCache()
    tree.insert((1, 2), (10, 10), 0.0)
    tree.insert((1, 3), (10, 10), 1.0)
    assert tree.num_nodes == 3
    assert tree.evict(30) == 30
    assert tree.num_nodes == 0 and tree.total_tokens == 0


def test_disabled_cache_never_hits():
    tree = RadixCache(disabled=True)
    assert tree.insert((1,), (10,), 0.0)[:2] == (0, 0)
    assert tree.match_prefix((1,), (10,), 1.0)[0] == 0


ops = st.lists(st.tuples(st.sampled_from(["insert", "match", "lock", "unlock", "evict"]),
                         st.lists(st.integers(0, 3), min_size=1, max_size=4), st.integers(1, 50)),
               max_size=60)


@settings(max_examples=200, deadline=None)
@given(ops=ops)
def test_random_operations_keep_counts_consistent(ops):
    tree = RadixCache()
    locked = []
    now = 0.0
    for op, ids, amount in ops:
        now += 1.0
        ids = tuple(ids)
        lens = tuple(10 + i for i in ids)
        if op == "insert":
            tree.insert(ids, lens, now)
        elif op == "match":
            tree.match_prefix(ids, lens, now)
        elif op == "lock":
            _, node = tree.match_prefix(ids, lens, now)
            tree.inc_lock_ref(node)
            locked.append(node)
        elif op == "unlock" and locked:
            tree.dec_lock_ref(locked.pop(0))
        elif op == "evict":
            before = tree.total_tokens
            freed = tree.evict(amount)
            assert tree.total_tokens == before - freed
        tree.check_invariants()
    for node in locked:
        tree.dec_lock_ref(node)
    tree.evict(10**9)
    assert tree.total_tokens == 0
