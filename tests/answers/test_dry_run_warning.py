"""`stability run --dry-run` warns when max_tokens is too small for the answers the grid asks for."""

from __future__ import annotations

from pathlib import Path

from stability.experiment import run_experiment
from tests.cli.test_app import cli
from tests.conftest import ROOT, write

BIG = ROOT / "constitutions" / "contradictory" / "honesty-vs-comfort.md"  # 5 principles: ~100 answer tokens


def spec(tmp_path: Path, max_tokens: list[int]) -> Path:
    small = write(tmp_path / "small.md", "- a\n")
    return write(tmp_path / "spec.yaml", f"""
name: short
models: [scripted/decline]
constitutions: ["{small}", "{BIG}"]
protocols: [fresh-instance]
parameters: {{max_tokens: {max_tokens}}}
""")


def test_dry_run_warns_per_model_when_max_tokens_is_below_the_largest_answer(tmp_path: Path, db: Path) -> None:
    warned = run_experiment(spec(tmp_path, [64, 2048]), db, dry_run=True).estimate.warnings
    assert len(warned) == 1 and warned[0].startswith("scripted/decline: max_tokens 64 is below the ~")
    assert run_experiment(spec(tmp_path, [256]), db, dry_run=True).estimate.warnings == []
    shown = cli("run", str(spec(tmp_path, [64])), "--dry-run", "--db", str(db))
    assert shown.returncode == 0 and "warning: scripted/decline: max_tokens 64" in shown.stderr
    assert not db.exists()
