"""A known fake key, sent to the provider and quoted back in its errors, reaches no file and no output."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from stability.cli.app import app
from stability.store import Store
from stability.testing.wire_server import WireServer
from tests.cli.test_app import cli, grow_to_six
from tests.conftest import write

KEY = "sk-proj-SECRETfake1234567890abcdef"


def test_key_reaches_no_database_log_report_or_export(tmp_path: Path, db: Path, allow_network: None,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "c.md", "- principle 1\n- principle 2\n")
    spec = write(tmp_path / "spec.yaml", f"name: secrets\nmodels: [openai/fake]\nconstitutions: [{tmp_path}/c.md]\n"
                                         "protocols: [fresh-instance]\nreplicates: 2\nmax_parallel_runs: 1\n")
    with WireServer(reply=grow_to_six) as server:
        server.fail_next(401)  # the first run fails on an error that quotes the key, as OpenAI's does
        server.fail_next(500, retry_after=0.01, times=2)  # the second retries, recording each failure
        env = {"OPENAI_BASE_URL": server.url + "/v1", "OPENAI_API_KEY": KEY}
        ran = cli("run", str(spec), "--db", str(db), env=env)
        headers = " ".join(str(h) for h in server.headers)
    assert ran.returncode == 1, ran.stderr  # one failed run
    assert KEY in headers  # the key was really sent
    with Store.open(db, read_only=True) as store:
        runs = store.runs()
        errors = [c.error or "" for r in runs for c in store.calls(r.id)]
    assert {r.status for r in runs} == {"done", "failed"}
    assert any("Incorrect API key provided: [redacted]" in e for e in errors)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    outputs = [ran.stdout, ran.stderr]
    runner = CliRunner()
    for args in (["runs", "--json"], *(["show", r.id, "--json"] for r in runs), *(["show", r.id] for r in runs),
                 ["analyze", "--all", "--json", "--embedder", "hashing"],
                 ["report", "--all", "--embedder", "hashing", "-o", str(tmp_path / "report.html")],
                 ["graph", "--all", "-o", str(tmp_path / "graph.graphml")],
                 ["graph", "--all", "--format", "json", "-o", str(tmp_path / "graph.json")]):
        result = runner.invoke(app, [*args, "--db", str(db)])
        assert result.exit_code == 0, (args, result.output, result.exception)
        outputs.append(result.output)
    assert (tmp_path / "report.html").stat().st_size > 1000 and (tmp_path / "graph.json").exists()
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert db in files
    secret = KEY.encode()
    assert [p for p in files if secret in p.read_bytes()] == []
    assert [o for o in outputs if KEY in o] == []


def test_base_url_credentials_reach_no_database_or_output(tmp_path: Path, db: Path, allow_network: None) -> None:
    write(tmp_path / "c.md", "- principle 1\n- principle 2\n")
    with WireServer(reply=grow_to_six) as server:
        url = server.url.replace("http://", "http://alice:hunter2pass@") + "/v1"
        ran = cli("iterate", "-m", "openai/fake", "-c", str(tmp_path / "c.md"), "--db", str(db),
                  env={"OPENAI_BASE_URL": url, "OPENAI_API_KEY": KEY})
    assert ran.returncode == 0, ran.stderr
    with Store.open(db, read_only=True) as store:
        [run] = store.runs()
    assert run.model_params["subject"]["base_url"].startswith("http://[redacted]@127.0.0.1:")
    shown = cli("show", run.id, "--json", "--db", str(db))
    assert shown.returncode == 0 and "[redacted]@127.0.0.1" in shown.stdout
    outputs = [ran.stdout, ran.stderr, shown.stdout, shown.stderr]
    assert [o for o in outputs if "hunter2pass" in o] == []
    assert [p for p in tmp_path.rglob("*") if p.is_file() and b"hunter2pass" in p.read_bytes()] == []
