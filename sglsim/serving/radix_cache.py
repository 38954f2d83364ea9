"""Radix prefix cache in the manner of SGLang's `RadixCache`, keyed on token blocks.

A prompt is a run of blocks (`PromptKey`): equal ids at equal depth are equal
tokens, so the tree compares ids instead of single token ids and counts hits
in tokens. This keeps Mooncake-style traces (one id per 512-token block)
exact and makes a unique prompt a single-edge lookup.

Mirrors SGLang (v0.5 `mem_cache/radix_cache.py`):
- `match_prefix` walks down, stamping last-access times, and splits the node
  where a match ends inside it;
- `insert` adds the unmatched suffix as a new leaf and reports how much was
  already there (the caller frees those duplicate KV slots);
- `inc_lock_ref`/`dec_lock_ref` walk leaf to root, moving tokens between the
  evictable and protected counts as a node's lock count crosses zero;
- `evict` removes least-recently-used unlocked leaves until enough tokens are free.

Times are simulated seconds passed in by the caller. The eviction heap is lazy:
entries are checked when popped and re-pushed if the node was touched since.
"""

from __future__ import annotations

import heapq
from typing import Sequence


class TreeNode:
    """A run of blocks sharing one parent; `lock_ref` counts requests using it."""

    __slots__ = ("parent", "children", "ids", "lens", "num_tokens", "lock_ref", "last_access", "alive")

    def __init__(self, parent: "TreeNode | None", ids: tuple[int, ...], lens: tuple[int, ...],
                 now: float) -> None:
        self.parent = parent
        self.children: dict[int, TreeNode] = {}
        self.ids = ids
        self.lens = lens
        self.num_tokens = sum(lens)
        self.lock_ref = 0
        self.last_access = now
        self.alive = True

    def __lt__(self, other: "TreeNode") -> bool:  # heap ties never compare nodes; keep total order
        return id(self) < id(other)


