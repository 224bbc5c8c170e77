"""How a call fails, in the words the provider, the call path and a protocol share.

Contract: a provider raises :class:`TransientError` for a failure worth retrying; the call path raises
:class:`CallFailed` (carrying the stored call) for one that failed for good, and a protocol catches it.
"""

from __future__ import annotations

from stability.records import CallRecord


class TransientError(Exception):
    """A failure worth retrying (429, 5xx, overloaded, timeout, dropped connection).

    ``retry_after`` is the server's ``Retry-After`` in seconds, when it sent one.
    """

    def __init__(self, message: str, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class CallFailed(Exception):
    """A call that failed for good (retries exhausted, or an error retrying cannot fix). It is stored."""

    def __init__(self, message: str, call: CallRecord) -> None:
        super().__init__(message)
        self.call = call
