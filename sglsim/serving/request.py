"""The state of a request inside one SGLang server, from arrival to its last token.

Token arithmetic follows SGLang: a prompt of `input_len` tokens is prefilled
(possibly in chunks, after a cached prefix), which yields the first output
token; each decode step then writes the KV of the previous token and yields
one more, so a request with n output tokens runs n - 1 decode steps and holds
input_len + n - 1 KV slots at the end.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class RequestState(enum.Enum):
    WAITING = "waiting"
    """Queued; needs a (re-)prefill before it can decode."""
    PREFILLING = "prefilling"
    """The single chunked request whose prompt is partly computed."""
    RUNNING = "running"
    """In the decode batch."""
    TRANSFERRING = "transferring"
    """Prefilled on a P/D prefill server; its KV is on the way to the decode server."""
    FINISHED = "finished"


@dataclass(frozen=True, slots=True)
class PromptKey:
    """Prompt content as a run of blocks: equal ids at equal depth mean equal tokens.

    `ids[i]` names a block of `lens[i]` tokens; the radix cache matches prompts
    block by block and counts hits in tokens. Unique (never shared) content uses
    negative ids.
    """

    ids: tuple[int, ...]
    lens: tuple[int, ...]

    @property
    def num_tokens(self) -> int:
        return sum(self.lens)

    @classmethod
    def unique(cls, rid: int, input_len: int) -> "PromptKey":
        """A prompt that shares nothing with any other request."""
        return cls((-(2 * rid + 1),), (input_len,))


class Request:
    """Mutable per-request state inside one server.

    Times are simulated seconds. `num_output_tokens` counts tokens generated
    so far (the first comes from prefill); `output_len` is how many the request
    will generate in total (the trace's output length, possibly cut to fit the
    context window).
    """

    __slots__ = (
        "rid", "arrived_at", "input_len", "output_len", "prompt", "output_block_id", "client_id",
        "state", "num_output_tokens", "prefix_len", "last_node", "num_cached_tokens",
        "num_computed_tokens", "extend_len", "first_scheduled_at", "first_token_at",
        "finished_at", "last_token_at", "decode_join_step", "decode_join_ctx", "num_retractions",
        "server_arrived_at", "worker_id", "admitted_once", "transfer_s", "transfer_queue_s",
        "prefill_worker_id", "prefill_done_at", "data_parallel_rank",
    )

    def __init__(self, rid: int, arrived_at: float, input_len: int, output_len: int,
                 prompt: PromptKey | None = None, output_block_id: int | None = None,
                 client_id: int = -1) -> None:
        self.rid = rid
        self.arrived_at = arrived_at
        self.input_len = input_len
        self.output_len = output_len
        self.prompt = prompt if prompt is not None else PromptKey.unique(rid, input_len)
        self.output_block_id = output_block_id if output_block_id is not None else -(2 * rid + 2)
        self.client_id = client_id
        self.state = RequestState.WAITING
        self.num_output_tokens = 0
        self.prefix_len = 0
        """Tokens of the fill sequence covered by the locked radix-tree path."""
        self.last_node = None
        self.num_cached_tokens = 0
        """Prefix-cache hit of the first admission, in tokens (what metrics report)."""
        self.num_computed_tokens = 0
        """KV slots this request has filled (prefix included)."""
        self.extend_len = 0
        self.first_scheduled_at: float | None = None
        self.first_token_at: float | None = None
        self.finished_at: float | None = None
        self.last_token_at: float | None = None
        self.decode_join_step = 0
        self.decode_join_ctx = 0
        self.num_retractions = 0
        self.server_arrived_at = arrived_at
        self.worker_id = -1
        self.admitted_once = False
        self.transfer_s = 0.0
        """P/D: seconds from the end of the prefill forward to the last KV byte at the decode server."""
        self.transfer_queue_s = 0.0
        """P/D: seconds the request's KV pieces waited for busy links."""
        self.prefill_worker_id = -1
        """P/D: the prefill server (`worker_id` is then the decode server)."""
        self.prefill_done_at: float | None = None
        """P/D: end of the prefill forward that sampled the first token."""
        self.data_parallel_rank: int | None = None
        """DP rank chosen by a DP-aware router (SGLang's `data_parallel_rank`), else None."""

    @property
    def fill_len(self) -> int:
        """Tokens a (re-)prefill puts in KV: the prompt plus every output sampled so far.

        A retracted request re-prefills its prompt and its outputs, and that
        forward samples its next token, exactly as a decode step would.
        """
        return self.input_len + self.num_output_tokens

    @property
    def remaining_output(self) -> int:
        return self.output_len - self.num_output_tokens

    def __repr__(self) -> str:
        return (f"Request(rid={self.rid}, state={self.state.value}, in={self.input_len}, "
                f"out={self.num_output_tokens}/{self.output_len})")
