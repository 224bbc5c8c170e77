"""The runs an analysis looks at, read once from the store into plain values the measures work on.

Measures never touch the store: they take a :class:`Corpus` (chains of node visits, the principles of each
node, the metadata of starting files) and vectors. Tests build corpora by hand, with known right answers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Any, NamedTuple

import numpy as np

from stability.constitution import principles_text
from stability.errors import StabilityError
from stability.store.analysis_reads import (
    PrincipleColumns,
    RevisionColumns,
    analysed_runs,
    corpus_columns,
)
from stability.store.store import Store

#: decisions that hold no answer the model stood behind: they never make (or hold) a fixed point, and a run whose
#: last visit is one of them has no verdict. ``truncated`` (a cut-off answer) counts exactly like a parse failure.
FAILED_DECISIONS = frozenset({"parse_failure", "truncated", "error"})


class Visit(NamedTuple):
    """One revision: a run's visit to a node at a step (a named tuple: an analysis of 100k revisions makes 100k)."""

    step: int
    node: str
    decision: str
    revision_id: str = ""
    cycle_to: str | None = None


@dataclass
class RunChain:
    run_id: str
    visits: list[Visit]
    model: str = ""
    protocol: str = ""
    stop_reason: str | None = None
    status: str = "done"
    declines_to_stop: int = 2
    chain: bool = True  # False for protocols whose trials are siblings (rate-alternatives, free-form-edit, ...)
    control: bool = False  # a null-model run for drift (``rephrase``): compared with the groups, not in them
    config: dict[str, Any] = field(default_factory=dict)  # the run's configuration (IterateConfig), for factors

    @property
    def usable(self) -> list[Visit]:
        """Visits that hold a constitution the model stood behind (errors are not steps of the chain)."""
        return [v for v in self.visits if v.decision != "error"]

    @property
    def no_verdict(self) -> str | None:
        """Why the run has no verdict, or None when it has one: its last visit failed (``parse_failure``,
        ``truncated``, ``error``), or it did not finish (``unfinished``: still running, or stopped by the budget
        or an interruption, to be resumed)."""
        last = self.visits[-1].decision
        if last in FAILED_DECISIONS:
            return last
        return None if self.status == "done" else "unfinished"

    @property
    def start(self) -> str:
        return self.visits[0].node

    @property
    def final(self) -> str:
        return self.usable[-1].node


@dataclass(frozen=True, eq=False)
class NodePrinciples:
    """What :func:`load_corpus` read, kept for embedding: the visited nodes in order of first visit (what
    :meth:`Corpus.nodes` computes) and their principles as integer codes, so neither needs a Python loop over
    every visit (1M at 1M revisions) or every principle (5.2M). Valid for ``runs`` (that very list) only."""

    runs: list[RunChain]
    nodes: list[str]
    columns: PrincipleColumns


@dataclass
class Corpus:
    runs: list[RunChain]
    principles: dict[str, tuple[str, ...]]
    metadata: dict[str, dict[str, Any]] = field(default_factory=dict)
    probes: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # run -> (probed node, decision)
    coded: NodePrinciples | None = field(default=None, repr=False, compare=False)  # set by load_corpus only

    def text(self, node: str) -> str:
        return principles_text(self.principles[node])

    def _loaded(self) -> NodePrinciples | None:
        """What load_corpus read, while ``runs`` is still the list it made (a corpus made by hand, or given
        other runs, has none)."""
        return self.coded if self.coded is not None and self.coded.runs is self.runs else None

    def nodes(self) -> list[str]:
        """Every visited node, in order of first visit (runs in order, each in step order)."""
        loaded = self._loaded()
        if loaded is not None:
            return list(loaded.nodes)
        return list(dict.fromkeys(v.node for run in self.runs for v in run.visits))

    def coded_principles(self, nodes: list[str]) -> PrincipleColumns | None:
        """The principles of ``nodes`` as codes, when they are the nodes load_corpus read them for."""
        loaded = self._loaded()
        return loaded.columns if loaded is not None and loaded.nodes == nodes else None


def is_chain(protocol: str) -> bool:
    """Whether the protocol's runs are chains (its class says); an unregistered protocol is read as a chain."""
    from stability.protocols import protocol_class

    try:
        return protocol_class(protocol).chain
    except StabilityError:
        return True


def is_drift_null(protocol: str) -> bool:
    """Whether the protocol's runs are a null model for drift (its class says); unregistered: no."""
    from stability.protocols import protocol_class

    try:
        return protocol_class(protocol).drift_null
    except StabilityError:
        return False


def _visits(columns: RevisionColumns) -> list[Visit]:
    """Every revision's :class:`Visit`, in row order; the visits of one node share its string."""
    cycle_to: list[str | None] = [None] * len(columns.step)
    for row, target in columns.cycle_to.items():
        cycle_to[row] = target
    nodes = np.asarray(columns.nodes, dtype=object)[columns.node].tolist()
    decisions = np.asarray(columns.decisions, dtype=object)[columns.decision].tolist()
    make = partial(tuple.__new__, Visit)  # the named tuple made in C (its __new__ is Python: ~0.4 µs a visit)
    return list(map(make, zip(columns.step.tolist(), nodes, decisions, columns.revision_ids, cycle_to,
                              strict=True)))


def load_corpus(store: Store, run_ids: list[str]) -> Corpus:
    """The runs ``run_ids`` (those with revisions, in that order) with their visits, the principles of every node
    visited, the starting files' metadata and the probes.

    Read as columns (integer codes, one string per distinct node, decision and principle text) and made into
    Python records once (at 1M revisions the row-by-row read cost 8 s of CPU and 1.6 GiB at its peak); the codes
    are kept (:attr:`Corpus.coded`) for embedding."""
    runs = analysed_runs(store, run_ids)
    columns, coded = corpus_columns(store, run_ids)
    visits = _visits(columns)
    unique = list(dict.fromkeys(run_ids))
    bounds = np.searchsorted(columns.run, np.arange(len(unique) + 1)).tolist()
    position = {run_id: i for i, run_id in enumerate(unique)}
    kinds: dict[str, tuple[bool, bool]] = {}  # per protocol: (chain, control), looked up once
    chains = []
    for run_id in run_ids:
        i = position[run_id]
        if bounds[i] == bounds[i + 1]:
            continue
        run = runs[run_id]
        options = run.config.get("options") or {}
        if run.protocol not in kinds:
            kinds[run.protocol] = (is_chain(run.protocol), is_drift_null(run.protocol))
        chain, control = kinds[run.protocol]
        chains.append(RunChain(run_id=run_id, visits=visits[bounds[i]:bounds[i + 1]], model=run.model,
                               protocol=run.protocol, stop_reason=run.stop_reason, status=run.status,
                               declines_to_stop=int(options.get("declines_to_stop", 2)),
                               chain=chain, control=control, config=run.config))
    del visits
    nodes = columns.nodes  # in order of first visit: the order of Corpus.nodes()
    metadata = store.source_metadata()
    probes: dict[str, list[tuple[str, str]]] = {}
    for run_id, node, decision in store.probe_rows(run_ids):
        probes.setdefault(run_id, []).append((node, decision))
    return Corpus(runs=chains, principles=coded.lists(nodes),
                  metadata={n: metadata[n] for n in nodes if n in metadata}, probes=probes,
                  coded=NodePrinciples(runs=chains, nodes=nodes, columns=coded))
