"""Principle alignment between two constitutions: an optimal one-to-one matching on embedding similarity.

1. Identical principles (same normalised text) are matched first.
2. The rest are matched by ``scipy.optimize.linear_sum_assignment`` on cosine similarity (maximised).
   A pair is kept only if its similarity is at least ``reworded_threshold``; the principle is then *reworded*.
   Unmatched principles of the first are *removed*, of the second *added*.
3. Among matched pairs, those outside the longest run of pairs whose order is preserved (a longest increasing
   subsequence of new positions) changed their relative order: identical ones are *moved*; reworded ones stay
   *reworded* and carry ``moved=True``. Identical pairs in order are *kept*. Inserting or deleting a principle
   shifts positions but moves nothing.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict
from scipy.optimize import linear_sum_assignment

DEFAULT_REWORDED_THRESHOLD = 0.7

ChangeKind = Literal["kept", "reworded", "moved", "added", "removed"]


class PrincipleChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: ChangeKind
    before: int | None = None  # 0-based position in the first constitution
    after: int | None = None  # 0-based position in the second
    similarity: float | None = None
    moved: bool = False
    before_text: str | None = None
    after_text: str | None = None


class Alignment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reworded_threshold: float
    changes: list[PrincipleChange]

    def counts(self) -> dict[str, int]:
        out = {kind: 0 for kind in ("kept", "reworded", "moved", "added", "removed")}
        for change in self.changes:
            out[change.kind] += 1
        return out

    def successor(self) -> dict[int, int]:
        """Position in the first constitution -> position of its counterpart in the second."""
        return {c.before: c.after for c in self.changes if c.before is not None and c.after is not None}


def _in_order(pairs: list[tuple[int, int]]) -> set[tuple[int, int]]:
    """The longest subsequence of (before, after) pairs, sorted by before, whose after increases."""
    pairs = sorted(pairs)
    afters = [after for _, after in pairs]
    if afters == sorted(set(afters)):  # already strictly increasing (most edits): all of them
        return set(pairs)
    tails: list[int] = []
    tail_index: list[int] = []
    previous = [-1] * len(pairs)
    for i, (_, after) in enumerate(pairs):
        slot = bisect_left(tails, after)
        if slot == len(tails):
            tails.append(after)
            tail_index.append(i)
        else:
            tails[slot] = after
            tail_index[slot] = i
        previous[i] = tail_index[slot - 1] if slot else -1
    keep: set[tuple[int, int]] = set()
    i = tail_index[-1] if tail_index else -1
    while i >= 0:
        keep.add(pairs[i])
        i = previous[i]
    return keep


Matches = dict[int, tuple[int, float]]  # position in the first -> (position in the second, similarity)


def _pairs(before: tuple[str, ...] | list[str], after: tuple[str, ...] | list[str],
           vectors: Mapping[str, np.ndarray], reworded_threshold: float) -> Matches:
    """The matched pairs (steps 1 and 2)."""
    positions_after: dict[str, int] = {text: j for j, text in enumerate(after)}
    matched: Matches = {}
    for i, text in enumerate(before):
        j = positions_after.get(text)
        if j is not None:
            matched[i] = (j, 1.0)
    if len(matched) < len(before) and len(matched) < len(after):
        rest_before = [i for i in range(len(before)) if i not in matched]
        taken = {j for j, _ in matched.values()}
        rest_after = [j for j in range(len(after)) if j not in taken]
        if len(rest_before) == 1 and len(rest_after) == 1:  # one left on each side (one reworded?): no search
            score = float(vectors[before[rest_before[0]]] @ vectors[after[rest_after[0]]])
            if score >= reworded_threshold:
                matched[rest_before[0]] = (rest_after[0], score)
        elif rest_before and rest_after:
            a = np.stack([vectors[before[i]] for i in rest_before])
            b = np.stack([vectors[after[j]] for j in rest_after])
            similarity = a @ b.T
            rows, cols = linear_sum_assignment(similarity, maximize=True)
            for r, c in zip(rows, cols, strict=True):
                score = float(similarity[r, c])
                if score >= reworded_threshold:
                    matched[rest_before[r]] = (rest_after[c], score)
    return matched


def _match(before: tuple[str, ...] | list[str], after: tuple[str, ...] | list[str],
           vectors: Mapping[str, np.ndarray], reworded_threshold: float) -> tuple[Matches, set[tuple[int, int]]]:
    """The matched pairs (steps 1 and 2) and those of them in order (step 3)."""
    matched = _pairs(before, after, vectors, reworded_threshold)
    return matched, _in_order([(i, j) for i, (j, _) in matched.items()])


def align(before: tuple[str, ...] | list[str], after: tuple[str, ...] | list[str],
          vectors: Mapping[str, np.ndarray], reworded_threshold: float = DEFAULT_REWORDED_THRESHOLD) -> Alignment:
    """Align two principle lists; ``vectors`` maps each principle text to its unit embedding."""
    matched, order = _match(before, after, vectors, reworded_threshold)
    changes: list[PrincipleChange] = []
    for i, text in enumerate(before):
        if i not in matched:
            changes.append(PrincipleChange(kind="removed", before=i, before_text=text))
            continue
        j, score = matched[i]
        moved = (i, j) not in order
        same = after[j] == text
        kind: ChangeKind = ("moved" if moved else "kept") if same else "reworded"
        changes.append(PrincipleChange(kind=kind, before=i, after=j, similarity=round(score, 6), moved=moved,
                                       before_text=text, after_text=None if same else after[j]))
    used = {j for j, _ in matched.values()}
    changes += [PrincipleChange(kind="added", after=j, after_text=text) for j, text in enumerate(after)
                if j not in used]
    return Alignment(reworded_threshold=reworded_threshold, changes=changes)


def fates(before: tuple[str, ...] | list[str], after: tuple[str, ...] | list[str],
          vectors: Mapping[str, np.ndarray], reworded_threshold: float = DEFAULT_REWORDED_THRESHOLD
          ) -> list[int | None]:
    """Per position in ``before``: the position of its counterpart in ``after`` (kept, moved or reworded; the
    same matching as :func:`align`), or None where it was removed. Builds no changes (principle survival follows
    every transition of every run)."""
    matched = _pairs(before, after, vectors, reworded_threshold)  # order (step 3) does not decide survival
    return [matched[i][0] if i in matched else None for i in range(len(before))]


def change_counts(before: tuple[str, ...] | list[str], after: tuple[str, ...] | list[str],
                  vectors: Mapping[str, np.ndarray], reworded_threshold: float = DEFAULT_REWORDED_THRESHOLD
                  ) -> dict[str, int]:
    """``align(...).counts()`` without building the changes (the per-step curves need only the counts)."""
    matched, order = _match(before, after, vectors, reworded_threshold)
    out = {kind: 0 for kind in ("kept", "reworded", "moved", "added", "removed")}
    for i, (j, _) in matched.items():
        if after[j] != before[i]:
            out["reworded"] += 1
        else:
            out["kept" if (i, j) in order else "moved"] += 1
    out["removed"] = len(before) - len(matched)
    out["added"] = len(after) - len({j for j, _ in matched.values()})
    return out
