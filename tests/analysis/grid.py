"""A scripted-model experiment grid whose grouped answers are known, run through ``stability run`` (the runner).

- ``scripted/grid-fail`` answers prose only: every step is a parse failure, so every run has no verdict.
- ``scripted/grid-shrink`` drops the last principle until one is left, then declines: every run reaches a
  fixed point (after ``n - 1`` edits, confirmed by two declines).
- ``scripted/grid-flip`` alternates between two lists whatever it is shown: every run cycles with period 2.
- a second experiment rates alternatives (``rate-alternatives``): sibling trials, never a cycle.
- a third (``grid-twins``) runs ``grid-shrink`` on a contradictory file and its repaired twin: paired runs.
- a fourth (``grid-null``) runs ``grid-shrink`` under fresh-instance and the ``rephrase`` null: it shrinks the
  same way under both, so its drift exceeds the rephrase drift by exactly 0.
"""

from __future__ import annotations

from pathlib import Path

from stability.experiment import run_experiment
from stability.models import scripted
from stability.models.scripted import ScriptedModel
from stability.vocabulary import Message

ROOT = Path(__file__).resolve().parents[2]
LIBRARY = ROOT / "constitutions"
STARTS = ["consistent/minimal.md", "consistent/careful-tutor.md", "consistent/helpful-honest.md"]
FLIP_A = ["I value speed.", "I am careful."]
FLIP_B = ["I value accuracy over speed.", "I am careful."]


def _principles(messages: list[Message]) -> list[str]:
    return [line[2:] for line in messages[-1].content.splitlines() if line.startswith("- ")]


def _rate(messages: list[Message]) -> str | None:
    """Ratings for a rate-alternatives prompt (every option 3, the first favourite), else None."""
    text = messages[-1].content
    if "FAVOURITE" not in text:
        return None
    labels = [line[0] for line in text.splitlines() if line[1:3] == ". " and line[0].isupper()]
    return "\n".join(f"{label}: 3" for label in labels) + f"\nFAVOURITE: {labels[0]}"


def fail(messages: list[Message]) -> str:
    return _rate(messages) or "I have thought about these principles and find them admirable on the whole."


def shrink(messages: list[Message]) -> str:
    rated = _rate(messages)
    if rated is not None:
        return rated
    current = _principles(messages)
    if len(current) <= 1:
        return "NO CHANGE"
    return "REVISED CONSTITUTION:\n" + "\n".join(f"- {p}" for p in current[:-1])


def flip(messages: list[Message]) -> str:
    rated = _rate(messages)
    if rated is not None:
        return rated
    revised = FLIP_B if _principles(messages) == FLIP_A else FLIP_A
    return "REVISED CONSTITUTION:\n" + "\n".join(f"- {p}" for p in revised)


MODELS = {"grid-fail": fail, "grid-shrink": shrink, "grid-flip": flip}


def register() -> None:
    for name, fn in MODELS.items():
        scripted.register(name, lambda fn=fn, name=name: ScriptedModel(fn=fn, name=f"scripted/{name}"))


def build(db: Path, folder: Path) -> None:
    """Run both experiments into ``db``: ``grid`` (3 models x 3 starts x 2 replicates) and ``grid-ratings``."""
    register()
    starts = "".join(f"  - {LIBRARY / s}\n" for s in STARTS)
    models = "".join(f"  - scripted/{m}\n" for m in MODELS)
    spec = folder / "grid.yaml"
    spec.write_text(f"name: grid\nmodels:\n{models}constitutions:\n{starts}"
                    "protocols:\n  - name: fresh-instance\n    options: {max_steps: 8}\nreplicates: 2\n",
                    encoding="utf-8")
    ratings = folder / "grid-ratings.yaml"
    ratings.write_text("name: grid-ratings\nmodels:\n  - scripted/grid-shrink\n"
                       f"constitutions:\n  - {LIBRARY / 'consistent/minimal.md'}\n"
                       "protocols:\n  - name: rate-alternatives\n"
                       "    options: {alternatives_list: [I tell the truth., I lie when it helps.], trials: 4}\n"
                       "replicates: 2\n", encoding="utf-8")
    twins = folder / "grid-twins.yaml"
    twins.write_text("name: grid-twins\nmodels:\n  - scripted/grid-shrink\nconstitutions:\n"
                     f"  - {LIBRARY / 'contradictory/honesty-vs-comfort.md'}\n"
                     f"  - {LIBRARY / 'consistent/honesty-vs-comfort-repaired.md'}\n"
                     "protocols:\n  - name: fresh-instance\n    options: {max_steps: 8}\nreplicates: 2\n",
                     encoding="utf-8")
    null = folder / "grid-null.yaml"
    null.write_text("name: grid-null\nmodels:\n  - scripted/grid-shrink\nconstitutions:\n"
                    f"  - {LIBRARY / 'consistent/minimal.md'}\n  - {LIBRARY / 'consistent/careful-tutor.md'}\n"
                    "protocols:\n  - name: fresh-instance\n    options: {max_steps: 8}\n"
                    "  - name: rephrase\n    options: {max_steps: 8}\n", encoding="utf-8")
    for path in (spec, ratings, twins, null):
        result = run_experiment(path, db)
        assert result.done == result.cells, f"{path.name}: {result.done} of {result.cells} cells done"
