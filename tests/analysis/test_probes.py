"""``stability probe``: stored, resumable probes of final nodes, and P(decline | node) with a Wilson interval."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from stability.analysis import Params, analyze
from stability.analysis.stats import wilson
from stability.engine import IterateConfig, iterate
from stability.engine.probe import probe
from stability.errors import StabilityError
from stability.models import scripted
from stability.models.scripted import ScriptedModel
from stability.store import Store
from stability.vocabulary import Message
from tests.conftest import write


def test_wilson_interval_known_values() -> None:
    # 8 of 10: the Wilson 95% interval is [0.490, 0.943] (textbook value)
    share = wilson(8, 10)
    assert share.mean == 0.8 and share.low == pytest.approx(0.4902, abs=1e-3)
    assert share.high == pytest.approx(0.9433, abs=1e-3)
    assert wilson(0, 0).n == 0 and wilson(10, 10).high == 1.0


def _runs(tmp_path: Path, db: Path) -> tuple[str, str]:
    """A steady run (always declines) and a shaky one (declines twice, then changes every other time)."""
    # one instance each, as a real model is one model: a scripted instance is its own cache identity
    steady_model = ScriptedModel(fn=lambda m: "NO CHANGE", name="scripted/steady")
    scripted.register("steady", lambda: steady_model)
    count = itertools.count()

    def shaky(messages: list[Message]) -> str:
        n = next(count)
        return "NO CHANGE" if n < 2 or n % 2 else "REVISED CONSTITUTION:\n- something else\n"

    shaky_model = ScriptedModel(fn=shaky, name="scripted/shaky")
    scripted.register("shaky", lambda: shaky_model)
    start = write(tmp_path / "start.md", "- a\n- b\n")
    steady = iterate(IterateConfig(model="scripted/steady", constitution=str(start)), db).run.id
    wobbly = iterate(IterateConfig(model="scripted/shaky", constitution=str(start)), db).run.id
    return steady, wobbly


def test_probes_are_stored_resumable_and_read_as_p_decline(tmp_path: Path, db: Path) -> None:
    steady, wobbly = _runs(tmp_path, db)
    first = probe([steady, wobbly], 6, db)
    assert first.runs == [steady, wobbly] and first.probes == 12 and first.sent == 12
    again = probe([steady, wobbly], 6, db)
    assert again.sent == 0 and again.probes == 12  # resumable: nothing completed is sent again
    more = probe([steady], 10, db)
    assert more.sent == 4 and more.probes == 10  # only the missing samples
    with Store.open(db) as store:
        calls = [c for c in store.calls(steady) if c.purpose == "probe"]
        assert len(calls) == 10 and len({c.request["seed"] for c in calls}) == 10  # fresh samples
        revisions = store.revisions(steady)
        assert [r.decision for r in revisions] == ["origin", "declined", "declined"]  # the chain is untouched
    result = analyze([steady, wobbly], db, embedder="hashing", params=Params(tau=0.6))
    by_id = {r.run_id: r for r in result.runs}
    sure, unsure = by_id[steady].probe, by_id[wobbly].probe
    assert sure is not None and unsure is not None
    assert (sure.samples, sure.p_decline.mean, sure.confirmed) == (10, 1.0, True)  # Wilson low 0.72 >= 0.6
    assert unsure.samples == 6 and unsure.p_decline.mean == 0.5 and unsure.confirmed is False
    assert result.params.tau == 0.6
    [group] = result.groups
    assert (group.probed, group.confirmed) == (2, 1)


def test_probe_refuses_what_it_cannot_probe(tmp_path: Path, db: Path) -> None:
    steady, _ = _runs(tmp_path, db)
    with pytest.raises(StabilityError, match="at least 1"):
        probe([steady], 0, db)
    with pytest.raises(StabilityError, match="no experiment"):
        probe(["r-nothing"], 3, db)


def test_probes_are_covered_by_the_budget_and_the_cli(tmp_path: Path, db: Path) -> None:
    import json

    from typer.testing import CliRunner

    from stability.cli.app import app

    steady, _ = _runs(tmp_path, db)
    stopped = probe([steady], 5, db, max_cost=0.0)  # nothing may be spent: no call is sent
    assert stopped.budget_reached and stopped.sent == 0 and stopped.probes == 0
    done = CliRunner().invoke(app, ["probe", steady, "--samples", "3", "--db", str(db), "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["probes"] == 3
    tables = CliRunner().invoke(app, ["analyze", steady, "--db", str(db), "--embedder", "hashing"])
    assert tables.exit_code == 0 and "probed 1, confirmed 0" in tables.output  # 3 of 3: Wilson low 0.44 < 0.5


def test_the_probe_samples_option_probes_at_the_end_of_each_run(tmp_path: Path, db: Path) -> None:
    model = ScriptedModel(fn=lambda m: "NO CHANGE", name="scripted/steady-option")
    scripted.register("steady-option", lambda: model)
    start = write(tmp_path / "start.md", "- a\n- b\n")
    run_id = iterate(IterateConfig(model="scripted/steady-option", constitution=str(start),
                                   options={"probe_samples": 4}), db).run.id
    with Store.open(db) as store:
        assert [r.decision for r in store.revisions(run_id)] == ["origin", "declined", "declined"]
        assert sum(c.purpose == "probe" for c in store.calls(run_id)) == 4
    assert probe([run_id], 4, db).sent == 0  # the same probes: `stability probe` finds them stored
    [run] = analyze([run_id], db, embedder="hashing").runs
    assert run.probe is not None and run.probe.samples == 4 and run.probe.p_decline.mean == 1.0
