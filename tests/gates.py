"""A wire-server reply that answers only as many requests as the test allows: tests wait on events, not on clocks.

A test that kills a process "while a request is in flight", or reads progress "while a run goes on", used to sleep
and hope; on a loaded machine the process was slower or faster than the sleep. With :class:`Gate` the request is
held until the test says so, so what is in flight at the kill, or how far a run has got, is decided by the test.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

HOLD_LIMIT = 300.0  # seconds a held request waits at most (a test that forgets to open the gate still ends)


class Gate:
    """``reply(messages)`` for :class:`~stability.testing.wire_server.WireServer`: the first ``allowed`` requests
    are answered by ``answer``, each later one waits until :meth:`allow` lets it through or :meth:`open` lets
    everything through."""

    def __init__(self, answer: Callable[[list[dict[str, Any]]], str], allowed: int = 0) -> None:
        self.answer = answer
        self.allowed = allowed
        self.answered = 0
        self.opened = False
        self._condition = threading.Condition()

    def __call__(self, messages: list[dict[str, Any]]) -> str:
        with self._condition:
            self._condition.wait_for(lambda: self.opened or self.answered < self.allowed, HOLD_LIMIT)
            self.answered += 1
        return self.answer(messages)

    def allow(self, more: int = 1) -> None:
        """Let ``more`` further requests through."""
        with self._condition:
            self.allowed += more
            self._condition.notify_all()

    def open(self) -> None:
        """Answer every request from now on, the held ones first."""
        with self._condition:
            self.opened = True
            self._condition.notify_all()
