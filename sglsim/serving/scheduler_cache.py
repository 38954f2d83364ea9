"""Radix-cache hooks of the scheduler: prefix matching and caching finished or partial KV.

Mirrors SGLang v0.5 `mem_cache/radix_cache.py` (`cache_unfinished_req`,
`cache_finished_req`) as the scheduler calls it. A mixin of `Scheduler`: it
uses the scheduler's tree, KV counters and config.
"""

from __future__ import annotations

from .request import Request


class RadixCacheHooks:
    """Prefix matching and cache insertion for `Scheduler`."""

    def _match(self, req: Request, now: float) -> tuple[int, object]:
        """Cached prefix of a waiting request, capped so at least one token is computed.

        With page_size > 1 the prefix must end on a page boundary; because the tree
        holds whole blocks, the usable prefix is the deepest block boundary at or
        below the page-aligned match, so no request locks tokens it recomputes.
        """
        matched, node = self.tree.match_prefix(req.prompt.ids, req.prompt.lens, now)
        page = self.config.page_size
        prefix = matched // page * page
        if prefix < matched:
            while node is not self.tree.root and matched > prefix:
                matched -= node.num_tokens
                node = node.parent
            prefix = matched
        return max(min(prefix, req.fill_len - 1), 0), node

    def _relock(self, req: Request, node: object) -> None:
        self.tree.inc_lock_ref(node)
        if req.last_node is not None:
            self.tree.dec_lock_ref(req.last_node)
        req.last_node = node

    def cache_unfinished_req(self, req: Request, now: float) -> None:
        """Insert the computed whole prompt blocks into the tree and lock them for `req`."""
        ids, lens = req.prompt.ids, req.prompt.lens
        limit = min(req.num_computed_tokens, req.input_len)
        covered = count = 0
        for length in lens:
            if covered + length > limit:
                break
            covered += length
            count += 1
        if covered <= req.prefix_len or count == 0:
            return
        existing, added, node = self.tree.insert(ids[:count], lens[:count], now)
        duplicate = max(existing - req.prefix_len, 0)
        self._release(duplicate)
        self.private_tokens -= added
        self._relock(req, node)
        req.prefix_len = existing + added

    def cache_finished_req(self, req: Request, now: float) -> None:
        """Insert prompt and output KV into the tree, free the rest, release the lock."""
        prompt = req.prompt
        ids, lens = prompt.ids, prompt.lens
        out_kv = req.num_computed_tokens - req.input_len
        if out_kv > 0:
            ids = ids + (req.output_block_id,)
            lens = lens + (out_kv,)
        existing, added, _ = self.tree.insert(ids, lens, now)
        held = req.num_computed_tokens - req.prefix_len
        self.private_tokens -= added
        self._release(held - added)
        if req.last_node is not None:
            self.tree.dec_lock_ref(req.last_node)
        req.last_node = None
        req.prefix_len = 0
