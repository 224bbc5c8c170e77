"""Folders a command writes whole: all of it or nothing, with the permissions a new folder gets."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from stability.output_files import folder_whole


def test_a_written_folder_appears_whole_with_the_umask_permissions(tmp_path: Path) -> None:
    target = tmp_path / "out"
    old = os.umask(0o027)
    try:
        with folder_whole(target) as staging:
            (staging / "a.txt").write_text("a", encoding="utf-8")
            assert not target.exists()  # nothing at the target until the folder is complete
    finally:
        os.umask(old)
    assert (target / "a.txt").read_text(encoding="utf-8") == "a"
    assert stat.S_IMODE(target.stat().st_mode) == 0o750
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no staging folder left beside it


def test_a_failure_leaves_nothing_and_an_empty_target_as_it_was(tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.mkdir()
    with pytest.raises(RuntimeError), folder_whole(target) as staging:
        (staging / "a.txt").write_text("a", encoding="utf-8")
        raise RuntimeError("disk full")
    assert target.is_dir() and not any(target.iterdir())
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
