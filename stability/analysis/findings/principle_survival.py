"""Question 1b: principle survival. Each starting principle followed through its run's chain until it is removed.

Every chain run (iteration protocols; drift-null controls left out) is walked along its usable visits. At each
step whose node differs from the previous one, the two principle lists are aligned
(:func:`stability.analysis.alignment.align`, the same alignment every other measure uses): a tracked principle
that is *kept* or *moved* keeps its identity at its new position; one that is *reworded* keeps it too (and is
marked reworded); one that is *removed* dies at that step (the event). A principle still there at the run's last
step is censored there. A parse failure or truncated answer holds the node, so nothing changes on it.

Estimates (``FIXED`` is the one cause, so the Aalen–Johansen incidence is 1 − Kaplan–Meier survival and the
intervals of :mod:`stability.analysis.incidence` apply):

- ``survival``: per principle (its starting text) and per kind of principle (``position``: first, middle, last;
  ``clash``: on a side of a planted clash, or not; ``condition``, and ``style``, ``main``, ``similarity`` where
  the starts differ in them: the library's tags of its constitution), the
  share of principles not yet removed at one common step for every group (``at_step``: the earliest censoring
  step of all principles, so every outcome up to it is known, and groups compare at the same step), with the
  leave-one-cluster-out jackknife-t interval on the logit scale (Wilson where there is one cluster or the share
  is 0 or 1). Clusters are the starting constitutions when there are at least two, else the
  runs (one start: principles of one run share it).
- ``hazard_ratio``: cause-specific hazard of removal, clash sides against the others and last against first
  position (Mantel–Haenszel over steps, jackknife-t over clusters on the log scale, paired when both sides have
  the same clusters), with a p-value.
- ``reworded_rather_than_removed``: per principle, among its runs in which it changed (reworded or removed), the
  share in which it was reworded and never removed (Wilson / ``wilson-t`` over clusters).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple

import numpy as np

from stability.analysis.alignment import DEFAULT_REWORDED_THRESHOLD, fates
from stability.analysis.consistency import condition_of
from stability.analysis.corpus import Corpus, RunChain
from stability.analysis.findings.record import Estimate, Finding, GroupEstimate, Question
from stability.analysis.incidence import CENSORED, FIXED, cause_at, contrast_of, horizon
from stability.analysis.stats import kaplan_meier, rate

QUESTION: Question = "principle-survival"
#: library tags (front matter of the starting file) a survival curve is drawn by, when the starts differ in them
TAGS = ("style", "main", "similarity")


class Life(NamedTuple):
    """One starting principle in one run: when it was removed (or censored), and whether it was reworded first."""

    run_id: str
    start: str
    place: int  # 0-based position in the starting constitution
    text: str
    size: int  # principles in the starting constitution
    time: int  # step of removal, else the run's last step
    removed: bool
    reworded: bool
    clash: bool  # on a side of a planted clash (the start's metadata)
    condition: str
    tags: tuple[tuple[str, str], ...] = ()  # the start's other library tags (TAGS) that it has
    model: str = ""
    protocol: str = ""

    @property
    def position(self) -> str:
        if self.size == 1:
            return "only"
        return "first" if self.place == 0 else "last" if self.place == self.size - 1 else "middle"


def _clash_sides(metadata: Mapping[str, object] | None, size: int) -> set[int]:
    sides: set[int] = set()
    listed = (metadata or {}).get("clashes")
    for clash in listed if isinstance(listed, list) else []:
        if isinstance(clash, Mapping):
            for side in ("a", "b"):
                value = clash.get(side)
                if isinstance(value, int) and 1 <= value <= size:
                    sides.add(value - 1)
    return sides


def follow(chain: RunChain, corpus: Corpus, vectors: Mapping[str, np.ndarray], threshold: float,
           cache: dict[tuple[str, str], list[int | None]]) -> list[Life]:
    """Every starting principle of ``chain`` followed to its removal or the run's last usable step."""
    usable = chain.usable
    start = usable[0].node
    texts = corpus.principles.get(start, ())
    if len(usable) < 2 or not texts:
        return []
    where = {i: i for i in range(len(texts))}  # starting index -> position in the current node
    died: dict[int, int] = {}
    reworded: set[int] = set()
    previous = start
    for visit in usable[1:]:
        if visit.node != previous:
            key = (previous, visit.node)
            before, now = corpus.principles[previous], corpus.principles[visit.node]
            fate = cache.get(key)
            if fate is None:
                fate = cache[key] = fates(before, now, vectors, threshold)
            for index, position in list(where.items()):
                after = fate[position]
                if after is None:  # removed
                    died[index] = visit.step
                    del where[index]
                else:  # kept or moved (the same text), or reworded
                    if now[after] != before[position]:
                        reworded.add(index)
                    where[index] = after
            previous = visit.node
        if not where:
            break
    last = usable[-1].step
    metadata = corpus.metadata.get(start)
    sides = _clash_sides(metadata, len(texts))
    condition = condition_of(metadata) or "unlabelled"
    tags = tuple((tag, str(metadata[tag])) for tag in TAGS if metadata and metadata.get(tag) not in (None, ""))
    return [Life(run_id=chain.run_id, start=start, place=i, text=text, size=len(texts), time=died.get(i, last),
                 removed=i in died, reworded=i in reworded, clash=i in sides, condition=condition, tags=tags,
                 model=str(chain.config.get("model", chain.model)), protocol=chain.protocol)
            for i, text in enumerate(texts)]


