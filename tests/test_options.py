from __future__ import annotations

from pathlib import Path

import pytest

from stability.errors import InputError, StabilityError
from stability.options import merge_overrides, read_options
from tests.conftest import write


def test_overrides_parse_yaml_values_and_nest_dotted_keys() -> None:
    base = {"generations": 2, "trainer": {"steps": 4, "rank": 8}}
    merged = merge_overrides(base, ["generations=5", "trainer.steps=3", "constitution_data=[recitation, self-qa]",
                                    "recite_revised=true", "note=a=b"])
    assert merged == {"generations": 5, "trainer": {"steps": 3, "rank": 8}, "recite_revised": True,
                      "constitution_data": ["recitation", "self-qa"], "note": "a=b"}
    assert base["trainer"] == {"steps": 4, "rank": 8}  # the input is not modified
    with pytest.raises(StabilityError, match="expected KEY=VALUE"):
        merge_overrides({}, ["generations"])
    with pytest.raises(StabilityError, match="generations is not a mapping"):
        merge_overrides({"generations": 2}, ["generations.x=1"])


def test_options_files_give_their_options_mapping(tmp_path: Path) -> None:
    spec = write(tmp_path / "spec.yaml", "model: hf/x\noptions:\n  traces: 3\n")
    assert read_options(spec) == {"traces": 3}
    plain = write(tmp_path / "plain.yaml", "traces: 4\n")
    assert read_options(plain) == {"traces": 4}
    with pytest.raises(InputError, match="list.yaml: expected a mapping"):
        read_options(write(tmp_path / "list.yaml", "- a\n"))
    with pytest.raises(InputError, match="missing.yaml: no such file"):
        read_options(tmp_path / "missing.yaml")
