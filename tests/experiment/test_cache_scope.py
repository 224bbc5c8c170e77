"""Cache scope: which other runs' calls may answer a run (its own always do, for resume)."""

from __future__ import annotations

from pathlib import Path

import pytest

from stability.calls import CallPath, RetryPolicy
from stability.experiment import run_experiment
from stability.experiment.spec import ExperimentSpec
from stability.models import scripted
from stability.models.scripted import ScriptedModel
from stability.store import Store
from stability.vocabulary import GenerateConfig, Message
from tests.conftest import write

NO_WAIT = RetryPolicy(initial=0, jitter=0, max_attempts=1)


def _spec(tmp_path: Path, name: str, cache: str | None) -> Path:
    """Two arms whose step-1 question is identical: fresh-instance and in-context share their first prompt."""
    write(tmp_path / "c.md", "- a\n- b\n")
    return write(tmp_path / f"{name}.yaml", f"name: {name}\nmodels: [scripted/count]\n"
                                            f"constitutions: [{tmp_path}/c.md]\n"
                                            "protocols: [fresh-instance, in-context-iteration]\n"
                                            + (f"cache: {cache}\n" if cache else ""))


@pytest.fixture
def model() -> ScriptedModel:
    subject = ScriptedModel(fn=lambda m: "NO CHANGE", name="scripted/count")
    scripted.register("count", lambda: subject)
    return subject


def _calls(db: Path, runs: list[str]) -> list[tuple[str, str | None]]:
    with Store.open(db) as store:
        return [(c.cache_key, c.cached_from) for r in runs for c in store.calls(r)]


def test_arms_do_not_share_calls_in_run_scope(tmp_path: Path, db: Path, model: ScriptedModel) -> None:
    spec = _spec(tmp_path, "arms", None)  # two protocols: the default scope is run
    assert run_experiment(spec, db, dry_run=True).cache == "run"
    result = run_experiment(spec, db)
    calls = _calls(db, result.runs)
    assert len(calls) == 4 and all(cached is None for _, cached in calls)  # every answer is its own sample
    assert len(model.calls) == 4
    assert len({key for key, _ in calls}) == 3  # ... although both arms asked the same first question


def test_experiment_scope_shares_within_the_experiment_only(tmp_path: Path, db: Path, model: ScriptedModel) -> None:
    first = run_experiment(_spec(tmp_path, "shared", "experiment"), db)
    calls = _calls(db, first.runs)
    # the arms' identical first question was sent once
    assert len(calls) == 4 and sum(cached is not None for _, cached in calls) == 1 and len(model.calls) == 3
    other = run_experiment(_spec(tmp_path, "other", "experiment"), db)  # another experiment asks the same
    assert sum(cached is not None for _, cached in _calls(db, other.runs)) == 1 and len(model.calls) == 6
    anywhere = run_experiment(_spec(tmp_path, "anywhere", "global"), db)
    assert all(cached is not None for _, cached in _calls(db, anywhere.runs)) and len(model.calls) == 6


def test_default_scope_of_a_spec() -> None:
    def spec(**fields: object) -> ExperimentSpec:
        return ExperimentSpec.model_validate({"name": "s", "models": ["m"], "protocols": ["fresh-instance"],
                                              **fields})

    assert spec().cache_scope() == "global"
    assert spec(replicates=3).cache_scope() == "run"
    assert spec(seeds=[1, 2]).cache_scope() == "run"
    assert spec(protocols=["fresh-instance", "free-form-edit"]).cache_scope() == "run"
    assert spec(replicates=3, cache="global").cache_scope() == "global"
    assert spec(cache="experiment", use_cache=False).cache_scope() == "run"
    assert spec().experiment_id == spec(cache=None).experiment_id != spec(cache="run").experiment_id


@pytest.mark.parametrize("scope", ["run", "experiment", "global"])
def test_resume_replays_the_runs_own_calls_in_every_scope(db: Path, scope: str) -> None:
    model = ScriptedModel(fn=lambda m: "answer")
    messages = [Message(role="user", content="q")]

    async def ask(path: CallPath) -> None:
        await path(messages, GenerateConfig(), step=1, purpose="p")

    import asyncio

    with Store.open(db) as store:
        asyncio.run(ask(CallPath(store, model, "r-1", policy=NO_WAIT, scope=scope)))  # type: ignore[arg-type]
        asyncio.run(ask(CallPath(store, model, "r-1", policy=NO_WAIT, scope=scope)))  # type: ignore[arg-type]
        assert len(model.calls) == 1 and len(store.calls("r-1")) == 1
        asyncio.run(ask(CallPath(store, model, "r-2", policy=NO_WAIT, scope=scope)))  # type: ignore[arg-type]
        # another run (in no experiment) is answered from r-1 only in global scope
        assert len(model.calls) == (1 if scope == "global" else 2)