def lives(corpus: Corpus, vectors: Mapping[str, np.ndarray], threshold: float = DEFAULT_REWORDED_THRESHOLD
          ) -> list[Life]:
    """Every starting principle of every chain run (controls left out) that took at least one step."""
    cache: dict[tuple[str, str], list[int | None]] = {}
    return [life for chain in corpus.runs if chain.chain and not chain.control
            for life in follow(chain, corpus, vectors, threshold, cache)]


def _arrays(group: Sequence[Life], by_start: bool) -> tuple[np.ndarray, np.ndarray, list[str]]:
    times = np.array([life.time for life in group], dtype=np.int64)
    causes = np.array([FIXED if life.removed else CENSORED for life in group], dtype=np.int64)
    return times, causes, [life.start if by_start else life.run_id for life in group]


def _r(value: float | None) -> float | None:
    return None if value is None or not np.isfinite(value) else round(float(value), 6)


def _survival(key: dict[str, object], group: Sequence[Life], by_start: bool, step: int | None
              ) -> tuple[GroupEstimate, list]:
    times, causes, labels = _arrays(group, by_start)
    removed = cause_at(times, causes, labels, FIXED, step)
    estimate = None if removed.estimate is None else 1.0 - removed.estimate
    clusters = len(set(labels))
    note = None if clusters >= 3 else f"{clusters} cluster(s): the interval is wide or over runs only"
    curve = [[int(t), round(v, 6), r] for t, v, r in kaplan_meier(times, causes == FIXED)]
    out = GroupEstimate(group={**key, "at_step": step}, estimate=_r(estimate),
                        low=_r(None if removed.high is None else 1.0 - removed.high),
                        high=_r(None if removed.low is None else 1.0 - removed.low),
                        n=len(group), clusters=clusters, method=removed.method, note=note)
    return out, curve


def _grouped(items: Sequence[Life], value_of: Callable[[Life], object]) -> dict[str, list[Life]]:
    out: dict[str, list[Life]] = {}
    for life in items:
        out.setdefault(str(value_of(life)), []).append(life)
    return out


