"""Every progress bar's total is the true bound of what it counts, and its description says what it counts:
generations for fine-tune-reflect (it read ``2/20`` for a run of 2 generations), steps for a walk, trials for
rate-alternatives, cells for an experiment's grid, questions (one call each) for a judge."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from stability.engine import IterateConfig, iterate
from stability.engine.run import StepEvent
from stability.experiment import run_experiment
from stability.models import scripted
from stability.models.scripted import TrainableScriptedModel
from stability.testing.specs import write_spec
from tests.conftest import write


def _events(config: IterateConfig, db: Path) -> list[StepEvent]:
    seen: list[StepEvent] = []
    result = iterate(config, db, on_step=seen.append)
    assert result.run.status == "done", result.run.error
    return seen


def test_fine_tune_reflect_counts_generations_up_to_its_generations(db: Path, tmp_path: Path) -> None:
    subject = TrainableScriptedModel(fn=lambda _: "NO CHANGE", name="scripted/tunable")
    scripted.register("tunable", lambda: subject)
    start = write(tmp_path / "c.md", "- I am honest.\n- I am kind.\n")
    config = IterateConfig(protocol="fine-tune-reflect", model="scripted/tunable", constitution=str(start),
                           options={"generations": 2, "traces": 1, "unchanged_to_stop": 5,
                                    "adapters_dir": str(tmp_path / "ad")})
    events = _events(config, db)
    assert [(e.step, e.total, e.unit) for e in events] == [(0, 2, "generations"), (1, 2, "generations"),
                                                           (2, 2, "generations")]


@pytest.mark.parametrize(("protocol", "options", "total", "unit"), [
    ("fresh-instance", {"max_steps": 3}, 3, "steps"),
    ("fresh-instance", {"max_steps": 3, "from_blank": True, "max_parse_failures": 2}, 5, "steps"),
    ("free-form-edit", {}, 1, "steps"),
])
def test_each_protocol_declares_the_bound_of_its_steps(db: Path, tmp_path: Path, protocol: str,
                                                       options: dict[str, Any], total: int, unit: str) -> None:
    start = write(tmp_path / "c.md", "- I am honest.\n- I am kind.\n")
    config = IterateConfig(protocol=protocol, model="scripted/decline", constitution=str(start), options=options)
    events = _events(config, db)
    assert {(e.total, e.unit) for e in events} == {(total, unit)}
    assert max(e.step for e in events) <= total


def test_rate_alternatives_counts_trials() -> None:
    from stability.protocols import protocol_class

    protocol = protocol_class("rate-alternatives").configure({"trials": 4, "alternatives": "x.yaml"})
    assert (protocol.step_bound(), protocol.step_unit) == (4, "trials")


def test_the_iterate_bar_shows_the_events_total_and_unit(monkeypatch: pytest.MonkeyPatch) -> None:
    from stability.cli import app

    terminal = Console(file=io.StringIO(), force_terminal=True, force_interactive=True, width=120)
    monkeypatch.setattr(app, "errors", terminal)
    bar = app.StepProgress()
    bar.update(StepEvent(1, "declined", "sha256:x", 2, total=2, unit="generations"))
    assert bar.progress is not None
    [task] = bar.progress.tasks
    assert (task.description, task.total, task.completed) == ("generations", 2, 1)
    bar.stop()


def test_an_experiment_reports_its_cells_before_they_run_and_again_on_resume(db: Path, tmp_path: Path) -> None:
    start = write(tmp_path / "c.md", "- I am honest.\n- I am kind.\n")
    spec = write_spec(tmp_path / "s.yaml", name="cells", models=["scripted/decline"], constitutions=[str(start)],
                      protocol="fresh-instance", replicates=3)
    started: list[tuple[int, int]] = []
    ended: list[str] = []
    run_experiment(spec, db, on_start=lambda done, cells: started.append((done, cells)),
                   on_cell=lambda cell: ended.append(cell.status))
    assert started == [(0, 3)] and ended == ["done"] * 3
    run_experiment(spec, db, resume=True, on_start=lambda done, cells: started.append((done, cells)))
    assert started[-1] == (3, 3)  # a resumed grid's bar starts at the cells done before

