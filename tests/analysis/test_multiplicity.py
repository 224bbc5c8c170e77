"""Holm and Benjamini–Hochberg adjusted p-values against hand computation."""

from __future__ import annotations

import numpy as np
import pytest

from stability.analysis.multiplicity import adjust, benjamini_hochberg, holm


def _same(got: list[float | None], expected: list[float | None]) -> bool:
    return len(got) == len(expected) and all(
        (g is None and e is None) or (g is not None and e is not None and abs(g - e) < 1e-12)
        for g, e in zip(got, expected, strict=True))


def test_holm_by_hand() -> None:
    # sorted 0.01, 0.02, 0.03, 0.04 (m = 4): ×4, ×3, ×2, ×1 = 0.04, 0.06, 0.06, 0.04 -> monotone 0.04 0.06 0.06 0.06
    p = [0.03, 0.01, None, 0.04, 0.02]
    assert _same(holm(p), [0.06, 0.04, None, 0.06, 0.06])
    assert holm([0.5, 0.6]) == [1.0, 1.0]  # capped at 1
    assert holm([None, None]) == [None, None] and holm([]) == []


def test_benjamini_hochberg_by_hand() -> None:
    # sorted 0.01, 0.02, 0.03, 0.04 (m = 4): ×4/1, ×4/2, ×4/3, ×4/4 = 0.04, 0.04, 0.04, 0.04
    assert _same(benjamini_hochberg([0.03, 0.01, None, 0.04, 0.02]), [0.04, 0.04, None, 0.04, 0.04])
    # 0.001, 0.2, 0.03 (m = 3): 0.003, 0.045 (0.03 × 3/2), 0.2
    assert benjamini_hochberg([0.001, 0.2, 0.03]) == pytest.approx([0.003, 0.2, 0.045])


def test_adjusted_p_values_are_never_below_the_raw_ones() -> None:
    p = np.random.default_rng(0).uniform(size=30).tolist()
    for method in ("holm", "bh"):
        adjusted = adjust(p, method)
        assert all(a is not None and a >= r - 1e-12 for a, r in zip(adjusted, p, strict=True))
    assert all(h is not None and b is not None and h >= b - 1e-12
               for h, b in zip(holm(p), benjamini_hochberg(p), strict=True))
    with pytest.raises(ValueError, match="choose one of holm, bh"):
        adjust(p, "bonferroni")
