from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest

from stability.constitution import Constitution
from stability.errors import StabilityError
from stability.store import Store

WHEN = datetime(2026, 1, 1)


def frames(run_id: str = "r-bulk") -> dict[str, pd.DataFrame]:
    start = Constitution(principles=("Be honest.", "Be kind."))
    revision = {"id": f"{run_id}:0", "run_id": run_id, "step": 0, "constitution_hash": start.hash,
                "parent_id": None, "decision": "origin", "cycle_to": None, "detail": None, "created_at": WHEN}
    return {
        "runs": pd.DataFrame([{"id": run_id, "protocol": "fresh-instance", "model": "scripted/x", "model_params": {},
                               "config": {"options": {"declines_to_stop": 2}}, "seed": 0,
                               "start_hash": start.hash, "template_hash": "-", "package_version": "t",
                               "status": "done", "stop_reason": "declined", "created_at": WHEN}]),
        "constitutions": pd.DataFrame([{"hash": start.hash, "text": start.text, "n_principles": 2,
                                        "created_at": WHEN}]),
        "principles": pd.DataFrame([{"constitution_hash": start.hash, "position": i, "text": p}
                                    for i, p in enumerate(start.principles)]),
        "revisions": pd.DataFrame([revision]),
    }


def test_bulk_load_writes_rows_the_store_reads(db: Path) -> None:
    with Store.open(db) as store:
        written = store.bulk_load(frames())
        assert written == {"runs": 1, "constitutions": 1, "principles": 2, "revisions": 1}
        [run] = store.runs()
        assert run.config == {"options": {"declines_to_stop": 2}} and run.git_commit is None
        assert store.constitution(run.start_hash).principles == ("Be honest.", "Be kind.")
        assert [r.decision for r in store.revisions("r-bulk")] == ["origin"]


def test_bulk_load_is_all_or_nothing_and_refuses_other_tables(db: Path) -> None:
    with Store.open(db) as store:
        store.bulk_load(frames())
        with pytest.raises(Exception, match="(?i)constraint|duplicate"):
            store.bulk_load(frames("r-other"))  # the same constitution again: the runs row must not stay
        assert store.run_ids() == ["r-bulk"]
        with pytest.raises(StabilityError, match="cannot bulk-load calls"):
            store.bulk_load({"calls": pd.DataFrame()})
