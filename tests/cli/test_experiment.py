from __future__ import annotations

import json
from pathlib import Path

from tests.cli.test_app import cli
from tests.conftest import ROOT, write


def test_protocols_lists_every_protocol() -> None:
    listed = json.loads(cli("protocols", "--json").stdout)
    assert set(listed) == {"fresh-instance", "in-context-iteration", "free-form-edit", "multi-agent-discussion",
                           "blank-slate", "rate-alternatives", "fine-tune-reflect", "rephrase", "external"}


def test_run_dry_run_and_run(tmp_path: Path, db: Path) -> None:
    write(tmp_path / "c.md", "- a\n")
    spec = write(tmp_path / "s.yaml", f"name: t\nmodels: [scripted/decline]\nconstitutions: [{tmp_path}/c.md]\n"
                                      "protocols: [fresh-instance, free-form-edit]\nreplicates: 2\n")
    dry = json.loads(cli("run", str(spec), "--dry-run", "--json", "--db", str(db)).stdout)
    assert dry["estimate"]["runs"] == 4 and dry["estimate"]["calls"] == 2 * 20 + 2 * 1
    assert dry["cache"] == "run"  # replicates and two protocols: independent samples
    table = cli("run", str(spec), "--dry-run", "--db", str(db))
    assert "cache scope: run (each run answers only from its own calls" in table.stdout
    assert not db.exists()
    done = cli("run", str(spec), "--db", str(db))
    assert done.returncode == 0, done.stderr
    assert "done 4 · failed 0 · not started 0" in done.stdout


def test_iterate_any_protocol_with_its_flags(tmp_path: Path, db: Path) -> None:
    start = write(tmp_path / "c.md", "- a\n- b\n")
    done = cli("iterate", "--protocol", "rate-alternatives", "--model", "scripted/decline", "--constitution",
               str(start), "--option", "alternatives_list=[x, y]", "--trials", "2", "--reflect", "first",
               "--db", str(db))
    assert done.returncode == 0, done.stderr  # "NO CHANGE" names no favourite: recorded, not a crash
    shown = json.loads(cli("show", json.loads(cli("runs", "--json", "--db", str(db)).stdout)[0]["id"],
                           "--json", "--db", str(db)).stdout)
    assert [s["decision"] for s in shown["steps"]] == ["origin", "parse_failure", "parse_failure"]
    wrong = cli("iterate", "--protocol", "rate-alternatives", "--model", "scripted/decline", "--constitution",
                str(start), "--rounds", "2", "--db", str(db))
    assert wrong.returncode == 2 and "rounds" in wrong.stderr


def test_import_prints_paths(tmp_path: Path) -> None:
    source = ROOT.parent / "shared" / "reference" / "open-character-training" / "goodness.txt"
    done = cli("import", str(source), "--format", "oct", "-o", str(tmp_path))
    assert done.returncode == 0 and Path(done.stdout.strip()).exists()
    bad = cli("import", str(source), "--format", "csv", "-o", str(tmp_path))
    assert bad.returncode == 2 and "expected oct, identities or identity-variants" in bad.stderr


def test_a_failure_not_about_money_suggests_no_higher_budget(tmp_path: Path, db: Path, allow_network: None) -> None:
    from stability.testing.wire_server import WireServer
    from tests.cli.test_app import grow_to_six

    write(tmp_path / "c.md", "- a\n")
    spec = write(tmp_path / "s.yaml", f"name: t\nmodels: [openai/fake]\nconstitutions: [{tmp_path}/c.md]\n"
                                      "protocols: [fresh-instance]\nprices: {openai/fake: {input: 1, output: 1}}\n")
    with WireServer(reply=grow_to_six) as server:
        server.fail_next(401)  # refused: retrying cannot fix it, and no budget was involved
        env = {"OPENAI_BASE_URL": server.url + "/v1", "OPENAI_API_KEY": "sk-test-hint-000000"}
        done = cli("run", str(spec), "--max-cost", "5", "--db", str(db), env=env)
    assert done.returncode == 1, done.stderr
    assert "failed 1" in done.stdout and "resume with: stability run SPEC --resume" in done.stdout
    assert "--max-cost" not in done.stdout


def test_a_bundled_spec_runs_from_any_folder(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    spec = ROOT / "protocols" / "specs" / "axis-sweep.yaml"
    done = subprocess.run([sys.executable, "-m", "stability", "run", str(spec), "--dry-run", "--json"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["estimate"]["runs"] > 0
    assert not (tmp_path / "runs").exists()  # a dry run writes nothing


def test_iterate_cache_scope_and_template_variant_flags(tmp_path: Path, db: Path) -> None:
    from stability.store import Store

    start = write(tmp_path / "c.md", "- a\n- b\n")
    done = cli("iterate", "--model", "scripted/decline", "--constitution", str(start), "--cache", "run",
               "--templates", "neutral", "--db", str(db))
    assert done.returncode == 0, done.stderr
    with Store.open(db) as store:
        (run,) = [store.run(r) for r in store.run_ids()]
    assert run.config["cache"] == "run" and run.config["templates"] == "neutral"
    wrong = cli("iterate", "--model", "scripted/decline", "--constitution", str(start), "--cache", "everywhere",
                "--db", str(tmp_path / "other.duckdb"))
    assert wrong.returncode == 2 and "--cache 'everywhere': choose one of run, experiment, global" in wrong.stderr
