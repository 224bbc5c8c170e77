"""Inspecting a database while another process writes to it: an answer or one clear line, never a hang."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from stability.store import Store
from stability.testing.wire_server import WireServer
from tests.cli.test_app import cli, grow_to_six
from tests.conftest import ROOT, write


def test_runs_show_analyze_while_iterate_writes(tmp_path: Path, db: Path, allow_network: None) -> None:
    start = write(tmp_path / "c.md", "- principle 1\n- principle 2\n")
    gate = threading.Event()

    def held(messages: list[dict[str, Any]]) -> str:  # the writer waits here, mid-run, holding the database
        gate.wait(60)
        return grow_to_six(messages)

    inspections = [("runs", "--json"), ("show", "r", "--json"), ("analyze", "--all", "--embedder", "hashing")]
    with WireServer(reply=held) as server:
        env = {"OPENAI_BASE_URL": server.url + "/v1", "OPENAI_API_KEY": "sk-inspect-key-0000",
               "STABILITY_ALLOW_NETWORK": "1"}
        writer = subprocess.Popen([sys.executable, "-m", "stability", "iterate", "--model", "openai/fake",
                                   "--constitution", str(start), "--db", str(db)], env={**os.environ, **env},
                                  cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while server.count < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        try:
            for args in inspections:
                done = cli(*args, "--db", str(db), timeout=60)  # a hang fails the test by timeout
                assert done.returncode == 2, (args, done.stdout, done.stderr)
                [line] = done.stderr.strip().splitlines()
                assert line.startswith(f"error: {db}:") and "in use by another process" in line, line
                assert writer.poll() is None  # the writer was there the whole time
        finally:
            gate.set()
        _, stderr = writer.communicate(timeout=60)
        assert writer.returncode == 0, stderr
    # The writer finished untouched, and every inspection now answers.
    with Store.open(db, read_only=True) as store:
        [run] = store.runs()
        assert (run.status, len(store.calls(run.id)), len(store.revisions(run.id))) == ("done", 6, 7)
    listed = json.loads(cli("runs", "--json", "--db", str(db)).stdout)
    assert [r["status"] for r in listed] == ["done"]
    shown = json.loads(cli("show", run.id[:6], "--json", "--db", str(db)).stdout)
    assert len(shown["steps"]) == 7
    analyzed = cli("analyze", "--all", "--embedder", "hashing", "--db", str(db))
    assert analyzed.returncode == 0, analyzed.stderr