def _hazard_ratio(a: Sequence[Life], b: Sequence[Life], by_start: bool, of: tuple[dict, dict]) -> Finding:
    if not a or not b:
        return Finding(question=QUESTION, measure="hazard_ratio", contrast_of=of,
                       contrast=Estimate(estimate=None, note="no principles on one side"))
    contrast = contrast_of(_arrays(a, by_start), _arrays(b, by_start))
    ratio = contrast.hazard_ratio_fixed_point
    note = None
    if ratio is None or ratio.estimate is None:
        note = "no removal on one side up to the common step: the ratio is 0 or unbounded"
    elif ratio.low is None:
        note = "no interval: fewer than 2 clusters on a side, or one cluster holds every removal"
    method = f"Mantel-Haenszel to step {contrast.step}, jackknife-t on the log scale" + \
        (" (paired)" if contrast.paired else "")
    return Finding(question=QUESTION, measure="hazard_ratio", contrast_of=of, contrast=Estimate(
        estimate=None if ratio is None else ratio.estimate, low=None if ratio is None else ratio.low,
        high=None if ratio is None else ratio.high, n=len(a) + len(b), clusters=contrast.clusters, method=method,
        p_value=None if ratio is None else ratio.p_value, note=note),
        note="hazard of removal, a over b: above 1, a's principles are removed sooner")


def survival_findings(items: Sequence[Life], key: Mapping[str, object] | None = None) -> list[Finding]:
    """The survival, hazard-ratio and rewording findings over ``items`` (see the module); ``key`` (model and
    protocol) joins every group and contrast side."""
    key = dict(key or {})
    by_start = len({life.start for life in items}) >= 2
    step = horizon(*_arrays(items, by_start)[:2])  # one step for every group: comparable survival
    findings: list[Finding] = []
    kinds = {"principle": lambda life: life.text, "position": lambda life: life.position,
             "clash": lambda life: "clash side" if life.clash else "other",
             "condition": lambda life: life.condition}
    for tag in TAGS:
        if len({dict(life.tags).get(tag) for life in items}) >= 2:
            kinds[tag] = lambda life, tag=tag: dict(life.tags).get(tag, "(none)")  # type: ignore[misc]
    for kind, value_of in kinds.items():
        groups, curves = [], {}
        for value, group in sorted(_grouped(items, value_of).items()):
            estimate, curve = _survival({**key, kind: value}, group, by_start, step)
            groups.append(estimate)
            curves[value] = curve
        findings.append(Finding(question=QUESTION, measure="survival" if kind == "principle" else
                                f"survival_by_{kind}", groups=groups,
                                figure={"kind": "survival-curves", "by": kind, "key": key, "curves": curves,
                                        "columns": ["step", "surviving", "at_risk"]}))
    clash = [life for life in items if life.clash]
    if clash:
        findings.append(_hazard_ratio(clash, [life for life in items if not life.clash], by_start,
                                      ({**key, "clash": "clash side"}, {**key, "clash": "other"})))
    positions = _grouped(items, lambda life: life.position)
    if positions.get("first") and positions.get("last"):
        findings.append(_hazard_ratio(positions["last"], positions["first"], by_start,
                                      ({**key, "position": "last"}, {**key, "position": "first"})))
    findings.append(_reworded(items, by_start, key))
    return findings


def _reworded(items: Sequence[Life], by_start: bool, key: dict[str, object]) -> Finding:
    groups = []
    for text, group in sorted(_grouped(items, lambda life: life.text).items()):
        changed = [life for life in group if life.reworded or life.removed]
        clusters: dict[str, list[float]] = {}
        for life in changed:
            clusters.setdefault(life.start if by_start else life.run_id, []).append(
                float(life.reworded and not life.removed))
        share = rate(list(clusters.values()))
        groups.append(GroupEstimate(group={**key, "principle": text}, estimate=share.mean, low=share.low,
                                    high=share.high, n=share.n, clusters=share.clusters or 0,
                                    method=share.method or "none",
                                    note=share.warning if changed else "never changed"))
    return Finding(question=QUESTION, measure="reworded_rather_than_removed", groups=groups,
                   note="among the runs in which the principle changed, the share that reworded it and kept it")
