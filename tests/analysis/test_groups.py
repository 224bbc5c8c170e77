"""Grouped measures on scripted-model grids where the right grouped answer is known."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from stability.analysis import analyze
from stability.analysis.experiments import list_experiments
from stability.errors import StabilityError
from tests.analysis import grid


@pytest.fixture
def grid_copy(grid_db: Path, tmp_path: Path) -> Path:
    grid.register()
    target = tmp_path / "grid.duckdb"
    shutil.copy(grid_db, target)
    return target


def test_experiments_are_listed_with_factors_and_states(grid_db: Path) -> None:
    found = {e.name: e for e in list_experiments(grid_db)}
    assert set(found) == {"grid", "grid-ratings", "grid-twins", "grid-null"}
    main = found["grid"]
    assert main.cells == 18 and main.states == {"done": 18} and main.replicates == 2
    assert set(main.varied) == {"model", "constitution", "seed"}
    assert main.factors["model"] == [f"scripted/{m}" for m in grid.MODELS]
    assert main.factors["constitution"] == grid.STARTS
    assert all(c.run_id and c.status == "done" for c in main.cell_list)


def test_grouped_by_model_gives_the_known_answers(grid_copy: Path) -> None:
    result = analyze(["grid"], grid_copy, embedder="hashing", by=["model"])
    assert result.by == ["model"] and len(result.experiments) == 1
    groups = {g.key["model"]: g for g in result.groups}
    assert set(groups) == {f"scripted/{m}" for m in grid.MODELS}
    fail, shrink, flip = (groups[f"scripted/grid-{m}"] for m in ("fail", "shrink", "flip"))
    assert fail.runs == 6 and fail.no_verdict == 6 and fail.verdicts["fixed_point"] == 0
    assert fail.fixed_point_rate.n == 0 and fail.fixed_point_rate.mean is None and fail.attractors == []
    assert shrink.fixed_point_rate.mean == 1.0 and shrink.fixed_point_rate.n == 6 and shrink.no_verdict == 0
    assert shrink.cycle_rate.mean == 0.0 and shrink.resampled == "starts" and shrink.starts == 3
    assert flip.cycle_rate.mean == 1.0 and flip.fixed_point_rate.mean == 0.0
    # shrinking: each start loses all but one principle (minimal 3, careful-tutor and helpful-honest more)
    assert shrink.steps_to_fixed_point.events == 6 and shrink.steps_to_fixed_point.censored == 0
    assert flip.steps_to_fixed_point.events == 0 and flip.steps_to_fixed_point.median is None
    # every flip run ends on one of the two lists: the finals converge far more than the starts
    assert flip.convergence_ratio.mean is not None and flip.convergence_ratio.mean < 0.5
    assert flip.convergence_ratio.n == 6 and flip.convergence_ratio.p_value is not None
    # no-verdict runs are in no attractor of the whole selection either
    failed = {r.run_id for r in result.runs if r.verdict == "no_verdict"}
    assert len(failed) == 6
    assert not failed & {run for a in result.cross_run.attractors for run in a.runs}
    [contrast] = [c for c in result.contrasts if {c.a["model"], c.b["model"]} == {"scripted/grid-flip",
                                                                                  "scripted/grid-shrink"}]
    sign = 1 if contrast.a["model"] == "scripted/grid-shrink" else -1
    assert contrast.fixed_point_rate.mean == sign * 1.0


def test_rating_runs_have_no_cycles(grid_copy: Path) -> None:
    result = analyze(["grid-ratings"], grid_copy, embedder="hashing", by=["protocol"])
    assert len(result.runs) == 2
    assert all(r.verdict == "not_chain" and r.cycles == [] and r.fixed_point is None for r in result.runs)
    [group] = result.groups
    assert group.verdicts["not_chain"] == 2 and group.cycle_rate.n == 0 and group.attractors == []
    assert result.cross_run.runs == 0 and result.preferences.targets


def test_grouping_by_constitution_and_option(grid_copy: Path) -> None:
    result = analyze(["grid"], grid_copy, embedder="hashing", by=["constitution", "max_steps"])
    assert {tuple(g.key.values()) for g in result.groups} == {(s, 8) for s in grid.STARTS}
    assert all(g.runs == 6 and g.resampled == "runs" for g in result.groups)
    with pytest.raises(StabilityError, match="not a factor"):
        analyze(["grid"], grid_copy, embedder="hashing", by=["colour"])
    with pytest.raises(StabilityError, match="no experiment 'nothing'"):
        analyze(["nothing"], grid_copy, embedder="hashing")


def test_dataset_takes_an_experiment(grid_copy: Path) -> None:
    import stability

    data = stability.load(grid_copy)
    assert {e.name for e in data.experiments()} == {"grid", "grid-ratings", "grid-twins", "grid-null"}
    assert len(data.experiment_runs("grid")) == 18 and data.graph(["grid-ratings"]).number_of_nodes() >= 1
    result = data.analyze(["grid"], embedder="hashing", by=["model"])
    assert [g.runs for g in result.groups] == [6, 6, 6]


def test_twins_are_paired_in_a_scripted_experiment(grid_copy: Path) -> None:
    result = analyze(["grid-twins"], grid_copy, embedder="hashing")
    twins = result.twins
    assert len(twins.pairs) == 2 and twins.unpaired == []
    assert {p.contradictory for p in twins.pairs} == {"contradictory/honesty-vs-comfort.md"}
    # shrinking 5 principles to 1 takes 4 edits from either file: no paired difference in steps
    assert twins.steps_difference.mean == 0.0 and twins.fixed_point_difference.mean == 0.0
    assert all(p.distance_to_twin[0] > 0 for p in twins.pairs)


def test_distance_to_a_reference_constitution(grid_copy: Path, tmp_path: Path) -> None:
    reference = tmp_path / "flip-a.md"
    reference.write_text("".join(f"- {p}\n" for p in grid.FLIP_A), encoding="utf-8")
    result = analyze(["grid"], grid_copy, embedder="hashing", by=["model"], references=[reference])
    assert result.references == ["flip-a.md"]
    groups = {g.key["model"]: g for g in result.groups}
    [flip] = groups["scripted/grid-flip"].references
    # every flip run stops on its return to FLIP_A: the finals are the reference itself
    assert flip.final.mean == 0.0 and flip.change.mean is not None and flip.change.mean < 0
    assert flip.start.n == 6 and flip.start.low is not None
    assert groups["scripted/grid-fail"].references == []  # no judged runs, nothing to measure
    run = next(r for r in result.runs if r.model == "scripted/grid-flip")
    assert len(run.references["flip-a.md"]) == len(run.steps) and run.references["flip-a.md"][-1] == 0.0


def test_rephrase_runs_are_the_drift_null(grid_copy: Path) -> None:
    result = analyze(["grid-null"], grid_copy, embedder="hashing", by=["model"])
    [group] = result.groups
    assert group.runs == 2 and len(result.runs) == 4  # the two rephrase runs are controls, in no group
    null = group.paraphrase_null
    assert null is not None and (null.cells, null.control_runs) == (2, 2)
    assert null.excess.mean == 0.0 and null.drift.mean == null.rephrase_drift.mean
    # the grid's rewordings move further per step than a flipped planted negation of the library moves these starts:
    # the rephrase percentile would hide flips as ε, so no ε is suggested, and the note says why
    assert null.rephrase_step_p95 is not None and null.negation_distance is not None
    assert null.negation_distance <= null.rephrase_step_p95 and null.suggested_epsilon is None
    assert null.epsilon_note is not None and "would hide flips" in null.epsilon_note


def test_an_edited_spec_name_is_ambiguous_and_an_empty_experiment_has_no_runs(grid_copy: Path) -> None:
    from datetime import UTC, datetime

    from stability.analysis.experiments import find_experiment, resolve_selection
    from stability.records import CellRecord, ExperimentRecord
    from stability.store import Store

    with Store.open(grid_copy) as store:
        [original] = [e for e in store.experiments() if e.name == "grid"]
        edited = ExperimentRecord(id="grid-0123456789", name="grid", spec={}, created_at=datetime.now(UTC))
        store.put_experiment(edited, [CellRecord(experiment_id=edited.id, cell="c1", position=0, config={})])
        store.flush()
        with pytest.raises(StabilityError, match="names 2 experiments"):
            find_experiment(store, "grid")
        found = find_experiment(store, original.id[:12])
        assert found is not None and found.id == original.id  # a unique id prefix still works
        with pytest.raises(StabilityError, match="has no runs yet"):
            resolve_selection(store, [edited.id], False)
    listed = {e.id: e for e in list_experiments(grid_copy)}
    assert listed[edited.id].states == {"not_started": 1} and listed[edited.id].cell_list[0].run_id is None
