"""Measures from rate-alternatives: how readily a model would swap a principle, and for what.

Per target principle (or source constitution, in constitution mode) and per option: the mean rating, the
favourite rate and, where token log-probabilities were stored, the mean expected rating — each with a 95%
percentile bootstrap interval over trials. Unscored ratings (unreadable answers) are counted, never averaged in.

A Bradley–Terry ranking of the options per target: within each trial every pair of scored options with different
ratings is a win for the higher-rated one (equal ratings are half a win each). Strengths are fitted by Hunter's
MM algorithm with one tie per pair as a prior (so an option that never loses still has a finite strength) and
reported as centred log-strengths, with bootstrap intervals over trials.

Per relation (paraphrase, weaker, stronger, opposite, neutral, other-axis): mean rating and favourite rate across
all targets — what lets a report say "prefers stronger versions" or "swaps toward the opposite".
"""

from __future__ import annotations

from collections import defaultdict
from itertools import combinations

import numpy as np
from pydantic import BaseModel, ConfigDict

from stability.analysis.consistency import Interval, bootstrap
from stability.records import RatingRecord

MM_ITERATIONS = 200


class OptionPreference(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str
    relation: str | None
    shown: int
    unscored: int
    mean_rating: Interval
    favourite_rate: Interval
    expected_rating: Interval
    bradley_terry: Interval


class TargetPreferences(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: str
    target: str
    trials: int
    options: list[OptionPreference]


class RelationPreference(BaseModel):
    model_config = ConfigDict(extra="forbid")

    relation: str
    mean_rating: Interval
    favourite_rate: Interval


class Preferences(BaseModel):
    model_config = ConfigDict(extra="forbid")

    targets: list[TargetPreferences]
    by_relation: list[RelationPreference]


def bradley_terry(items: list[str], trials: list[dict[str, int]]) -> np.ndarray:
    """Centred log-strengths of ``items`` from per-trial ratings ({item: rating}), by MM with a one-tie prior."""
    index = {item: i for i, item in enumerate(items)}
    n = len(items)
    wins = np.full(n, 0.5 * (n - 1))  # the prior: half a win against every other item ...
    games = np.ones((n, n)) - np.eye(n)  # ... from one tied game per pair
    for ratings in trials:
        for a, b in combinations([x for x in ratings if x in index], 2):
            i, j = index[a], index[b]
            games[i, j] += 1
            games[j, i] += 1
            if ratings[a] == ratings[b]:
                wins[i] += 0.5
                wins[j] += 0.5
            else:
                wins[i if ratings[a] > ratings[b] else j] += 1
    strength = np.ones(n)
    for _ in range(MM_ITERATIONS):
        denominator = (games / (strength[:, None] + strength[None, :])).sum(axis=1)
        strength = wins / denominator
        strength /= np.exp(np.log(strength).mean())
    logs = np.log(strength)
    return logs - logs.mean()


def _bt_intervals(items: list[str], trials: list[dict[str, int]], resamples: int, seed: int) -> list[Interval]:
    point = bradley_terry(items, trials)
    if len(trials) < 2:
        return [Interval(mean=round(float(x), 6), low=None, high=None, n=len(trials)) for x in point]
    rng = np.random.default_rng(seed)
    draws = np.array([bradley_terry(items, [trials[k] for k in rng.integers(0, len(trials), len(trials))])
                      for _ in range(min(resamples, 500))])
    low, high = np.percentile(draws, [2.5, 97.5], axis=0)
    return [Interval(mean=round(float(p), 6), low=round(float(lo), 6), high=round(float(hi), 6), n=len(trials))
            for p, lo, hi in zip(point, low, high, strict=True)]


def preferences(ratings: list[RatingRecord], resamples: int = 2000, seed: int = 0) -> Preferences:
    by_target: dict[tuple[str, str], list[RatingRecord]] = defaultdict(list)
    for rating in ratings:
        by_target[(rating.mode, rating.target)].append(rating)
    targets = []
    relation_ratings: dict[str, list[list[float]]] = defaultdict(list)
    relation_favourites: dict[str, list[list[float]]] = defaultdict(list)
    for (mode, target), rows in sorted(by_target.items()):
        trials: dict[tuple[str, int], dict[str, RatingRecord]] = defaultdict(dict)
        for row in rows:
            trials[(row.run_id, row.trial)][row.option_text] = row
        items = sorted({row.option_text for row in rows})
        scored_trials = [{text: r.rating for text, r in trial.items() if r.rating is not None}
                         for trial in trials.values()]
        bt = _bt_intervals(items, scored_trials, resamples, seed)
        options = []
        for item, score in zip(items, bt, strict=True):
            shown = [trial[item] for trial in trials.values() if item in trial]
            rated = [[float(r.rating)] for r in shown if r.rating is not None]
            favourite = [[1.0 if r.favourite else 0.0] for r in shown]
            expected = [[r.expected_rating] for r in shown if r.expected_rating is not None]
            relation = shown[0].relation
            if relation:
                relation_ratings[relation] += rated
                relation_favourites[relation] += favourite
            options.append(OptionPreference(
                text=item, relation=relation, shown=len(shown), unscored=len(shown) - len(rated),
                mean_rating=bootstrap(rated, resamples, seed), favourite_rate=bootstrap(favourite, resamples, seed),
                expected_rating=bootstrap(expected, resamples, seed), bradley_terry=score))
        options.sort(key=lambda o: -(o.bradley_terry.mean or 0.0))
        targets.append(TargetPreferences(mode=mode, target=target, trials=len(trials), options=options))
    by_relation = [RelationPreference(relation=rel, mean_rating=bootstrap(relation_ratings[rel], resamples, seed),
                                      favourite_rate=bootstrap(relation_favourites[rel], resamples, seed))
                   for rel in sorted(relation_favourites)]
    return Preferences(targets=targets, by_relation=by_relation)
