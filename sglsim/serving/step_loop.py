"""The event-loop clock shared by a server and a DP-attention server.

Both run one forward step or one closed-form decode span at a time. The end
of the running item is an event that carries a token. Cutting a span short
pushes a new end event with a new token, so the old event is ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from ..costs.step_model import DecodeSpan
from ..engine.events import PRIORITY_STEP, EventQueue


@dataclass
class SpanRun:
    """A running decode span: `steps` steps of `span` from `start` (simulated seconds)."""

    span: DecodeSpan
    start: float
    steps: int


class StepLoop:
    """Event-loop state of a server that runs one step or one decode span at a time.

    Subclasses implement `_run_next(now)`, which starts the next item with
    `_start`, and `_finish(current, now)`, called when an item ends.
    """

    def __init__(self, engine: EventQueue) -> None:
        self.engine = engine
        self._current: Any = None
        self._wake_pending = False
        self._token = 0

    @property
    def idle(self) -> bool:
        return self._current is None and not self._wake_pending

    def _on_new_work(self, now: float, could_admit: Callable[[], bool]) -> None:
        """Wake an idle loop, or end its decode span at the step in flight if `could_admit()`."""
        if self.idle:
            self._wake_pending = True
            self.engine.push(now, PRIORITY_STEP, self._wake, None)
        elif isinstance(self._current, SpanRun) and could_admit():
            self._truncate_span(now)

    def _truncate_span(self, now: float) -> None:
        """End the running decode span at the step in flight at `now`."""
        cur = self._current
        steps = cur.span.steps_to_cover(now - cur.start)
        if steps >= cur.steps:
            return
        cur.steps = steps
        self._token += 1
        self.engine.push(cur.start + cur.span.duration(steps), PRIORITY_STEP, self._on_step_end, self._token)

    def _wake(self, now: float, _unused: object) -> None:
        self._wake_pending = False
        if self._current is None:
            self._run_next(now)

    def _start(self, current: Any, end: float) -> None:
        self._current = current
        self._token += 1
        self.engine.push(end, PRIORITY_STEP, self._on_step_end, self._token)

    def _on_step_end(self, now: float, token: int) -> None:
        if token != self._token:
            return
        cur = self._current
        self._current = None
        self._finish(cur, now)
        self._run_next(now)

    def _run_next(self, now: float) -> None:
        raise NotImplementedError

    def _finish(self, current: Any, now: float) -> None:
        raise NotImplementedError
