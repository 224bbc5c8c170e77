"""``external``: a chain that no protocol of ours produced, brought in by ``stability import-chain``.

Its runs are chains of versions someone else wrote (a folder of versions, a file's git history, a pipeline's JSON
lines): each version is a node, each step an edge, ``changed`` or ``declined`` (two versions alike). It declares a
chain, so analysis looks for fixed points and cycles in it as in any other; it is never run: ``stability iterate``
and experiments refuse it before anything is written (:meth:`External.check`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from stability.constitution import Constitution
from stability.errors import StabilityError
from stability.protocols.base import ReflectionProtocol, Stop, register

if TYPE_CHECKING:
    from stability.engine.run import Run


class ExternalOptions(BaseModel):
    """Where an imported chain came from (set by ``import-chain``; analysis can group runs ``--by label``)."""

    model_config = ConfigDict(extra="forbid")

    label: str | None = Field(None, description="the label given to import-chain")
    sources: list[str] = Field(default_factory=list, description="the versions' sources, in order")
    git: str | None = Field(None, description="the file whose git history the chain is (--git)")


@register
class External(ReflectionProtocol[ExternalOptions]):
    name = "external"
    summary = "a chain imported with `stability import-chain` (versions written elsewhere); never run"
    Options = ExternalOptions

    def template_folders(self) -> list[str]:
        return []

    def estimate_calls(self, start: Constitution) -> int:
        return 0

    def check(self, start: Constitution) -> None:
        raise StabilityError("protocol external: its runs are imported with `stability import-chain`, never run")

    async def run(self, run: Run, start: Constitution) -> Stop:
        raise StabilityError("protocol external: its runs are imported with `stability import-chain`, never run")
