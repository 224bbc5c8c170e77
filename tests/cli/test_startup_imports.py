"""Start-up: the CLI imports only what a command uses (issue 30).

Each check runs in a fresh interpreter and reads ``sys.modules`` after the command has run, so a heavy import
that sneaks back into ``stability/__init__.py``, a CLI module or the store's read path fails here (whatever the
machine's speed: no timings).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT, run_protocol

#: never needed to list commands, runs or a chain: analysis (SciPy, pandas), embeddings, local models, SDKs
HEAVY = ("scipy", "torch", "sentence_transformers", "transformers", "openai", "anthropic", "litellm", "llama_cpp",
         "pandas", "matplotlib", "httpx", "httpx2", "aiohttp")

PROBE = """
import json, sys
from stability.cli.app import main
heavy = json.loads(sys.argv[2])
sys.argv = ["stability", *json.loads(sys.argv[1])]
try:
    main()
except SystemExit as exit:
    code = exit.code
print(json.dumps({"code": code, "loaded": sorted(m for m in heavy if m in sys.modules)}), file=sys.stderr)
"""


def loaded_after(args: list[str], heavy: tuple[str, ...] = HEAVY) -> list[str]:
    done = subprocess.run([sys.executable, "-c", PROBE, json.dumps(args), json.dumps(heavy)], capture_output=True,
                          text=True, cwd=ROOT, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    result = json.loads(done.stderr.strip().splitlines()[-1])
    assert result["code"] == 0, done.stderr
    return list(result["loaded"])


#: what ``--help`` needs none of: the store's engine, the analysis stack's base, pydantic and the modules that build
#: iterate's flags (the run settings' models, every protocol), which ``iterate`` alone builds, when click asks
NOT_FOR_HELP = (*HEAVY, "duckdb", "numpy", "networkx", "pydantic", "stability.records", "stability.vocabulary",
                "stability.protocols", "stability.engine", "stability.store",
                # typer's rich help panels: the app asks for click's plain help
                "typer.rich_utils", "rich.markdown", "markdown_it", "rich.traceback",
                # iterate's progress bar
                "rich.progress")


def test_help_imports_no_heavy_module() -> None:
    assert loaded_after(["--help"], NOT_FOR_HELP) == []
    # a command's own --help builds only that command's flags (typer coerces a given flag's value with pydantic)
    assert loaded_after(["runs", "--help"], NOT_FOR_HELP) == ["pydantic"]
    assert loaded_after(["constitutions", "--help"], NOT_FOR_HELP) == ["pydantic"]


def test_iterate_help_builds_its_derived_flags() -> None:
    # the probe sees the lazily built flags' imports: iterate's --help derives them from the settings and protocols
    assert loaded_after(["iterate", "--help"], ("pydantic", "stability.protocols")) == ["pydantic",
                                                                                        "stability.protocols"]


def test_runs_and_show_import_no_heavy_module(tmp_path: Path, db: Path) -> None:
    run_id, _ = run_protocol(tmp_path, db, "fresh-instance", outputs=["NO CHANGE"] * 2)
    # duckdb is the store's own engine: seeing it loaded shows the probe sees imports at all
    assert loaded_after(["runs", "--db", str(db)], (*HEAVY, "numpy", "networkx", "duckdb")) == ["duckdb"]
    assert loaded_after(["show", run_id, "--db", str(db)], (*HEAVY, "numpy", "networkx", "duckdb")) == ["duckdb"]


#: a read-only store makes no write queue: reading needs neither it nor asyncio (its committer's loop), nor the
#: journal's reader where no journal lies beside the store; nor YAML,
#: which only reading a constitution's front matter or a spec needs
WRITE_PATH = ("asyncio", "stability.store.queue", "stability.store.journal", "concurrent.futures", "yaml", "duckdb")


def test_runs_and_show_import_no_write_queue(tmp_path: Path, db: Path) -> None:
    run_id, _ = run_protocol(tmp_path, db, "fresh-instance", outputs=["NO CHANGE"] * 2)
    assert loaded_after(["runs", "--db", str(db)], WRITE_PATH) == ["duckdb"]
    assert loaded_after(["show", run_id, "--db", str(db)], WRITE_PATH) == ["duckdb"]


#: what a run never needs before (or after) its first request: analysis, the judge, the constitution library
NOT_FOR_ITERATE = ("scipy", "numpy", "pandas", "networkx", "torch", "sentence_transformers", "stability.analysis",
                   "stability.judge", "stability.library", "stability.store.queue")


def test_iterate_imports_no_analysis_or_library(tmp_path: Path) -> None:
    constitution = tmp_path / "c.md"
    constitution.write_text("- I am honest.\n- I avoid causing harm.\n", encoding="utf-8")
    # the write queue is the run's own: seeing it loaded shows the probe saw the run's imports
    assert loaded_after(["iterate", "--model", "scripted/decline", "-c", str(constitution), "--db",
                         str(tmp_path / "run.duckdb")], NOT_FOR_ITERATE) == ["stability.store.queue"]


def test_package_names_still_resolve() -> None:
    import stability

    assert stability.open is stability.load
    assert stability.Store.__name__ == "Store" and callable(stability.iterate)
    assert {"load", "Store", "iterate", "resume", "IterateConfig"} <= set(dir(stability))
