"""Other packages' warnings and progress bars never reach the terminal during a command: they go to ``DB.log``
beside the store (named in one line at the end), or to the terminal with ``--verbose``. Our own output stays."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest

from stability.cli import boundary
from tests.conftest import ROOT

FOREIGN = ("Warning", "Loading weights", "it/s]", "peft", "transformers")


def noisy_app(args: list[str], prog_name: str, standalone_mode: bool) -> int:
    """A command during which other packages speak: a FutureWarning, a tqdm bar, a library's logger (its handler
    made during the command, as transformers makes its own), a bare print; and we print our own line."""
    from tqdm import tqdm

    from stability.cli.console import console, errors

    warnings.warn("`is_gradient_checkpointing` is deprecated", FutureWarning, stacklevel=1)
    for _ in tqdm(range(3), desc="Loading weights"):
        pass
    library = logging.getLogger("some_library")
    handler = logging.StreamHandler()  # sys.stderr as it is now
    library.addHandler(handler)
    try:
        library.warning("Adapter tuning was active which is now deleted")
    finally:
        library.removeHandler(handler)
    print("a bare print from another package")
    console.print("our table")
    errors.print("our note")
    return 0


def test_other_packages_output_goes_to_the_log_beside_the_store(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "runs" / "s.duckdb"
    assert boundary.run(noisy_app, ["runs", "--db", str(db)]) == 0
    out, err = capsys.readouterr()
    assert out == "our table\n"
    log = Path(f"{db}.log")
    assert err == f"our note\nother packages' warnings and progress: {log} (--verbose shows them here)\n"
    text = log.read_text(encoding="utf-8")
    assert "stability runs --db" in text  # the command it came from
    for heard in ("FutureWarning: `is_gradient_checkpointing` is deprecated", "Loading weights: 100%",
                  "Adapter tuning was active which is now deleted", "a bare print from another package"):
        assert heard in text, text
    assert type(sys.stdout).__name__ != "Router" and type(sys.stderr).__name__ != "Router"  # given back


def test_verbose_shows_them_on_the_terminal_and_writes_no_log(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "s.duckdb"
    seen: list[list[str]] = []

    def app(args: list[str], **kwargs: Any) -> int:
        seen.append(args)
        return noisy_app(args, **kwargs)

    assert boundary.run(app, ["runs", "--verbose", "--db", str(db)]) == 0
    out, err = capsys.readouterr()
    assert seen == [["runs", "--db", str(db)]]  # the flag is the boundary's, not the command's
    assert "Loading weights" in err and "Adapter tuning" in err  # (pytest itself records the FutureWarning)
    assert "a bare print from another package" in out
    assert not Path(f"{db}.log").exists()


def test_a_quiet_command_leaves_no_log_and_no_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "s.duckdb"

    def app(args: list[str], **kwargs: Any) -> int:
        from stability.cli.console import console

        console.print("only ours")
        return 0

    assert boundary.run(app, ["runs", "--db", str(db)]) == 0
    assert capsys.readouterr() == ("only ours\n", "")
    assert not Path(f"{db}.log").exists()


@pytest.mark.slow
@pytest.mark.timeout(2400)  # ~1 min on 2 idle cores; far more on a shared machine
def test_the_tiny_fine_tune_spec_prints_no_line_of_another_package(tmp_path: Path) -> None:
    """The fine-tune-reflect command of docs/protocols.md (tiny-cpu.yaml; ~47 s on 2 cores) through the CLI."""
    db = tmp_path / "s.duckdb"
    # a new user's environment: the embedder (loaded by earlier tests in this process) turns the hub's progress
    # bars off through os.environ, which a child would inherit
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_DISABLE_PROGRESS_BARS", "TQDM_DISABLE")}
    done = subprocess.run(
        [sys.executable, "-m", "stability", "iterate", "--protocol", "fine-tune-reflect", "--model",
         "hf/gemma-3-270m", "--constitution", "constitutions/consistent/minimal.md", "--temperature", "0.7",
         "--max-tokens", "96", "--options", "protocols/fine-tune-reflect/specs/tiny-cpu.yaml",
         "--option", f"adapters_dir={tmp_path / 'adapters'}", "--db", str(db)],
        cwd=ROOT, env={**env, "STABILITY_VERBOSE": ""}, capture_output=True, text=True, timeout=2350)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines() + done.stderr.splitlines()
    assert [line for line in lines if any(word in line for word in FOREIGN)] == [], lines
    log = Path(f"{db}.log")
    assert done.stderr.splitlines()[-1] == f"other packages' warnings and progress: {log} (--verbose shows them here)"
    assert "Loading weights" in log.read_text(encoding="utf-8")
    assert "stop: " in done.stdout and "final constitution:" in done.stdout  # our own output is all there
