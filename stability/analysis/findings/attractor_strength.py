"""Question 5: attractor strength of scalar properties of a constitution (Perez et al., ICLR 2025, "When LLMs play
the telephone game: cultural attractors as conceptual tools to evaluate LLMs in multi-turn settings").

For a property f of a constitution and the chain runs of one model and protocol (finished runs with a verdict;
controls left out), regress the final value on the starting value across runs by least squares,
f(final) = intercept + slope · f(start). Then

- ``strength`` = 1 − |slope|: 1 when every start ends at the same value (the start is forgotten), 0 when the
  final value is the start's (slope 1: nothing pulls), negative when differences grow;
- ``position`` = intercept / (1 − slope): the value the line maps to itself, where the runs are drawn to
  (undefined at slope 1).

Intervals are clustered by starting constitution: a delete-one-start jackknife (each fit recomputed without one
start's runs) with Student's t on k − 1 degrees of freedom (k starts): ``jackknife-t`` for slope and strength,
Fieller's interval for the ratio on the jackknife covariance of intercept and 1 − slope for the position
(``jackknife-fieller``; unbounded where the slope may be 1). Below 3 starts there is no interval (a note says
so; ``stability findings`` reports a group only from 3 starts on, and says so where none has them); with fewer
than two distinct starting values there is no slope. The slope's p-value tests slope = 1 (no attraction at all).

Properties: ``n_principles``, ``mean_principle_words``, ``distance:NAME`` (cosine distance to each reference
constitution, ``--reference``), ``judge:contradiction`` (1 where the stored judge found a contradiction in the
constitution, 0 where it found none; runs with either end unjudged are left out), and any property registered
with :func:`register_property` (a function of the constitution's text, its principles as a Markdown list).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from stability.analysis.corpus import Corpus, RunChain
from stability.analysis.findings.data import FindingsData
from stability.analysis.findings.record import Estimate, Finding, GroupEstimate, Unanswerable
from stability.analysis.intervals import t_quantile
from stability.analysis.judged import StoredJudgements

MIN_STARTS = 3
Property = Callable[[str], float]  # a constitution's text -> a value

_REGISTRY: dict[str, Property] = {}


def register_property(name: str, function: Property) -> None:
    """Measure the attractor strength of ``function`` (constitution text -> float) too, as property ``name``."""
    if not name or name in BUILT_IN or name.startswith(("distance:", "judge:")):
        raise ValueError(f"property {name!r}: a built-in name; choose another")
    _REGISTRY[name] = function


def registered() -> dict[str, Property]:
    return dict(_REGISTRY)


def unregister_property(name: str) -> None:
    _REGISTRY.pop(name, None)


def _n_principles(principles: tuple[str, ...]) -> float:
    return float(len(principles))


def _mean_words(principles: tuple[str, ...]) -> float:
    return sum(len(p.split()) for p in principles) / len(principles) if principles else 0.0


BUILT_IN: dict[str, Callable[[tuple[str, ...]], float]] = {"n_principles": _n_principles,
                                                           "mean_principle_words": _mean_words}
NodeValue = Callable[[str], float | None]  # node hash -> value (None: not measured)


def node_properties(corpus: Corpus, node_vectors: Mapping[str, np.ndarray] | None = None,
                    references: Mapping[str, np.ndarray] | None = None,
                    judgements: StoredJudgements | None = None) -> dict[str, NodeValue]:
    """Every property this selection can measure, as a function of a node (see the module)."""
    def of_principles(f: Callable[[tuple[str, ...]], float]) -> NodeValue:
        return lambda node: f(corpus.principles[node])

    def distance_to(reference: np.ndarray, vectors: Mapping[str, np.ndarray]) -> NodeValue:
        return lambda node: float(np.clip(1.0 - vectors[node] @ reference, 0.0, 2.0))

    def of_text(f: Property) -> NodeValue:
        return lambda node: float(f(corpus.text(node)))

    out: dict[str, NodeValue] = {name: of_principles(f) for name, f in BUILT_IN.items()}
    if node_vectors is not None:
        for name, vector in (references or {}).items():
            out[f"distance:{name}"] = distance_to(vector, node_vectors)
    if judgements is not None:
        stored = judgements

        def contradiction(node: str) -> float | None:
            found = stored.verdict("contradiction", (node,))
            return None if found is None else float(found.verdict == "contradiction")
        out["judge:contradiction"] = contradiction
    for name, function in _REGISTRY.items():
        out[name] = of_text(function)
    return out


def _fit(x: np.ndarray, y: np.ndarray) -> tuple[float, float] | None:
    """(intercept, slope) of y on x by least squares; None when x does not vary."""
    dx = x - x.mean()
    sxx = float(dx @ dx)
    if sxx <= 1e-12 * max(1.0, float(np.abs(x).max()) ** 2):
        return None
    slope = float(dx @ (y - y.mean())) / sxx
    return float(y.mean() - slope * x.mean()), slope


def _derived(intercept: float, slope: float) -> tuple[float, float, float | None]:
    """(slope, strength, position)."""
    position = intercept / (1.0 - slope) if abs(1.0 - slope) > 1e-9 else None
    return slope, 1.0 - abs(slope), position


def _r(value: float | None) -> float | None:
    return None if value is None or not np.isfinite(value) else round(float(value), 6)


def strength_of(x: Sequence[float], y: Sequence[float], starts: Sequence[str]) -> dict[str, Estimate]:
    """Slope, strength and position of y (final) on x (start) with delete-one-start jackknife-t intervals."""
    xa, ya = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    labels = list(dict.fromkeys(starts))
    k, n = len(labels), len(xa)
    fit = _fit(xa, ya)
    if fit is None:
        empty = Estimate(estimate=None, n=n, clusters=k, note="the starting values do not vary: no slope")
        return {"slope": empty, "strength": empty, "position": empty}
    point = _derived(*fit)
    position_note = None if point[2] is not None else "slope 1: every value is its own fixed point, no position"
    if k < MIN_STARTS:
        note = f"{k} start(s): no interval below {MIN_STARTS} starts"
        return {name: Estimate(estimate=_r(value), n=n, clusters=k, method="least-squares",
                               note=position_note if name == "position" and position_note else note)
                for name, value in zip(("slope", "strength", "position"), point, strict=True)}
    index = np.asarray([labels.index(s) for s in starts])
    replicates: list[tuple[float, float, float | None]] = []
    fits: list[tuple[float, float]] = []
    for g in range(k):
        keep = index != g
        found = _fit(xa[keep], ya[keep])
        if found is None:
            break
        fits.append(found)
        replicates.append(_derived(*found))
    t = float(t_quantile(k - 1))
    out = {}
    for j, name in enumerate(("slope", "strength", "position")):
        value = point[j]
        draws = [r[j] for r in replicates]
        if value is None:
            out[name] = Estimate(estimate=None, n=n, clusters=k, note=position_note)
            continue
        if len(draws) < k or any(d is None for d in draws):
            out[name] = Estimate(estimate=_r(value), n=n, clusters=k, method="least-squares",
                                 note="a start left out leaves the starting values constant (or slope 1): "
                                      "no jackknife interval")
            continue
        d = np.asarray(draws, dtype=float)
        se = float(np.sqrt((k - 1) / k * ((d - d.mean()) ** 2).sum()))
        p_value = None
        if name == "slope" and se > 0:
            from scipy.stats import t as student

            p_value = _r(float(2 * student.sf(abs((value - 1.0) / se), k - 1)))
        out[name] = Estimate(estimate=_r(value), low=_r(value - t * se), high=_r(value + t * se), n=n, clusters=k,
                             method="jackknife-t", p_value=p_value,
                             note="H0 of the p-value: slope 1 (no attraction)" if name == "slope" else None)
    if point[2] is not None and len(fits) == k:
        out["position"] = _fieller(fit, fits, t, n, k)
    return out


def _fieller(fit: tuple[float, float], fits: list[tuple[float, float]], t: float, n: int, k: int) -> Estimate:
    """The position intercept / (1 − slope) with Fieller's interval for a ratio, on the delete-one-start jackknife
    covariance of (intercept, 1 − slope): every θ with (u − θv)² ≤ t² Var(u − θv). Unbounded (no interval) where
    1 − slope is not distinguishable from 0 at this level."""
    u, v = fit[0], 1.0 - fit[1]
    draws = np.array([[a, 1.0 - b] for a, b in fits])
    centred = draws - draws.mean(axis=0)
    cov = (k - 1) / k * centred.T @ centred
    qa = v * v - t * t * cov[1, 1]
    qb = -2.0 * (u * v - t * t * cov[0, 1])
    qc = u * u - t * t * cov[0, 0]
    position = u / v
    if qa <= 0:
        return Estimate(estimate=_r(position), n=n, clusters=k, method="jackknife-fieller",
                        note="the slope is not distinguishable from 1: the position's interval is unbounded")
    root = float(np.sqrt(max(qb * qb - 4 * qa * qc, 0.0)))
    low, high = (-qb - root) / (2 * qa), (-qb + root) / (2 * qa)
    return Estimate(estimate=_r(position), low=_r(min(low, position)), high=_r(max(high, position)), n=n, clusters=k,
                    method="jackknife-fieller")


def _eligible(chain: RunChain) -> bool:
    return chain.chain and not chain.control and chain.no_verdict is None and len(chain.usable) >= 1


def answer(data: FindingsData) -> list[Finding] | Unanswerable:
    """Question 5 for ``stability findings``: every property the selection measures (the nodes' and references'
    vectors, the ``--judge``'s stored verdicts), per model and protocol with at least ``MIN_STARTS`` starts."""
    found = of_corpus(data.corpus, data.vectors.nodes, data.vectors.references, data.judgements)
    if isinstance(found, Unanswerable):
        return found
    kept = [f for f in found if (f.slope.clusters if f.slope is not None else 0) >= MIN_STARTS]
    if not kept:
        return Unanswerable(question="attractor-strength", reason=f"fewer than {MIN_STARTS} starts per model and "
                            "protocol: no interval for the slope of final on starting value")
    return kept


def of_corpus(corpus: Corpus, node_vectors: Mapping[str, np.ndarray] | None = None,
              references: Mapping[str, np.ndarray] | None = None, judgements: StoredJudgements | None = None
              ) -> list[Finding] | Unanswerable:
    """One finding per property and (model, protocol) group of finished chain runs (see the module), from two
    starts on (below ``MIN_STARTS``, without an interval)."""
    runs = [chain for chain in corpus.runs if _eligible(chain)]
    if not runs:
        return Unanswerable(question="attractor-strength", reason="no finished chain run: no final values")
    properties = node_properties(corpus, node_vectors, references, judgements)
    groups: dict[tuple[str, str], list[RunChain]] = {}
    for chain in runs:
        groups.setdefault((chain.config.get("model", chain.model), chain.protocol), []).append(chain)
    if all(len({c.start for c in members}) < 2 for members in groups.values()):
        return Unanswerable(question="attractor-strength",
                            reason="one start per model and protocol: no regression of final on starting value")
    findings = []
    for (model, protocol), members in sorted(groups.items()):
        for name, value_of in properties.items():
            finding = _finding({"model": model, "protocol": protocol}, name, value_of, members)
            if finding is not None:
                findings.append(finding)
    return findings


def _finding(key: dict[str, Any], name: str, value_of: NodeValue, members: list[RunChain]) -> Finding | None:
    points = []
    for chain in members:
        x, y = value_of(chain.start), value_of(chain.final)
        if x is not None and y is not None and np.isfinite(x) and np.isfinite(y):
            points.append((float(x), float(y), chain.start))
    if len({p[2] for p in points}) < 2:
        return None
    estimates = strength_of([p[0] for p in points], [p[1] for p in points], [p[2] for p in points])
    strength = estimates["strength"]
    fitted = _fit(np.array([p[0] for p in points]), np.array([p[1] for p in points]))
    return Finding(question="attractor-strength", measure="attractor_strength", property=name,
                   groups=[GroupEstimate(group=key, **strength.model_dump())], slope=estimates["slope"],
                   strength=strength, position=estimates["position"],
                   figure={"kind": "attractor-scatter", "columns": ["start_value", "final_value", "start"],
                           "points": [[round(x, 6), round(y, 6), s] for x, y, s in points],
                           "fit": None if fitted is None else {"intercept": _r(fitted[0]), "slope": _r(fitted[1])}})
