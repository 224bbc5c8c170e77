"""Inspecting a database while another process writes to it: an answer or one clear line, never a hang."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stability.store import Store
from stability.testing.wire_server import WireServer
from tests.cli.test_app import cli, grow_to_six
from tests.conftest import ROOT, run_cli, write
from tests.gates import Gate


def test_a_run_is_readable_within_a_second_of_its_first_stored_call(
        tmp_path: Path, db: Path, allow_network: None, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    start = write(tmp_path / "c.md", "- principle 1\n- principle 2\n")
    held = Gate(grow_to_six, allowed=1)  # one answer; the writer then waits on its second request, mid-run
    with WireServer(reply=held) as server:
        env = {"OPENAI_BASE_URL": server.url + "/v1", "OPENAI_API_KEY": "sk-inspect-key-0000",
               "STABILITY_ALLOW_NETWORK": "1"}  # the default snapshot interval (30 s): only the first is quick
        writer = subprocess.Popen([sys.executable, "-m", "stability", "iterate", "--model", "openai/fake",
                                   "--constitution", str(start), "--db", str(db)], env={**os.environ, **env},
                                  cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while server.count < 2 and time.monotonic() < deadline:  # the second request: the first call is stored
            time.sleep(0.01)
        stored = time.monotonic()
        try:
            listed: list[dict[str, object]] = []
            while time.monotonic() - stored < 5:
                code, out, err = _inspect(["runs", "--json", "--db", str(db)], capsys, monkeypatch)
                if code == 0:
                    listed = json.loads(out)
                    break
                assert f"a run is writing to it (process {writer.pid}: stability iterate" in err, err
                time.sleep(0.02)
            seen_after = time.monotonic() - stored
            assert [r["status"] for r in listed] == ["running"], (listed, err)
            assert seen_after < 1.0, seen_after
            assert re.search(r"reading its snapshot as of \d+ s ago", err), err
            for args in (("show", str(listed[0]["id"]), "--json"), ("analyze", "--all", "--embedder", "hashing")):
                code, _, err = _inspect([*args, "--db", str(db)], capsys, monkeypatch)
                assert code == 0 and "as of" in err, (args, err)
            assert writer.poll() is None  # the writer was there the whole time
        finally:
            held.open()
        _, stderr = writer.communicate(timeout=120)
        assert writer.returncode == 0, stderr
    # The writer finished untouched, and every inspection now answers from the store itself.
    with Store.open(db, read_only=True) as store:
        [run] = store.runs()
        assert (run.status, len(store.calls(run.id)), len(store.revisions(run.id))) == ("done", 6, 7)
    listed = json.loads(cli("runs", "--json", "--db", str(db)).stdout)
    assert [r["status"] for r in listed] == ["done"]
    shown = json.loads(cli("show", run.id[:6], "--json", "--db", str(db)).stdout)
    assert len(shown["steps"]) == 7


def _inspect(args: list[str], capsys: pytest.CaptureFixture[str],
             monkeypatch: pytest.MonkeyPatch) -> tuple[int, str, str]:
    """Run the CLI in this process (quick) on a store another process writes; (exit status, stdout, stderr)."""
    return run_cli(args, capsys, monkeypatch)


def test_a_running_experiment_is_read_from_its_snapshot_and_progress_grows(
        tmp_path: Path, db: Path, allow_network: None, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "c.md", "- principle 1\n- principle 2\n")
    spec = write(tmp_path / "spec.yaml", f"name: snap\nmodels: [openai/fake]\nconstitutions: [{tmp_path}/c.md]\n"
                                         "protocols: [fresh-instance]\nreplicates: 4\nmax_parallel_runs: 1\n")
    progress: list[int] = []
    inspected: dict[str, str] = {}
    gate = Gate(grow_to_six)  # the run gets one answer at a time, when this test lets it: no race with a clock
    with WireServer(reply=gate) as server:
        env = {"OPENAI_BASE_URL": server.url + "/v1", "OPENAI_API_KEY": "sk-snapshot-key-0000",
               "STABILITY_ALLOW_NETWORK": "1", "STABILITY_SNAPSHOT_SECONDS": "0.3"}
        writer = subprocess.Popen([sys.executable, "-m", "stability", "run", str(spec), "--db", str(db)],
                                  env={**os.environ, **env}, cwd=ROOT, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 240
        try:
            while writer.poll() is None and time.monotonic() < deadline:
                if server.count > gate.allowed:  # the run waits on a held request: one more answer
                    gate.allow()
                code, out, err = _inspect(["runs", "--json", "--db", str(db)], capsys, monkeypatch)
                if code == 2:  # before the store exists, or before the first snapshot: one line naming the run
                    assert not progress and (f"a run is writing to it (process {writer.pid}" in err
                                             or "no such database" in err), err
                    time.sleep(0.1)
                    continue
                assert code == 0, err
                if "snapshot" not in err and not Path(f"{db}.writer").exists():
                    break  # the writer closed the store meanwhile: this answer came from the store itself
                assert re.search(r"reading its snapshot as of \d+ s ago", err), (err, progress)
                listed = json.loads(out)
                progress.append(sum(r["calls"] for r in listed))
                if listed and not inspected:  # every inspection command reads the snapshot
                    for args in (["show", listed[0]["id"], "--json"], ["analyze", "--all", "--embedder", "hashing"],
                                 ["graph", "--all", "-o", str(tmp_path / "g.graphml")],
                                 ["report", "--all", "--embedder", "hashing", "-o", str(tmp_path / "r.html")]):
                        code, out, err = _inspect([*args, "--db", str(db)], capsys, monkeypatch)
                        assert code == 0 and "as of" in err, (args, err)
                        inspected[args[0]] = err
                if inspected and len(set(progress)) >= 2:
                    break  # seen growing: the run may finish at its own pace
                time.sleep(0.1)
        finally:
            gate.open()
            _, stderr = writer.communicate(timeout=240)
        assert writer.returncode == 0, stderr
    assert set(inspected) == {"show", "analyze", "graph", "report"}
    assert len(progress) >= 2 and progress == sorted(progress) and progress[-1] > progress[0], progress
    assert not Path(f"{db}.snapshot").exists() and not Path(f"{db}.writer").exists()  # the writer cleaned up
    with Store.open(db, read_only=True) as store:
        assert store.snapshot_age is None and len(store.runs()) == 4


def test_a_writer_refused_by_a_reader_is_told_it_is_reading(tmp_path: Path, db: Path,
                                                           capsys: pytest.CaptureFixture[str],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    start = write(tmp_path / "c.md", "- a\n- b\n")
    code, _, err = _inspect(["iterate", "-m", "scripted/decline", "-c", str(start), "--db", str(db)], capsys,
                            monkeypatch)
    assert code == 0, err
    reader = subprocess.Popen([sys.executable, "-c", "import sys, time; from stability.store import Store\n"
                               f"s = Store.open({str(db)!r}, read_only=True); print('open', flush=True); "
                               "time.sleep(60)"], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert reader.stdout is not None and reader.stdout.readline().strip() == "open"
        before = db.read_bytes()
        code, _, err = _inspect(["iterate", "-m", "scripted/decline", "-c", str(start), "--db", str(db)], capsys,
                                monkeypatch)
    finally:
        reader.kill()
        reader.wait()
    [line] = err.strip().splitlines()
    assert code == 2 and f"process {reader.pid} has it open for reading" in line and "writing" not in line, line
    assert db.read_bytes() == before
