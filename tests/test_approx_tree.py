"""The cache-aware router's approximate prefix tree over prompt blocks."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from sglsim.routing.approx_tree import ApproxPrefixTree

B = 512


def _blocks(*ids: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    return ids, (B,) * len(ids)


def test_empty_tree_matches_nothing():
    tree = ApproxPrefixTree(2)
    assert tree.prefix_match(*_blocks(1, 2), 0.0) == (0, None)
    assert tree.smallest_tenant() == 0


def test_insert_then_match_full_and_partial():
    tree = ApproxPrefixTree(2)
    tree.insert(*_blocks(1, 2, 3), tenant=1, now=1.0)
    # Same prompt: everything matches, tenant 1.
    assert tree.prefix_match(*_blocks(1, 2, 3), 2.0) == (3 * B, 1)
    # Diverges after two blocks: the match stops inside the node, still tenant 1.
    assert tree.prefix_match(*_blocks(1, 2, 9), 3.0) == (2 * B, 1)
    assert tree.tenant_tokens == [0, 3 * B]


def test_split_keeps_tenant_sizes():
    tree = ApproxPrefixTree(2)
    tree.insert(*_blocks(1, 2, 3), tenant=0, now=1.0)
    # Tenant 1 shares blocks 1, 2 then diverges: the node splits; tenant 1 holds 1, 2, 4.
    tree.insert(*_blocks(1, 2, 4), tenant=1, now=2.0)
    assert tree.tenant_tokens == [3 * B, 3 * B]
    assert tree.tokens_by_tenant() == tree.tenant_tokens
    # The shared node has both tenants; the most recent one (1) is returned.
    assert tree.prefix_match(*_blocks(1, 2), 3.0) == (2 * B, 1)


def test_partial_last_block_compares_lengths():
    tree = ApproxPrefixTree(1)
    tree.insert((1, 2), (B, 100), tenant=0, now=0.0)
    # Block 2 with another length is other content: only block 1 matches.
    assert tree.prefix_match((1, 2), (B, 300), 1.0) == (B, 0)


def test_match_refreshes_tenant_time_on_path():
    tree = ApproxPrefixTree(2)
    tree.insert(*_blocks(1, 2), tenant=0, now=1.0)
    tree.insert(*_blocks(1, 2), tenant=1, now=2.0)
    # Tenant 1 is the most recent; matching stamps it at t=3 on the whole path.
    assert tree.prefix_match(*_blocks(1, 2), 3.0) == (2 * B, 1)
    tree.insert(*_blocks(1, 2), tenant=0, now=4.0)
    assert tree.prefix_match(*_blocks(1, 2), 5.0) == (2 * B, 0)


def test_evict_removes_lru_leaves_per_tenant():
    tree = ApproxPrefixTree(2)
    tree.insert(*_blocks(1, 2), tenant=0, now=1.0)
    tree.insert(*_blocks(3, 4), tenant=0, now=2.0)
    tree.insert(*_blocks(5), tenant=1, now=3.0)
    # Tenant 0 holds 4 blocks; trimming to 2 blocks drops its older path (1, 2).
    tree.evict_tenant_by_size(2 * B)
    assert tree.tenant_tokens == [2 * B, B]
    assert tree.prefix_match(*_blocks(1, 2), 4.0) == (0, None)
    assert tree.prefix_match(*_blocks(3, 4), 4.0) == (2 * B, 0)
    assert tree.tokens_by_tenant() == tree.tenant_tokens


def test_evict_keeps_nodes_other_tenants_hold():
    tree = ApproxPrefixTree(2)
    tree.insert(*_blocks(1, 2), tenant=0, now=1.0)
    tree.insert(*_blocks(1, 2), tenant=1, now=2.0)
    tree.evict_tenant_by_size(0)
    # Every tenant is trimmed to nothing and the nodes are gone.
    assert tree.tenant_tokens == [0, 0]
    assert tree.root.children == {}


prompts = st.lists(st.integers(min_value=0, max_value=5), min_size=1, max_size=5)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(prompts, st.integers(0, 2), st.booleans()), min_size=1, max_size=40),
       st.integers(min_value=0, max_value=6 * B))
def test_tenant_sizes_match_tree(ops, limit):
    tree = ApproxPrefixTree(3)
    for step, (ids, tenant, evict) in enumerate(ops):
        tree.insert(tuple(ids), (B,) * len(ids), tenant, float(step))
        if evict:
            tree.evict_tenant_by_size(limit)
            assert all(size <= limit for size in tree.tenant_tokens)
        assert tree.tokens_by_tenant() == tree.tenant_tokens
        assert all(node.tenants for node in _nodes(tree))


def _nodes(tree: ApproxPrefixTree):
    stack = list(tree.root.children.values())
    while stack:
        node = stack.pop()
        stack.extend(node.children.values())
        yield node
