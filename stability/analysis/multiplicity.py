"""Adjusted p-values over a family of tests: Holm (family-wise error) and Benjamini–Hochberg (false discovery rate).

The family is every p-value one invocation prints (``analyze`` and ``report``: every contrast of every measure
that has a test). A p-value that is None (no test: too few starts, an undefined estimate) is not in the family and
stays None.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

ADJUSTMENTS = ("holm", "bh")


def _step(p_values: Sequence[float | None], scale: Callable[[np.ndarray], np.ndarray]) -> list[float | None]:
    """``scale`` applied to the defined p-values in ascending order, written back in their places (None stays)."""
    index = [i for i, p in enumerate(p_values) if p is not None]
    out: list[float | None] = [None] * len(p_values)
    if not index:
        return out
    p = np.array([p_values[i] for i in index], dtype=float)
    order = np.argsort(p, kind="stable")
    scaled = scale(p[order])
    for rank, position in enumerate(order):
        out[index[position]] = float(scaled[rank])
    return out


def _holm(ordered: np.ndarray) -> np.ndarray:
    m = len(ordered)
    return np.minimum(1.0, np.maximum.accumulate(ordered * (m - np.arange(m))))


def _bh(ordered: np.ndarray) -> np.ndarray:
    m = len(ordered)
    scaled = ordered * m / np.arange(1, m + 1)
    return np.minimum(1.0, np.minimum.accumulate(scaled[::-1])[::-1])


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjusted p-values: the i-th smallest of m is multiplied by (m − i + 1), made monotone
    (never below an earlier one) and capped at 1."""
    return _step(p_values, _holm)


def benjamini_hochberg(p_values: Sequence[float | None]) -> list[float | None]:
    """Benjamini–Hochberg adjusted p-values (q-values): the i-th smallest of m times m / i, made monotone from the
    largest down, capped at 1."""
    return _step(p_values, _bh)


def adjust(p_values: Sequence[float | None], method: str) -> list[float | None]:
    """Adjusted p-values by ``method`` (``holm`` or ``bh``)."""
    if method == "holm":
        return holm(p_values)
    if method == "bh":
        return benjamini_hochberg(p_values)
    raise ValueError(f"unknown adjustment {method!r}: choose one of {', '.join(ADJUSTMENTS)}")
