from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from stability.store import Store
from stability.testing.wire_server import WireServer
from tests.conftest import ROOT, write
from tests.gates import Gate


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "stability", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=timeout, cwd=ROOT)


def test_iterate_runs_show_json(tmp_path: Path, db: Path) -> None:
    start = write(tmp_path / "c.md", "# T\n- a\n- b\n")
    done = cli("iterate", "--model", "scripted/decline", "--constitution", str(start), "--db", str(db))
    assert done.returncode == 0, done.stderr
    assert "stop: declined" in done.stdout and "- a" in done.stdout
    listed = json.loads(cli("runs", "--json", "--db", str(db)).stdout)
    assert len(listed) == 1 and listed[0]["stop_reason"] == "declined" and listed[0]["steps"] == 2
    shown = json.loads(cli("show", listed[0]["id"][:6], "--json", "--db", str(db)).stdout)
    assert [s["decision"] for s in shown["steps"]] == ["origin", "declined", "declined"]
    assert shown["run"]["template_hash"].startswith("sha256:")
    text = cli("show", listed[0]["id"], "--db", str(db))
    assert text.returncode == 0 and "step 2 declined" in text.stdout


def test_models_json() -> None:
    out = json.loads(cli("models", "--json").stdout)
    assert {m["prefix"] for m in out} == {"anthropic", "openai", "litellm", "local", "hf", "scripted"}


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "c.md:1: empty file"),
        (b"# only a title\n", "c.md:2: no bullets"),
        (b"- x\n- x\n", "c.md:2: duplicate principle"),
        (b"- \xff\xfe\n", "c.md:1: not UTF-8"),
        (b"\x00\x00\x00", "c.md:1: binary file"),
    ],
)
def test_bad_constitution_is_one_line_exit_2_nothing_written(tmp_path: Path, db: Path, content: bytes,
                                                             expected: str) -> None:
    path = tmp_path / "c.md"
    path.write_bytes(content)
    done = cli("iterate", "--model", "scripted/decline", "--constitution", str(path), "--db", str(db))
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and expected in done.stderr and "Traceback" not in done.stderr
    assert not db.exists()


def test_expected_failures_have_no_traceback(tmp_path: Path, db: Path) -> None:
    start = write(tmp_path / "c.md", "- a\n")
    for args, expected in [
        (("iterate", "--model", "gtp-4o", "--constitution", str(start)), "unknown model"),
        (("iterate", "--model", "openai/gpt-4o", "--constitution", str(start)), "set OPENAI_API_KEY"),
        (("show", "r-nope"), "no such database"),
    ]:
        done = cli(*args, "--db", str(db))
        assert done.returncode == 2, done.stderr
        assert expected in done.stderr and "Traceback" not in done.stderr


def test_a_flag_the_protocol_does_not_take_is_one_line_naming_it(tmp_path: Path, db: Path) -> None:
    """Each protocol declares its flags, so a flag of another protocol is refused before anything is written."""
    start = write(tmp_path / "c.md", "- a\n- b\n")
    for protocol, flag in [("fresh-instance", ("--trials", "2")), ("rate-alternatives", ("--max-steps", "3")),
                           ("free-form-edit", ("--rounds", "2"))]:
        done = cli("iterate", "--protocol", protocol, "--model", "scripted/decline", "--constitution", str(start),
                   *flag, "--db", str(db))
        assert done.returncode == 2, done.stderr
        assert done.stderr.count("\n") == 1 and f"{flag[0]} does not apply to protocol {protocol}" in done.stderr
    assert not db.exists()
    # --size means blank_size for iteration protocols and size for blank-slate: both reach their option
    done = cli("iterate", "--protocol", "blank-slate", "--model", "scripted/decline", "--size", "3", "--db", str(db))
    assert done.returncode in (0, 1), done.stderr  # the scripted model declines to write: parse failures
    shown = json.loads(cli("runs", "--json", "--db", str(db)).stdout)
    assert shown[0]["protocol"] == "blank-slate"
    with Store.open(db, read_only=True) as store:
        assert store.run(shown[0]["id"]).config["options"] == {"size": 3}


def grow_to_six(messages: list[dict[str, Any]]) -> str:
    lines = [line for line in messages[-1]["content"].splitlines() if line.startswith("- ")]
    if len(lines) >= 6:
        return "NO CHANGE"
    return "REVISED CONSTITUTION:\n" + "\n".join(lines + [f"- principle {len(lines) + 1}"])


def test_sigkill_mid_run_then_resume_sends_no_completed_call_twice(tmp_path: Path, db: Path,
                                                                  allow_network: None) -> None:
    start = write(tmp_path / "c.md", "- principle 1\n- principle 2\n")
    gate = Gate(grow_to_six, allowed=2)  # two answers, then the third request is held until the process is dead
    with WireServer(reply=gate) as server:
        env = {"OPENAI_BASE_URL": server.url + "/v1", "OPENAI_API_KEY": "sk-kill-test-key-0000",
               "STABILITY_ALLOW_NETWORK": "1"}
        args = [sys.executable, "-m", "stability", "iterate", "--model", "openai/fake", "--constitution",
                str(start), "--db", str(db)]
        process = subprocess.Popen(args, env={**os.environ, **env}, cwd=ROOT, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while server.count < 3 and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.05)
        assert server.count == 3, (server.count, process.poll())  # the third request is in flight, held
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
        before = server.count
        gate.open()
        with Store.open(db, read_only=True) as store:
            [run] = store.runs()
            assert run.status == "running"  # killed, never finished
            stored_before = len(store.calls(run.id))
        assert 2 <= stored_before <= before
        done = cli("iterate", "--resume", run.id, "--db", str(db), env=env)
        assert done.returncode == 0, done.stderr
        bodies = server.bodies
    with Store.open(db, read_only=True) as store:
        run = store.run(run.id)
        calls = store.calls(run.id)
        revisions = store.revisions(run.id)
    assert (run.status, run.stop_reason) == ("done", "declined")
    assert [r.decision for r in revisions] == ["origin"] + ["changed"] * 4 + ["declined"] * 2
    # Every completed call is in the database exactly once ...
    assert len(calls) == len({(c.cache_key, c.sample_index) for c in calls}) == 6
    # ... and the server saw no request twice, except at most the one in flight at the kill.
    assert sum(bodies.values()) == server.count
    assert max(bodies.values()) <= 2 and sum(n - 1 for n in bodies.values()) <= 1
    assert server.count - before == 6 - stored_before
    assert b"sk-kill-test-key" not in db.read_bytes()
