"""The runs an analysis looks at, read once from the store into plain values the measures work on.

Measures never touch the store: they take a :class:`Corpus` (chains of node visits, the principles of each
node, the metadata of starting files) and vectors. Tests build corpora by hand, with known right answers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

from stability.constitution import principles_text
from stability.errors import StabilityError
from stability.store.analysis_reads import principle_lists
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


@dataclass
class Corpus:
    runs: list[RunChain]
    principles: dict[str, tuple[str, ...]]
    metadata: dict[str, dict[str, Any]] = field(default_factory=dict)
    probes: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # run -> (probed node, decision)

    def text(self, node: str) -> str:
        return principles_text(self.principles[node])

    def nodes(self) -> list[str]:
        return list(dict.fromkeys(v.node for run in self.runs for v in run.visits))


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


def load_corpus(store: Store, run_ids: list[str]) -> Corpus:
    wanted = set(run_ids)
    runs = {run.id: run for run in store.runs() if run.id in wanted}
    visits: dict[str, list[Visit]] = {r: [] for r in run_ids}
    # one string object per distinct node and decision (the database returns a new one per row): 1M revisions
    # visit ~0.5M nodes
    shared: dict[str, str] = {}
    share = shared.setdefault
    for run_id, step, revision_id, node, decision, cycle_to in store.revision_rows(run_ids):
        visits[run_id].append(Visit(step, share(node, node), share(decision, decision), revision_id, cycle_to))
    del shared
    kinds: dict[str, tuple[bool, bool]] = {}  # per protocol: (chain, control), looked up once
    chains = []
    for run_id in run_ids:
        if not visits[run_id]:
            continue
        run = runs[run_id]
        options = run.config.get("options") or {}
        if run.protocol not in kinds:
            kinds[run.protocol] = (is_chain(run.protocol), is_drift_null(run.protocol))
        chain, control = kinds[run.protocol]
        chains.append(RunChain(run_id=run_id, visits=visits[run_id], model=run.model, protocol=run.protocol,
                               stop_reason=run.stop_reason, status=run.status,
                               declines_to_stop=int(options.get("declines_to_stop", 2)),
                               chain=chain, control=control, config=run.config))
    nodes = list(dict.fromkeys(v.node for chain in chains for v in chain.visits))
    principles = principle_lists(store, nodes)
    metadata = store.source_metadata()
    probes: dict[str, list[tuple[str, str]]] = {}
    for run_id, node, decision in store.probe_rows(run_ids):
        probes.setdefault(run_id, []).append((node, decision))
    return Corpus(runs=chains, principles=principles,
                  metadata={n: metadata[n] for n in nodes if n in metadata}, probes=probes)
