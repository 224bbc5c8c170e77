"""``stability probe --samples`` is bounded as a grid's size is, and ``--dry-run`` counts what it would send."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stability.bounds import MAX_CELLS
from stability.engine import IterateConfig, iterate
from stability.models import scripted
from stability.models.scripted import ScriptedModel
from stability.store import Store
from tests.conftest import run_cli, write


@pytest.fixture
def steady(tmp_path: Path, db: Path) -> tuple[str, ScriptedModel]:
    model = ScriptedModel(fn=lambda m: "NO CHANGE", name="scripted/probe-cap")
    scripted.register("probe-cap", lambda: model)
    start = write(tmp_path / "start.md", "- a\n- b\n")
    run_id = iterate(IterateConfig(model="scripted/probe-cap", constitution=str(start)), db).run.id
    return run_id, model


def probes(db: Path, run_id: str) -> int:
    with Store.open(db, read_only=True) as store:
        return len(store.probe_rows([run_id]))


@pytest.mark.parametrize(("samples", "needle"), [
    ("1000000000", "less than or equal to 100000"), (str(MAX_CELLS + 1), "less than or equal to 100000"),
    (str(2**63), ""), ("0", "give at least 1"), ("-5", "give at least 1"),
])
@pytest.mark.parametrize("dry_run", [False, True])
def test_too_many_samples_are_refused_before_anything_is_sent(steady: tuple[str, ScriptedModel], db: Path,
                                                              samples: str, needle: str, dry_run: bool,
                                                              capsys: pytest.CaptureFixture[str],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    run_id, model = steady
    before = len(model.calls)
    code, out, err = run_cli(["probe", run_id, "--samples", samples, "--db", str(db),
                              *(["--dry-run"] if dry_run else [])], capsys, monkeypatch)
    assert code == 2, (out, err)
    assert len(err.strip().splitlines()) == 1 and needle in err and "Traceback" not in err
    assert len(model.calls) == before and probes(db, run_id) == 0


def test_probes_of_many_runs_are_capped_in_all(steady: tuple[str, ScriptedModel], db: Path,
                                               capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    run_id, model = steady
    before = len(model.calls)
    monkeypatch.setattr("stability.engine.probe.MAX_PROBES", 5)
    code, _, err = run_cli(["probe", run_id, "--samples", "6", "--db", str(db)], capsys, monkeypatch)
    assert code == 2 and "6 probes of 1 runs, more than 5" in err
    assert probes(db, run_id) == 0 and len(model.calls) == before


def test_the_dry_run_counts_the_requests_and_sends_none(steady: tuple[str, ScriptedModel], db: Path,
                                                        capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    run_id, model = steady
    before = len(model.calls)
    code, out, err = run_cli(["probe", run_id, "--samples", "7", "--dry-run", "--db", str(db), "--json"], capsys,
                             monkeypatch)
    assert code == 0, err
    result = json.loads(out)
    assert result["dry_run"] and result["to_send"] == 7 and result["sent"] == 0
    assert len(model.calls) == before and probes(db, run_id) == 0
    code, out, err = run_cli(["probe", run_id, "--samples", "3", "--db", str(db)], capsys, monkeypatch)
    assert code == 0, err
    assert probes(db, run_id) == 3 and len(model.calls) == before + 3
    code, out, err = run_cli(["probe", run_id, "--samples", "7", "--dry-run", "--db", str(db)], capsys, monkeypatch)
    assert code == 0 and "at most 4 requests to send" in out and "3 probes stored" in out


def test_the_probe_samples_option_is_bounded_and_counted_in_a_dry_run() -> None:
    from pydantic import ValidationError

    from stability.constitution import Constitution
    from stability.protocols.fresh_instance import FreshInstance, FreshInstanceOptions

    with pytest.raises(ValidationError, match="less than or equal to 100000"):
        FreshInstanceOptions(probe_samples=1_000_000_000)
    start = Constitution.from_principles(["a"])
    plain = FreshInstance(FreshInstanceOptions(max_steps=5)).estimate_calls(start)
    assert FreshInstance(FreshInstanceOptions(max_steps=5, probe_samples=40)).estimate_calls(start) == plain + 40
