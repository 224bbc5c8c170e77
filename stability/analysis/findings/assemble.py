"""``stability findings``: every question the selection's design can answer, and why the others cannot be.

Each question module (``QUESTION_MODULES``, in the methodology's order) exposes ``answer(data)``: its findings, or
an :class:`Unanswerable` saying why not; a module answering two questions (question 1: swaps and survival)
returns both kinds in one list, so each half can be unanswerable on its own. The p-values of every finding
printed (groups, contrasts, slopes) are one family, adjusted by Holm (family-wise error) or Benjamini–Hochberg
(false discovery rate): :mod:`stability.analysis.multiplicity`.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

from stability.analysis.convergence import Params
from stability.analysis.embeddings import DEFAULT_MODEL, Embedder
from stability.analysis.findings.data import FindingsData, Progress, _quiet, load_data
from stability.analysis.findings.record import Estimate, Finding, Findings, Unanswerable
from stability.analysis.multiplicity import ADJUSTMENTS
from stability.analysis.multiplicity import adjust as adjusted
from stability.errors import StabilityError

#: one module per question, in the methodology's order (1: principles ... 7: generations)
QUESTION_MODULES = ("principles", "routes", "twins", "starts", "attractor_strength", "blank_slate", "generations")


def question_modules() -> Iterator[ModuleType]:
    """The question modules that exist (a module another branch adds is found by name once it is there)."""
    for name in QUESTION_MODULES:
        full = f"stability.analysis.findings.{name}"
        try:
            yield importlib.import_module(full)
        except ModuleNotFoundError as err:
            if err.name != full:
                raise


def estimates(finding: Finding) -> Iterator[Estimate]:
    """Every estimate a finding prints: its groups', its contrast, and slope, strength and position."""
    yield from finding.groups or []
    for e in (finding.contrast, finding.slope, finding.strength, finding.position):
        if e is not None:
            yield e


def adjust_findings(findings: list[Finding], method: str) -> None:
    """Fill ``p_adjusted`` over every p-value of every finding (one family)."""
    family = [e for f in findings for e in estimates(f)]
    for e, p in zip(family, adjusted([e.p_value for e in family], method), strict=True):
        e.p_adjusted = None if p is None else round(p, 6)


def _check(adjust: str) -> None:
    """An unknown adjustment is a one-line error, before any work."""
    if adjust not in ADJUSTMENTS:
        raise StabilityError(f"--adjust {adjust!r}: choose one of {', '.join(ADJUSTMENTS)}")


def assemble(data: FindingsData, adjust: str = "holm", progress: Progress = _quiet) -> Findings:
    """Every question's answer over already measured data."""
    _check(adjust)
    findings: list[Finding] = []
    unanswerable: list[Unanswerable] = []
    for module in question_modules():
        progress(f"answering {module.__name__.rsplit('.', 1)[-1].replace('_', ' ')}")
        answered = module.answer(data)
        for item in [answered] if isinstance(answered, Unanswerable) else answered:
            if isinstance(item, Unanswerable):
                unanswerable.append(item)
            else:
                findings.append(item)
    adjust_findings(findings, adjust)
    return Findings(findings=findings, unanswerable=unanswerable, adjust=adjust)


def findings(selection: list[str], db: Path | str | None = None, all_runs: bool = False,
             embedder: Embedder | str = DEFAULT_MODEL, references: list[Path | str] | None = None,
             judge: str | None = None, params: Params | None = None, adjust: str = "holm",
             progress: Progress = _quiet) -> Findings:
    """The findings of a selection (experiment names or ids and run ids): load, measure once, answer."""
    _check(adjust)
    data = load_data(selection, db, all_runs, embedder, references, judge, params, progress)
    return assemble(data, adjust, progress)
