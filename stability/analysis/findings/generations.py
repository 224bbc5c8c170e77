"""Question 7, fine-tune-reflect: does the model become more stable over generations?

A *lineage* is one fine-tune-reflect run; its *arm* is its ``control`` option (``none``: the treatment;
``no-training``, ``neutral-constitution``, ``off-topic``: the controls). Lineages of different arms are paired by
their starting constitution and seed (``pair``), as the controls spec runs every arm on the same seeds.

Per arm and generation g (:class:`GenerationRow`, read from the stored generation summaries):

- ``decline_rate``: traces that kept the constitution (declines, or the same list back) over parsed traces,
  Wilson over one lineage's traces, ``wilson-t`` over lineages with more (:func:`stability.analysis.stats.rate`);
- ``step_distance``: cosine distance between generation g's constitution before and after its reflection;
- ``origin_distance``: cosine distance from generation g's resulting constitution to generation 0's starting one;
- ``heldout_decline_rate``: the same share over the held-out phrasings (never trained on), where asked.

Distances are means over lineages with a t interval on k − 1 degrees of freedom (k lineages; the leave-one-out
jackknife of a mean is exactly this).

Trend: per arm and measure, the least-squares slope per generation of the per-lineage values (rates weighted by
their parsed traces, so it is the slope over traces), with a delete-one-lineage jackknife-t interval (t on k − 1
df; no interval below 3 lineages) and a p-value for slope 0. Controls: per control arm and generation, the
treatment − control difference of the decline rate (:func:`stability.analysis.contrasts.share_contrast`, paired by
``pair`` where both arms have at least 2 pairs), and the difference of their decline trends (delete-one-pair
jackknife when paired, else each side's jackknife variance added, Welch–Satterthwaite df).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict
from scipy.stats import t as student

from stability.analysis.contrasts import share_contrast
from stability.analysis.findings.data import FindingsData
from stability.analysis.findings.record import Estimate, Finding, GroupEstimate, Unanswerable
from stability.analysis.intervals import t_quantile
from stability.analysis.stats import rate
from stability.store.store import Store

PROTOCOL = "fine-tune-reflect"
TREATMENT = "none"
CONTROLS = ("no-training", "neutral-constitution", "off-topic")
MIN_LINEAGES = 3
HELD_OUT = re.compile(r"held-out (\d+): (\d+) kept, (\d+) changed")


class GenerationRow(BaseModel):
    """One generation of one lineage, the unit every measure of question 7 is over."""

    model_config = ConfigDict(extra="forbid")

    lineage: str  # the run id
    arm: str  # none (treatment) | no-training | neutral-constitution | off-topic
    pair: str  # starting constitution and seed: what pairs lineages across arms
    model: str = ""
    generation: int
    parsed: int  # traces that declined or revised
    changed: int  # of those, traces proposing a change
    step_distance: float | None = None
    origin_distance: float | None = None
    heldout_parsed: int = 0
    heldout_changed: int = 0


Distance = Callable[[str, str], float | None]


def cosine_distance(node_vectors: Mapping[str, np.ndarray]) -> Distance:
    """The embedding distance between two constitution hashes (``1 − cos`` of their unit vectors, as every other
    measure's), for :func:`generation_rows`; None where either was not embedded."""
    def distance(a: str, b: str) -> float | None:
        if a not in node_vectors or b not in node_vectors:
            return None
        return round(float(np.clip(1.0 - node_vectors[a] @ node_vectors[b], 0.0, 2.0)), 6)
    return distance


def answer(data: FindingsData) -> list[Finding] | Unanswerable:
    """Question 7 for ``stability findings``: the generation rows of the selection's fine-tune-reflect runs (read
    from ``data.db`` only when there are any), their distances by the analysis's node vectors."""
    run_ids = [c.run_id for c in data.corpus.runs if c.protocol == PROTOCOL]
    if not run_ids:
        return Unanswerable(question="fine-tune-generations", reason="no fine-tune-reflect run: no generations")
    return of_rows(generation_rows(data.db, run_ids, cosine_distance(data.vectors.nodes)))


def generation_rows(db: Path | str | None, run_ids: Sequence[str],
                    distance: Distance | None = None) -> list[GenerationRow]:
    """The generation summaries of the fine-tune-reflect runs among ``run_ids`` (read-only); ``distance``: between
    two constitution hashes (the analysis passes the embedding cosine distance)."""
    rows = []
    with Store.open(db, read_only=True) as store:
        for run_id in run_ids:
            run = store.run(run_id)
            if run.protocol != PROTOCOL:
                continue
            generations = store.generations(run_id)
            if not generations:
                continue
            details = {r.id: r.detail or "" for r in store.revisions(run_id)}
            options = run.config.get("options") or {}
            origin = generations[0].previous_hash
            for g in generations:
                held = HELD_OUT.search(details.get(g.revision_id, ""))
                rows.append(GenerationRow(
                    lineage=run_id, arm=str(options.get("control", TREATMENT)),
                    pair=f"{origin}:{run.config.get('seed', 0)}", model=run.model, generation=g.generation,
                    parsed=g.n_parsed, changed=g.n_changed,
                    step_distance=distance(g.previous_hash, g.constitution_hash) if distance else None,
                    origin_distance=distance(origin, g.constitution_hash) if distance else None,
                    heldout_parsed=int(held.group(2)) + int(held.group(3)) if held else 0,
                    heldout_changed=int(held.group(3)) if held else 0))
    return rows


def _r(value: float | None) -> float | None:
    return None if value is None or not np.isfinite(value) else round(float(value), 6)


# A measure: (successes, trials) for a rate, or (value, 1) for a mean; None where the row has none.
Value = Callable[[GenerationRow], tuple[float, float] | None]
MEASURES: dict[str, tuple[Value, bool]] = {  # name -> (value, is a rate)
    "decline_rate": (lambda r: (r.parsed - r.changed, r.parsed) if r.parsed else None, True),
    "step_distance": (lambda r: (r.step_distance, 1.0) if r.step_distance is not None else None, False),
    "origin_distance": (lambda r: (r.origin_distance, 1.0) if r.origin_distance is not None else None, False),
    "heldout_decline_rate": (lambda r: (r.heldout_parsed - r.heldout_changed, r.heldout_parsed)
                             if r.heldout_parsed else None, True),
}


def _mean(values: Sequence[float]) -> Estimate:
    k = len(values)
    mean = float(np.mean(values))
    if k < 2:
        return Estimate(estimate=_r(mean), n=k, clusters=k, method="none", note="one lineage: no interval")
    half = float(t_quantile(k - 1)) * float(np.std(values, ddof=1)) / np.sqrt(k)
    return Estimate(estimate=_r(mean), low=_r(mean - half), high=_r(mean + half), n=k, clusters=k, method="t")


def _per_generation(rows: Sequence[GenerationRow], value: Value, is_rate: bool) -> Estimate | None:
    found = [v for v in (value(r) for r in rows) if v is not None]
    if not found:
        return None
    if is_rate:
        share = rate([[v[0]] for v in found], [[v[1]] for v in found])
        return Estimate(estimate=share.mean, low=share.low, high=share.high, n=share.n, clusters=share.clusters or 0,
                        method=share.method or "none", note=share.warning)
    return _mean([v[0] for v in found])


def _slope(points: Sequence[tuple[float, float, float]]) -> float | None:
    """Weighted least-squares slope of y on x over (x, y, weight)."""
    if not points:
        return None
    x, y, w = (np.array([p[i] for p in points], dtype=float) for i in range(3))
    if w.sum() <= 0:
        return None
    mx, my = (w @ x) / w.sum(), (w @ y) / w.sum()
    sxx = float(w @ (x - mx) ** 2)
    return None if sxx <= 1e-12 else float(w @ ((x - mx) * (y - my))) / sxx


def _points(rows: Sequence[GenerationRow], value: Value) -> dict[str, list[tuple[float, float, float]]]:
    """Per lineage: (generation, value, weight)."""
    out: dict[str, list[tuple[float, float, float]]] = {}
    for row in rows:
        v = value(row)
        if v is not None and v[1] > 0:
            out.setdefault(row.lineage, []).append((float(row.generation), v[0] / v[1], v[1]))
    return out


def _jackknife(point: float | None, draws: list[float | None], df: float) -> tuple[float | None, float | None]:
    """(se, df) of a delete-one-cluster jackknife; (None, None) where a draw is undefined."""
    if point is None or len(draws) < 2 or any(d is None for d in draws):
        return None, None
    d = np.asarray(draws, dtype=float)
    k = len(d)
    return float(np.sqrt((k - 1) / k * ((d - d.mean()) ** 2).sum())), df


def _t_estimate(value: float | None, se: float | None, df: float | None, n: int, clusters: int, note: str | None
                ) -> Estimate:
    if value is None or se is None or df is None or df < 1 or clusters < MIN_LINEAGES:
        why = note or (f"{clusters} lineage(s): no interval below {MIN_LINEAGES}" if value is not None else
                       "no slope: the generations do not vary")
        return Estimate(estimate=_r(value), n=n, clusters=clusters, method="least-squares", note=why)
    half = float(t_quantile(df)) * se
    p_value = _r(float(2 * student.sf(abs(value / se), df))) if se > 0 else None
    return Estimate(estimate=_r(value), low=_r(value - half), high=_r(value + half), n=n, clusters=clusters,
                    method="jackknife-t", p_value=p_value, note=note)


def trend(rows: Sequence[GenerationRow], value: Value) -> Estimate:
    """Slope per generation, delete-one-lineage jackknife-t (see the module)."""
    by_lineage = _points(rows, value)
    flat = [p for ps in by_lineage.values() for p in ps]
    point = _slope(flat)
    lineages = list(by_lineage)
    draws = [_slope([p for other in lineages if other != out for p in by_lineage[other]]) for out in lineages]
    se, df = _jackknife(point, draws, len(lineages) - 1.0)
    return _t_estimate(point, se, df, len(flat), len(lineages), None)


def _slope_difference(a: Sequence[GenerationRow], b: Sequence[GenerationRow], value: Value) -> Estimate:
    """Trend of a − trend of b: paired by ``pair`` when both have the same pairs, else independent."""
    pa, pb = _points(a, value), _points(b, value)
    pair_a = {r.lineage: r.pair for r in a}
    pair_b = {r.lineage: r.pair for r in b}
    flat_a = [p for ps in pa.values() for p in ps]
    flat_b = [p for ps in pb.values() for p in ps]
    sa, sb = _slope(flat_a), _slope(flat_b)
    point = None if sa is None or sb is None else sa - sb
    n = len(flat_a) + len(flat_b)
    pairs = sorted({pair_a[lin] for lin in pa})
    if pairs == sorted({pair_b[lin] for lin in pb}) and len(pairs) >= MIN_LINEAGES:
        draws: list[float | None] = []
        for out in pairs:
            da = _slope([p for lin, ps in pa.items() if pair_a[lin] != out for p in ps])
            db = _slope([p for lin, ps in pb.items() if pair_b[lin] != out for p in ps])
            draws.append(None if da is None or db is None else da - db)
        se, df = _jackknife(point, draws, len(pairs) - 1.0)
        estimate = _t_estimate(point, se, df, n, len(pairs), None)
        return estimate.model_copy(update={"method": f"paired {estimate.method}"}) if se is not None else estimate
    parts = []
    for points in (pa, pb):
        lineages = list(points)
        whole = _slope([p for ps in points.values() for p in ps])
        draws = [_slope([p for other in lineages if other != out for p in points[other]]) for out in lineages]
        parts.append(_jackknife(whole, draws, len(lineages) - 1.0))
    if any(se is None for se, _ in parts):
        return _t_estimate(point, None, None, n, min(len(pa), len(pb)), "too few lineages on a side: no interval")
    variance = sum(se**2 for se, _ in parts if se is not None)
    denominator = sum(se**4 / df for se, df in parts if se is not None and df)
    df = variance**2 / denominator if denominator > 0 else None
    return _t_estimate(point, float(np.sqrt(variance)), df, n, min(len(pa), len(pb)), None)


def of_rows(rows: Sequence[GenerationRow]) -> list[Finding] | Unanswerable:
    """Question 7's findings over the generation rows of a selection's fine-tune-reflect runs."""
    if not rows:
        return Unanswerable(question="fine-tune-generations", reason="no fine-tune-reflect generation stored")
    if max(r.generation for r in rows) == min(r.generation for r in rows):
        return Unanswerable(question="fine-tune-generations", reason="one generation: no trend over generations")
    models: dict[str, list[GenerationRow]] = {}
    for row in rows:
        models.setdefault(row.model, []).append(row)
    return [finding for model, members in sorted(models.items()) for finding in _of_model(model, members)]


def _of_model(model: str, rows: Sequence[GenerationRow]) -> list[Finding]:
    """Every finding of one model's lineages: per arm and generation, trends, controls against the treatment."""
    arms: dict[str, list[GenerationRow]] = {}
    for row in rows:
        arms.setdefault(row.arm, []).append(row)
    findings: list[Finding] = []
    for name, (value, is_rate) in MEASURES.items():
        groups: list[GroupEstimate] = []
        for arm, members in sorted(arms.items()):
            for generation in sorted({r.generation for r in members}):
                found = _per_generation([r for r in members if r.generation == generation], value, is_rate)
                if found is not None:
                    groups.append(GroupEstimate(group={"model": model, "arm": arm, "generation": generation},
                                                **found.model_dump()))
        if not groups:
            continue
        findings.append(Finding(question="fine-tune-generations", measure=name, groups=groups, figure={
            "kind": "per-generation", "series": {arm: [[g.group["generation"], g.estimate, g.low, g.high]
                                                       for g in groups if g.group["arm"] == arm] for arm in arms},
            "columns": ["generation", "estimate", "low", "high"], "model": model}))
        for arm, members in sorted(arms.items()):
            slope = trend(members, value)
            if slope.n:  # the arm has this measure at all
                findings.append(Finding(question="fine-tune-generations", measure=f"{name}_trend",
                                        groups=[GroupEstimate(group={"model": model, "arm": arm},
                                                              **slope.model_dump())],
                                        note="slope per generation, clustered by lineage"))
    findings += _control_contrasts(model, arms)
    return findings


def _control_contrasts(model: str, arms: Mapping[str, list[GenerationRow]]) -> list[Finding]:
    treatment = arms.get(TREATMENT)
    if not treatment:
        return []
    value = MEASURES["decline_rate"][0]
    findings = []
    for control in CONTROLS:
        other = arms.get(control)
        if not other:
            continue
        rows = [*treatment, *other]
        y = np.array([float(r.parsed - r.changed) for r in rows])
        n = np.array([float(r.parsed) for r in rows])
        for generation in sorted({r.generation for r in treatment} & {r.generation for r in other}):
            sides: list[dict[str, list[int]]] = [{}, {}]
            for i, row in enumerate(rows):
                if row.generation == generation:
                    sides[0 if row.arm == TREATMENT else 1].setdefault(row.pair, []).append(i)
            c = share_contrast(y, n, sides[0], sides[1])
            findings.append(Finding(
                question="fine-tune-generations", measure="decline_rate_difference",
                contrast=Estimate(estimate=c.mean, low=c.low, high=c.high, n=c.n, clusters=c.starts, method=c.method,
                                  p_value=c.p_value, note=c.note),
                contrast_of=({"model": model, "arm": TREATMENT, "generation": generation},
                             {"model": model, "arm": control, "generation": generation})))
        findings.append(Finding(question="fine-tune-generations", measure="decline_rate_trend_difference",
                                contrast=_slope_difference(treatment, other, value),
                                contrast_of=({"model": model, "arm": TREATMENT}, {"model": model, "arm": control}),
                                note="treatment's slope per generation minus the control's"))
    return findings
