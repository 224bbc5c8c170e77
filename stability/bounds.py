"""The ranges of every number a user gives (flags and specs), checked before anything is written.

Each is an annotated type, so a pydantic model that declares a field with it checks the range; :func:`check`
checks one loose value (a flag) and names it in the one-line error.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import Field, TypeAdapter, ValidationError

from stability.errors import StabilityError

#: Sampling temperature: 0 (greedy) to 2 (the widest any provider accepts).
Temperature = Annotated[float, Field(ge=0, le=2, allow_inf_nan=False)]
#: Nucleus sampling mass: above 0, at most 1.
TopP = Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)]
#: Tokens an answer may have.
MaxTokens = Annotated[int, Field(ge=1, le=1_000_000)]
#: A run seed: stored as a signed 64-bit integer.
Seed = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]
#: Calls in flight at once, per provider.
Concurrency = Annotated[int, Field(ge=1, le=10_000)]
#: Requests per minute, per provider (leave the provider out for no limit).
RateLimit = Annotated[float, Field(gt=0, le=1_000_000, allow_inf_nan=False)]
#: A budget in US dollars.
Budget = Annotated[float, Field(ge=0, allow_inf_nan=False)]
#: A cosine distance (analysis: epsilon, the attractor cluster cut): 0 to 2.
CosineDistance = Annotated[float, Field(ge=0, le=2, allow_inf_nan=False)]
#: A cosine similarity (analysis: the least similarity of a reworded principle): -1 to 1.
CosineSimilarity = Annotated[float, Field(ge=-1, le=1, allow_inf_nan=False)]
#: Steps a fixed point must hold (analysis ``--k``).
HoldSteps = Annotated[int, Field(ge=1, le=10_000)]
#: Runs an experiment may expand to; a larger grid is refused with its size before it is built.
MAX_CELLS = 100_000
#: Fresh samples of one node a probe may ask for (as many as a grid may have runs).
ProbeSamples = Annotated[int, Field(ge=1, le=MAX_CELLS)]
#: Probe requests one ``stability probe`` may send in all (runs x samples); more is refused with its size.
MAX_PROBES = 1_000_000


def check(value: Any, kind: Any, flag: str) -> Any:
    """``value`` checked against ``kind`` (one of the types above); out of range is a one-line error naming
    ``flag``."""
    try:
        return TypeAdapter(kind).validate_python(value)
    except ValidationError as err:
        message = err.errors()[0]["msg"]
        if isinstance(value, float) and not math.isfinite(value):
            message = "expected a finite number"
        raise StabilityError(f"{flag} {value}: {message}") from None
