"""The cache-aware router's approximate prefix tree, one tree shared by all targets.

SGLang's router keeps a radix tree of the request text it has sent out and
tags every node with the targets ("tenants") that were sent that text, with
a last-access time per tenant. It never queries a server's cache: the tree
only records routing history. This tree does the same over prompt
blocks (`PromptKey` ids and token lengths) and counts sizes in tokens where
SGLang counts characters.

Mirrors sgl-router `policies/tree.rs`:
- `prefix_match` walks down as far as the blocks match (into a node that
  matches only partly, too) and returns the matched tokens and one tenant of
  the deepest node reached; it refreshes that tenant's time on the path;
- `insert` tags every node on the path with the tenant, splitting a node
  where the prompt diverges, and adds the unmatched suffix as a new leaf;
- `evict_tenant_by_size` removes, per tenant above the limit, the tenant's
  least recently used leaves until its size fits, deleting nodes no tenant
  holds any more.

Where SGLang takes an arbitrary tenant of the deepest node (the first key of
a concurrent map), this tree takes the most recently used one, the lowest
index on a tie, so runs are deterministic.
"""

from __future__ import annotations

import heapq
from array import array
from types import MappingProxyType
from typing import Mapping, Sequence

_NO_CHILDREN: Mapping[int, "_Node"] = MappingProxyType({})
"""Read-only empty mapping shared by leaves. A leaf gets its own dict when its first child is added."""


class _Node:
    __slots__ = ("parent", "children", "ids", "lens", "num_tokens", "tenants")

    def __init__(self, parent: "_Node | None", ids: Sequence[int], lens: tuple[int, ...]) -> None:
        self.parent = parent
        # Most nodes are leaves, so sharing one read-only empty mapping saves a dict per node.
        self.children: Mapping[int, _Node] = _NO_CHILDREN
        self.ids = ids
        self.lens = lens
        self.num_tokens = sum(lens)
        self.tenants: dict[int, float] = {}
        """Tenant -> last access time (simulated seconds)."""


