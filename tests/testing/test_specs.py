"""The spec writer that tests and benchmarks share: fields checked before writing, unset fields left out."""

from __future__ import annotations

from pathlib import Path

import pydantic
import pytest

from stability.experiment.spec import load_spec
from stability.testing.specs import write_spec


def test_a_written_spec_loads_with_only_the_fields_given(tmp_path: Path) -> None:
    (tmp_path / "c.md").write_text("- be kind\n", encoding="utf-8")
    path = write_spec(tmp_path / "s" / "grid.yaml", name="grid", models=["scripted/x"],
                      constitutions=[f"{tmp_path}/c.md"], protocol="fresh-instance",
                      options={"max_steps": 3}, replicates=2)
    spec = load_spec(path)
    assert (spec.name, spec.replicates, spec.protocols[0].options) == ("grid", 2, {"max_steps": 3})
    assert "max_parallel_runs" not in path.read_text(encoding="utf-8")  # unset stays unset


def test_a_misspelt_field_fails_before_anything_is_written(tmp_path: Path) -> None:
    with pytest.raises(pydantic.ValidationError, match="replicate"):
        write_spec(tmp_path / "bad.yaml", name="bad", models=["scripted/x"], constitutions=[],
                   protocol="fresh-instance", replicate=2)
    assert not (tmp_path / "bad.yaml").exists()
