"""Question 1: how likely is a model to swap a given principle?

(a) From ``rate-alternatives`` runs (principle mode): each trial is a step whose decision is ``changed`` (the
favourite, or the free replacement, is not the current principle: a swap) or ``declined`` (the status quo kept);
trials that failed (parse failure, truncated, error) are not counted.

- ``swap_rate``: per model, principle (its text in the starting constitution), ``reflect`` (none: rate at once;
  first: reflect first) and ``source`` (provided alternatives, or a free replacement): swaps / answered trials,
  with Wilson's interval over the trials of one run and ``wilson-t`` over runs (the clusters: a run's trials
  share its seed and its shuffles) with more (:func:`stability.analysis.stats.rate`).
- ``swap_rate_difference``: reflect-first − immediate and free − provided, paired by principle and seed (the
  difference per (principle, seed) pair is the datum; :func:`stability.analysis.contrasts.share_contrast`,
  ``paired-t`` over pairs with at least 2, else Welch), with a p-value.

(b) From iteration runs: principle survival (:mod:`.principle_survival`), per model and protocol.

``answer(data)`` (what ``stability findings`` calls) answers both halves, each question with its findings or its
own :class:`Unanswerable`; ``of_corpus(corpus, principle_vectors, reworded_threshold)`` returns every finding of
either half, or one :class:`Unanswerable` when the selection has neither kind of run; ``swap_answer`` and
``survival_answer`` answer each half alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from stability.analysis.alignment import DEFAULT_REWORDED_THRESHOLD
from stability.analysis.contrasts import ContrastEstimate, share_contrast
from stability.analysis.corpus import Corpus, RunChain
from stability.analysis.findings.data import FindingsData
from stability.analysis.findings.principle_survival import Life, lives, survival_findings
from stability.analysis.findings.record import Estimate, Finding, GroupEstimate, Unanswerable
from stability.analysis.stats import rate

RATE_ALTERNATIVES = "rate-alternatives"
ANSWERED = ("changed", "declined")


def _options(chain: RunChain) -> dict[str, Any]:
    return chain.config.get("options") or {}


def swap_trials(chain: RunChain, corpus: Corpus) -> tuple[dict[str, Any], list[float]] | None:
    """A principle-mode rate-alternatives run's key (model, principle, reflect, source, seed) and its trials
    (1.0 a swap, 0.0 kept); None for any other run."""
    if chain.protocol != RATE_ALTERNATIVES:
        return None
    options = _options(chain)
    if options.get("mode", "principle") != "principle":
        return None
    texts = corpus.principles.get(chain.start, ())
    index = int(options.get("principle", 1))
    if not 1 <= index <= len(texts):
        return None
    key = {"model": chain.config.get("model", chain.model), "principle": texts[index - 1],
           "reflect": options.get("reflect", "none"), "source": options.get("source", "provided"),
           "seed": chain.config.get("seed", 0)}
    trials = [1.0 if v.decision == "changed" else 0.0 for v in chain.visits[1:] if v.decision in ANSWERED]
    return key, trials


def _estimate(c: ContrastEstimate) -> Estimate:
    return Estimate(estimate=c.mean, low=c.low, high=c.high, n=c.n, clusters=c.starts, method=c.method,
                    p_value=c.p_value, note=c.note)


def _contrasts(runs: list[tuple[dict[str, Any], list[float]]], factor: str, a: str, b: str) -> list[Finding]:
    """``factor`` a − b of the swap rate, paired by (principle, seed), within each model and other variant."""
    other = "source" if factor == "reflect" else "reflect"
    y = np.array([sum(t) for _, t in runs])
    n = np.array([float(len(t)) for _, t in runs])
    strata: dict[tuple[Any, Any], dict[str, dict[str, list[int]]]] = {}
    for i, (key, _) in enumerate(runs):
        side = strata.setdefault((key["model"], key[other]), {a: {}, b: {}})
        if key[factor] in side:
            side[key[factor]].setdefault(f"{key['principle']}\x00{key['seed']}", []).append(i)
    out = []
    for (model, variant), sides in sorted(strata.items(), key=str):
        if not sides[a] or not sides[b]:
            continue
        contrast = share_contrast(y, n, sides[a], sides[b])
        out.append(Finding(question="principle-swap", measure="swap_rate_difference", contrast=_estimate(contrast),
                           contrast_of=({"model": model, other: variant, factor: a},
                                        {"model": model, other: variant, factor: b}),
                           note="paired by principle and seed where both sides have them"))
    return out


def swap_findings(corpus: Corpus) -> list[Finding]:
    """Swap rates per principle and variant, and the paired contrasts (see the module); [] without such runs."""
    runs = [found for chain in corpus.runs if (found := swap_trials(chain, corpus)) is not None and found[1]]
    if not runs:
        return []
    grouped: dict[tuple[Any, ...], list[list[float]]] = {}
    for key, trials in runs:
        grouped.setdefault((key["model"], key["principle"], key["reflect"], key["source"]), []).append(trials)
    groups = []
    for (model, principle, reflect, source), clusters in sorted(grouped.items(), key=str):
        share = rate(clusters)
        groups.append(GroupEstimate(group={"model": model, "principle": principle, "reflect": reflect,
                                           "source": source},
                                    estimate=share.mean, low=share.low, high=share.high, n=share.n,
                                    clusters=share.clusters or 0, method=share.method or "none",
                                    note=share.warning))
    figure = {"kind": "swap-rates", "rows": [
        {**g.group, "estimate": g.estimate, "low": g.low, "high": g.high} for g in groups]}
    return [Finding(question="principle-swap", measure="swap_rate", groups=groups, figure=figure,
                    note="swaps (favourite or free replacement is not the current principle) over answered trials"),
            *_contrasts(runs, "reflect", "first", "none"), *_contrasts(runs, "source", "free", "provided")]


def swap_answer(corpus: Corpus) -> list[Finding] | Unanswerable:
    """Question 1a alone: swap rates and their paired contrasts."""
    return swap_findings(corpus) or Unanswerable(
        question="principle-swap", reason="no rate-alternatives run in principle mode with an answered trial")


def survival_answer(corpus: Corpus, principle_vectors: Mapping[str, np.ndarray],
                    reworded_threshold: float = DEFAULT_REWORDED_THRESHOLD) -> list[Finding] | Unanswerable:
    """Question 1b alone: principle survival per model and protocol."""
    by_group: dict[tuple[str, str], list[Life]] = {}
    for life in lives(corpus, principle_vectors, reworded_threshold):
        by_group.setdefault((life.model, life.protocol), []).append(life)
    findings = [finding for (model, protocol), followed in sorted(by_group.items())
                for finding in survival_findings(followed, {"model": model, "protocol": protocol})]
    return findings or Unanswerable(question="principle-survival",
                                    reason="no chain run that took a step: no principle to follow")


def answer(data: FindingsData) -> list[Finding | Unanswerable]:
    """Question 1 for ``stability findings``: swaps (1a) and survival (1b), each half its findings or why the
    selection cannot answer it (the principles embedded once, with the analysis's reworded threshold)."""
    out: list[Finding | Unanswerable] = []
    for part in (swap_answer(data.corpus),
                 survival_answer(data.corpus, data.vectors.principles, data.params.reworded_threshold)):
        out += [part] if isinstance(part, Unanswerable) else part
    return out


def of_corpus(corpus: Corpus, principle_vectors: Mapping[str, np.ndarray],
              reworded_threshold: float = DEFAULT_REWORDED_THRESHOLD) -> list[Finding] | Unanswerable:
    """Question 1's findings over ``corpus``: swap rates from rate-alternatives runs and principle survival from
    chain runs (``principle_vectors``: unit vectors of every principle text, as the analysis embeds them). To
    report which half the design cannot answer, call :func:`swap_answer` and :func:`survival_answer`."""
    found = [part for part in (swap_answer(corpus), survival_answer(corpus, principle_vectors, reworded_threshold))
             if isinstance(part, list)]
    if not found:
        return Unanswerable(question="principle-swap", reason="no rate-alternatives run in principle mode and no "
                            "chain run that took a step: nothing to measure a principle's swaps or survival on")
    return [finding for part in found for finding in part]
