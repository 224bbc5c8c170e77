"""Per-call seeds derived from a run's seed.

Contract: :func:`derive_seed` is a pure function of (run seed, step, purpose); the engine seeds each call with it and
a protocol seeds its own shuffles and tie-breaks with it, so a run replays exactly.
"""

from __future__ import annotations

import hashlib


def derive_seed(seed: int, step: int, purpose: str) -> int:
    """A per-call seed: distinct per step, so repeated questions are independent samples, yet reproducible."""
    digest = hashlib.sha256(f"{seed}:{step}:{purpose}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF
