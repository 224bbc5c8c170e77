"""A small scripted-model experiment over the constitution library, with known outcomes, for analysis tests.

- ``scripted/resolver``: removes "I tell people what they want to hear ..." (so in honesty-vs-comfort clash
  1-4 is resolved by removal and clash 2-5 stays in place), rewords both sides of brevity-vs-thoroughness, and
  leaves everything else alone (obedience-vs-refusal and the consistent files: both clashes stay in place).
- ``scripted/canon``: rewrites any constitution to one canonical list, so different starts merge in one node.
- ``scripted/flip``: alternates between two lists, so the run stops on an exact 2-cycle.
"""

from __future__ import annotations

from pathlib import Path

from stability.engine import IterateConfig, iterate
from stability.models import scripted
from stability.models.scripted import ScriptedModel
from stability.vocabulary import Message

ROOT = Path(__file__).resolve().parents[2]
LIBRARY = ROOT / "constitutions"
CANON = ["I am honest.", "I avoid causing harm.", "I am helpful to the person I am talking to."]
FLIP_A = ["I value speed.", "I am careful."]
FLIP_B = ["I value accuracy over speed.", "I am careful."]
REWORDS = {
    "I keep every answer to one or two sentences.": "I keep most of my answers to one or two sentences.",
    "I cover every relevant detail and caveat in my answers.": "I cover the relevant details and caveats that "
                                                               "matter most in my answers.",
}


def _principles(messages: list[Message]) -> list[str]:
    return [line[2:] for line in messages[-1].content.splitlines() if line.startswith("- ")]


def _answer(current: list[str], revised: list[str]) -> str:
    if revised == current:
        return "NO CHANGE"
    return "REVISED CONSTITUTION:\n" + "\n".join(f"- {p}" for p in revised)


def resolver(messages: list[Message]) -> str:
    current = _principles(messages)
    revised = [REWORDS.get(p, p) for p in current if "want to hear" not in p]
    return _answer(current, revised)


def canon(messages: list[Message]) -> str:
    return _answer(_principles(messages), CANON)


def flip(messages: list[Message]) -> str:
    current = _principles(messages)
    return _answer(current, FLIP_B if current == FLIP_A else FLIP_A)


# A fixed set of library files, so the expected outcomes do not move when the library grows.
STARTS = ["consistent/careful-tutor.md", "consistent/helpful-honest.md", "consistent/minimal.md",
          "contradictory/brevity-vs-thoroughness.md", "contradictory/honesty-vs-comfort.md",
          "contradictory/obedience-vs-refusal.md"]


def register() -> None:
    scripted.register("resolver", lambda: ScriptedModel(fn=resolver, name="scripted/resolver"))
    scripted.register("canon", lambda: ScriptedModel(fn=canon, name="scripted/canon"))
    scripted.register("flip", lambda: ScriptedModel(fn=flip, name="scripted/flip"))


def build(db: Path, scratch: Path) -> list[str]:
    """Run the experiment into ``db``; return the run ids in order."""
    register()
    flip_start = scratch / "flip.md"
    flip_start.write_text("".join(f"- {p}\n" for p in FLIP_A), encoding="utf-8")
    plan = [("scripted/resolver", str(LIBRARY / name)) for name in STARTS]
    plan += [("scripted/canon", str(LIBRARY / "consistent/minimal.md")),
             ("scripted/canon", str(LIBRARY / "consistent/careful-tutor.md")),
             ("scripted/flip", str(flip_start))]
    ids = []
    for model, constitution in plan:
        result = iterate(IterateConfig(model=model, constitution=constitution, options={"max_steps": 6}), db)
        ids.append(result.run.id)
    return ids


if __name__ == "__main__":
    import sys

    build(Path(sys.argv[1]), Path(sys.argv[1]).parent)