class ApproxPrefixTree:
    """Prefix tree of routed prompts, tagged with the tenants (target indices) they went to."""

    def __init__(self, num_tenants: int) -> None:
        self.root = _Node(None, (), ())
        self.tenant_tokens = [0] * num_tenants
        """Tokens of the tree tagged with each tenant (SGLang's tenant_char_count)."""
        for tenant in range(num_tenants):
            self.root.tenants[tenant] = 0.0

    # ----- lookup -----

    def prefix_match(self, ids: Sequence[int], lens: Sequence[int], now: float) -> tuple[int, int | None]:
        """Return (matched tokens, tenant of the deepest matched node or None at the root)."""
        node = self.root
        matched = 0
        i, n = 0, len(ids)
        while i < n:
            child = node.children.get(ids[i])
            if child is None:
                break
            j = _common_blocks(child, ids, lens, i)
            if j == 0:
                break
            matched += sum(lens[i:i + j])
            node = child
            i += j
            if j < len(child.ids):
                break
        if node is self.root:
            return matched, None
        tenant = max(node.tenants.items(), key=lambda item: (item[1], -item[0]))[0]
        walk: _Node | None = node
        while walk is not None:
            walk.tenants[tenant] = now
            walk = walk.parent
        return matched, tenant

    def smallest_tenant(self) -> int:
        """Return the tenant with the fewest tokens in the tree, the lowest index on a tie."""
        sizes = self.tenant_tokens
        return min(range(len(sizes)), key=lambda t: (sizes[t], t))

    # ----- insertion -----

    def insert(self, ids: Sequence[int], lens: Sequence[int], tenant: int, now: float) -> None:
        """Record that the prompt (ids, lens) was sent to `tenant` at `now`."""
        node = self.root
        self._touch(node, tenant, now)
        i, n = 0, len(ids)
        while i < n:
            child = node.children.get(ids[i])
            if child is None:
                leaf = _Node(node, _packed_ids(ids[i:]), tuple(lens[i:]))
                if node.children is _NO_CHILDREN:
                    node.children = {}
                node.children[leaf.ids[0]] = leaf
                self._touch(leaf, tenant, now)
                return
            j = _common_blocks(child, ids, lens, i)
            if j == 0:
                # Same first block id with another length (a different partial block):
                # the tree keys children by id, so the rest is not recorded.
                return
            if j < len(child.ids):
                child = self._split(child, j)
            self._touch(child, tenant, now)
            node = child
            i += j

    def _touch(self, node: _Node, tenant: int, now: float) -> None:
        if tenant not in node.tenants:
            self.tenant_tokens[tenant] += node.num_tokens
        node.tenants[tenant] = now

    def _split(self, child: _Node, j: int) -> _Node:
        """Cut `child` after its first j blocks; return the new upper node (same tenants)."""
        upper = _Node(child.parent, child.ids[:j], child.lens[:j])
        upper.tenants = dict(child.tenants)
        upper.children = {child.ids[j]: child}
        child.parent.children[child.ids[0]] = upper
        child.parent = upper
        child.ids = child.ids[j:]
        child.lens = child.lens[j:]
        child.num_tokens -= upper.num_tokens
        return upper

    # ----- eviction -----

    def evict_tenant_by_size(self, max_tokens: int) -> None:
        """Drop least recently used leaves of every tenant above `max_tokens` until it fits."""
        if all(size <= max_tokens for size in self.tenant_tokens):
            return
        heap: list[tuple[float, int, int, _Node]] = []
        seq = 0
        stack = list(self.root.children.values())
        while stack:
            node = stack.pop()
            stack.extend(node.children.values())
            for tenant in self._leaf_tenants(node):
                seq += 1
                heap.append((node.tenants[tenant], seq, tenant, node))
        heapq.heapify(heap)
        while heap:
            _, _, tenant, node = heapq.heappop(heap)
            if self.tenant_tokens[tenant] <= max_tokens or tenant not in node.tenants:
                continue
            self.tenant_tokens[tenant] -= node.num_tokens
            del node.tenants[tenant]
            parent = node.parent
            if not node.children and not node.tenants:
                del parent.children[node.ids[0]]
            if parent is not self.root and tenant in self._leaf_tenants(parent):
                seq += 1
                heapq.heappush(heap, (parent.tenants[tenant], seq, tenant, parent))

    @staticmethod
    def _leaf_tenants(node: _Node) -> list[int]:
        """Return the tenants of `node` that none of its children has (the node is their leaf)."""
        below: set[int] = set()
        for child in node.children.values():
            below.update(child.tenants)
        return [tenant for tenant in node.tenants if tenant not in below]

    # ----- inspection (tests) -----

    def tokens_by_tenant(self) -> list[int]:
        """Recount each tenant's tokens from the nodes (the invariant `tenant_tokens` keeps)."""
        sizes = [0] * len(self.tenant_tokens)
        stack = list(self.root.children.values())
        while stack:
            node = stack.pop()
            stack.extend(node.children.values())
            for tenant in node.tenants:
                sizes[tenant] += node.num_tokens
        return sizes


def _packed_ids(ids: Sequence[int]) -> Sequence[int]:
    """Return block ids as a packed int64 array (8 bytes per id, no int objects), or a tuple if an id does not fit."""
    try:
        return array("q", ids)
    except OverflowError:
        return tuple(ids)


def _common_blocks(child: _Node, ids: Sequence[int], lens: Sequence[int], start: int) -> int:
    """Number of leading blocks of `child` equal (id and length) to ids/lens from `start`."""
    cids, clens = child.ids, child.lens
    limit = min(len(cids), len(ids) - start)
    j = 0
    while j < limit and cids[j] == ids[start + j] and clens[j] == lens[start + j]:
        j += 1
    return j