class RadixCache:
    """Prefix tree over KV blocks with LRU eviction of unlocked leaves."""

    def __init__(self, disabled: bool = False) -> None:
        self.disabled = disabled
        self.root = TreeNode(None, (), (), 0.0)
        self.root.lock_ref = 1
        self.evictable_tokens = 0
        """Tokens in nodes no running request holds: free to evict."""
        self.protected_tokens = 0
        """Tokens in nodes locked by at least one request."""
        self.num_nodes = 0
        self._heap: list[tuple[float, int, TreeNode]] = []
        self._push_seq = 0

    @property
    def total_tokens(self) -> int:
        return self.evictable_tokens + self.protected_tokens

    # ----- lookup and insertion -----

    def match_prefix(self, ids: Sequence[int], lens: Sequence[int], now: float) -> tuple[int, TreeNode]:
        """Return (matched tokens, last matched node) for the longest cached block prefix.

        Splits the last node when the match ends inside it, so the returned node
        covers exactly the match. Stamps `now` on every node on the path.
        """
        node = self.root
        if self.disabled:
            return 0, node
        matched = 0
        i, n = 0, len(ids)
        while i < n:
            child = node.children.get(ids[i])
            if child is None:
                break
            j = _common_blocks(child, ids, lens, i)
            if j == 0:
                break
            child.last_access = now
            if j < len(child.ids):
                child = self._split(child, j)
            matched += child.num_tokens
            node = child
            i += j
        return matched, node

    def insert(self, ids: Sequence[int], lens: Sequence[int], now: float) -> tuple[int, int, TreeNode]:
        """Insert a block sequence; return (tokens already cached, tokens added, last node).

        The added tokens form one new unlocked leaf. When a block id is already
        cached with a different length the insertion stops there and the rest
        is not added (its KV stays with the caller to free).
        """
        node = self.root
        if self.disabled:
            return 0, 0, node
        existing = 0
        i, n = 0, len(ids)
        while i < n:
            child = node.children.get(ids[i])
            if child is None:
                break
            j = _common_blocks(child, ids, lens, i)
            if j == 0:
                return existing, 0, node
            child.last_access = now
            if j < len(child.ids):
                child = self._split(child, j)
            existing += child.num_tokens
            node = child
            i += j
        if i == n:
            return existing, 0, node
        leaf = TreeNode(node, tuple(ids[i:]), tuple(lens[i:]), now)
        node.children[leaf.ids[0]] = leaf
        self.num_nodes += 1
        self.evictable_tokens += leaf.num_tokens
        self._push(leaf)
        return existing, leaf.num_tokens, leaf

    def _split(self, child: TreeNode, j: int) -> TreeNode:
        """Cut `child` after its first j blocks; return the new upper node."""
        upper = TreeNode(child.parent, child.ids[:j], child.lens[:j], child.last_access)
        upper.lock_ref = child.lock_ref
        upper.children[child.ids[j]] = child
        child.parent.children[child.ids[0]] = upper
        child.parent = upper
        child.ids = child.ids[j:]
        child.lens = child.lens[j:]
        child.num_tokens -= upper.num_tokens
        self.num_nodes += 1
        return upper

    # ----- locking -----

    def inc_lock_ref(self, node: TreeNode) -> None:
        """Protect the path from `node` to the root against eviction."""
        while node is not self.root:
            if node.lock_ref == 0:
                self.evictable_tokens -= node.num_tokens
                self.protected_tokens += node.num_tokens
            node.lock_ref += 1
            node = node.parent

    def dec_lock_ref(self, node: TreeNode) -> None:
        """Release one lock on the path from `node` to the root."""
        while node is not self.root:
            if node.lock_ref <= 0:
                raise RuntimeError(f"radix node lock_ref underflow ({node.lock_ref})")
            node.lock_ref -= 1
            if node.lock_ref == 0:
                self.evictable_tokens += node.num_tokens
                self.protected_tokens -= node.num_tokens
                if not node.children:
                    self._push(node)
            node = node.parent

    # ----- eviction -----

    def evict(self, num_tokens: int) -> int:
        """Evict LRU unlocked leaves until at least `num_tokens` are freed; return tokens freed."""
        freed = 0
        heap = self._heap
        while freed < num_tokens and heap:
            stamp, _, node = heapq.heappop(heap)
            if not node.alive or node.children or node.lock_ref > 0:
                continue
            if stamp != node.last_access:
                self._push(node)
                continue
            parent = node.parent
            del parent.children[node.ids[0]]
            node.alive = False
            self.num_nodes -= 1
            freed += node.num_tokens
            self.evictable_tokens -= node.num_tokens
            if parent is not self.root and not parent.children and parent.lock_ref == 0:
                self._push(parent)
        if len(heap) > 4 * self.num_nodes + 1024:
            self._rebuild_heap()
        return freed

    def _push(self, node: TreeNode) -> None:
        self._push_seq += 1
        heapq.heappush(self._heap, (node.last_access, self._push_seq, node))

    def _rebuild_heap(self) -> None:
        """Drop stale heap entries: keep one entry per current evictable leaf."""
        leaves = []
        stack = list(self.root.children.values())
        while stack:
            node = stack.pop()
            if node.children:
                stack.extend(node.children.values())
            elif node.lock_ref == 0:
                leaves.append(node)
        self._heap = []
        for node in leaves:
            self._push(node)

    # ----- inspection (tests and invariant checks) -----

    def iter_nodes(self):
        stack = list(self.root.children.values())
        while stack:
            node = stack.pop()
            yield node
            stack.extend(node.children.values())

    def check_invariants(self) -> None:
        """Recount evictable/protected tokens from the tree; raise RuntimeError on mismatch."""
        evictable = protected = 0
        for node in self.iter_nodes():
            if node.lock_ref > 0:
                protected += node.num_tokens
            else:
                evictable += node.num_tokens
            for child in node.children.values():
                if child.lock_ref > node.lock_ref:
                    raise RuntimeError("radix child locked more often than its parent")
        if (evictable, protected) != (self.evictable_tokens, self.protected_tokens):
            raise RuntimeError(
                f"radix token counts drifted: counted evictable={evictable} protected={protected}, "
                f"tracked evictable={self.evictable_tokens} protected={self.protected_tokens}")


def _common_blocks(child: TreeNode, ids: Sequence[int], lens: Sequence[int], start: int) -> int:
    """Number of leading blocks of `child` equal (id and length) to ids/lens from `start`."""
    cids, clens = child.ids, child.lens
    limit = min(len(cids), len(ids) - start)
    j = 0
    while j < limit and cids[j] == ids[start + j] and clens[j] == lens[start + j]:
        j += 1
    return j
