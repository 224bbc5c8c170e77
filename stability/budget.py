"""The one budget of an invocation: at most ``max_cost`` US dollars of paid calls (None: no limit).

Contract: :class:`Spending` is how the call path and the batcher see a budget: asked before every send
(:meth:`~Spending.check` raises :class:`BudgetExceeded`, nothing sent), told of every paid call
(:meth:`~Spending.paid`), and, in batch mode, of requests submitted but not yet answered (:meth:`~Spending.commit`,
:meth:`~Spending.release`: their estimate counts as spent until the answer is priced). :class:`Budget` is the one
implementation held in a process: one command's (``probe``, ``judge``: from nothing), an experiment's (opened from
the store's earlier spending at the first check, so checking it costs no query), and the figure a Ray ledger actor
holds for every worker; a Ray worker's view of that ledger (``stability.experiment.distributed.LedgerBudget``) is
another :class:`Spending` behind the same interface.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol


class BudgetExceeded(Exception):
    """Raised before sending a call that the budget no longer covers. Nothing was sent."""


class Spending(Protocol):
    """A budget, as the call path and the batcher see it."""

    def check(self) -> None:
        """Raise :class:`BudgetExceeded` if nothing more may be sent."""

    def paid(self, cost_usd: float) -> None:
        """A call that cost this much was answered (counted before its commit is awaited: spent either way)."""

    def commit(self, cost_usd: float) -> None:
        """A request joined a provider batch: its estimated cost counts as spent until its answer is priced."""

    def release(self, cost_usd: float) -> None:
        """A batch request's estimate no longer counts (answered and priced, or never sent)."""


#: what was spent before this process, and what is committed in open batches: read once, at the first check
Opening = Callable[[], tuple[float, float]]


class Budget:
    """Spending against ``max_cost``. ``opening`` (an experiment's): the earlier spending and committed batch
    estimates, read at the first check; paid calls before it are in that figure already, so they are not added.
    Without a limit nothing is read and nothing is refused."""

    def __init__(self, max_cost: float | None, spent: float = 0.0, opening: Opening | None = None) -> None:
        self.max_cost = max_cost
        self.spent = spent
        self.committed = 0.0
        self.reached = False
        self._opening = opening

    def allowed(self) -> bool:
        """Whether more may be sent (once refused, always refused)."""
        if self.max_cost is None:
            return True
        if self._opening is not None:
            self.spent, self.committed = self._opening()
            self._opening = None
        if self.reached or self.spent + self.committed >= self.max_cost:
            self.reached = True
        return not self.reached

    def check(self) -> None:
        if not self.allowed():
            raise BudgetExceeded(f"budget of ${self.max_cost:.4f} reached")

    def paid(self, cost_usd: float) -> None:
        if self._opening is None:
            self.spent += cost_usd

    def commit(self, cost_usd: float) -> None:
        self.committed += cost_usd

    def release(self, cost_usd: float) -> None:
        self.committed = max(0.0, self.committed - cost_usd)
