"""``rephrase``: a null model for drift. Each step a fresh instance restates the constitution in its own words.

Iterated like ``fresh-instance`` (a brand-new conversation per step, the same walk and stops), but the model is
asked to keep the meaning and change only the wording. The distance its runs travel is paraphrase noise: analysis
sets a model's drift under the other protocols against the rephrase drift of the same model from the same starts,
and suggests ε from it (see docs/analysis.md). Its runs are controls (``drift_null``), not subjects of the groups.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from stability.protocols.base import Stop, register
from stability.protocols.walk import IterationOptions, IterationProtocol, Walk

if TYPE_CHECKING:
    from stability.engine.run import Run


class RephraseOptions(IterationOptions):
    pass


@register
class Rephrase(IterationProtocol[RephraseOptions]):
    name = "rephrase"
    summary = "a null model for drift: a new instance each step restates the constitution without changing its meaning"
    Options = RephraseOptions
    drift_null = True

    async def step(self, run: Run, walk: Walk, step: int) -> Stop | None:
        call = await run.ask(self.conversation(run, "user.md", walk.current), step, "rephrase",
                             self.answer_config(run))
        return walk.advance(step, self.read(run, call), [call])
