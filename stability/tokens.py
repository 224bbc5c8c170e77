"""Token counts as a provider reports them, bounded on the way in (a leaf module: records, models and the store
use it)."""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import BeforeValidator

#: the most tokens a call is counted with (the calls table's INTEGER columns hold up to this)
TOKEN_LIMIT = 2**31 - 1


def bounded_tokens(value: Any) -> int:
    """A token count as reported by a provider, as it is counted and stored: an integer in ``[0, TOKEN_LIMIT]``.
    A negative count is 0, an absurd one (10**15) is ``TOKEN_LIMIT``, anything not a number 0; what the server
    said stays in the call's raw response."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return 0
    return min(max(int(value), 0), TOKEN_LIMIT)


#: a token count bounded on the way in (:func:`bounded_tokens`)
Tokens = Annotated[int, BeforeValidator(bounded_tokens)]
