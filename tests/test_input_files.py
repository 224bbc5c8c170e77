"""One reader for users' files: every YAML file gives the same `path:line: problem`, every file kind is named."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from stability.errors import InputError
from tests.conftest import write

BROKEN = "first: 1\nsecond: [unclosed\nthird: 3\n"


def _loaders() -> dict[str, Callable[[Path], Any]]:
    from stability.alternatives import load_alternatives
    from stability.constitution import parse_file
    from stability.engine import load_run_spec
    from stability.experiment.spec import load_spec
    from stability.importers import load_placeholders
    from stability.options import read_options
    from stability.prices import load_prices

    def load_fine_tune_spec(path: Path) -> object:
        return load_run_spec(path, "fine-tune-reflect")

    def alternatives(path: Path) -> Any:
        write(path.with_name("c.md"), "- a\n")
        path.rename(path.with_name("c.alternatives.yaml"))
        return load_alternatives(path.with_name("c.md"))

    def front_matter(path: Path) -> Any:
        path.write_text("---\n" + BROKEN + "---\n- a\n", encoding="utf-8")
        return parse_file(path)

    return {"spec": load_spec, "options": read_options, "prices": load_prices, "placeholders": load_placeholders,
            "fine-tune spec": load_fine_tune_spec, "alternatives": alternatives, "front matter": front_matter}


@pytest.mark.parametrize("kind", ["spec", "options", "prices", "placeholders", "fine-tune spec", "alternatives",
                                  "front matter"])
def test_every_yaml_file_reports_path_and_line(tmp_path: Path, kind: str) -> None:
    path = write(tmp_path / "f.yaml", BROKEN)
    with pytest.raises(InputError) as caught:
        _loaders()[kind](path)
    err = caught.value
    assert err.line in (3, 4) and str(err).startswith(f"{err.path}:{err.line}: ") and "not valid YAML" in str(err)


@pytest.mark.parametrize(("kind", "expected"), [("spec", "expected a YAML experiment spec"),
                                                ("options", "expected a YAML file of protocol options"),
                                                ("prices", "expected a YAML file of prices"),
                                                ("placeholders", "expected a YAML file of placeholder values")])
def test_a_folder_or_device_names_the_kind_of_file_expected(tmp_path: Path, kind: str, expected: str) -> None:
    (tmp_path / "folder").mkdir()
    with pytest.raises(InputError, match=f"folder: is a directory, {expected}"):
        _loaders()[kind](tmp_path / "folder")
    with pytest.raises(InputError, match=f"/dev/zero: not a regular file, {expected}"):
        _loaders()[kind](Path("/dev/zero"))


def test_a_validation_error_is_on_the_line_of_its_key(tmp_path: Path) -> None:
    from stability.experiment.spec import load_spec

    path = write(tmp_path / "s.yaml", "name: x\nmodels: [scripted/decline]\nprotocols: [fresh-instance]\n"
                                      "concurrency:\n  openai: 2\n  anthropic: 0\n")
    with pytest.raises(InputError, match=r"s\.yaml:6: concurrency\.anthropic: Input should be greater"):
        load_spec(path)
