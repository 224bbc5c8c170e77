"""``stability export --format inspect``: Inspect AI eval logs out (read back by ``inspect_ai`` itself, loaded by
its dataframes, shown by ``inspect view`` in a headless Chromium) and back in with ``import-store``."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from stability.experiment import run_experiment
from stability.store import Store
from stability.testing.wire_server import WireServer
from tests.conftest import run_cli, write
from tests.store.test_merge import contents

pytest.importorskip("inspect_ai", reason="inspect_ai is not installed (pip install -e '.[inspect]')")

from inspect_ai.analysis import evals_df, samples_df  # noqa: E402
from inspect_ai.log import read_eval_log  # noqa: E402

KEY = "sk-test-openai-key-000000"  # the wire fixture's fake key


def _reply(messages: list[dict]) -> str:
    """Grow the constitution twice, then decline: a fixed point by declines."""
    text = messages[-1]["content"]
    if "principle 3" in text:
        return "NO CHANGE"
    if "principle 2" in text:
        return "REVISED CONSTITUTION:\n- principle 1\n- principle 2\n- principle 3\n"
    return "REVISED CONSTITUTION:\n- principle 1\n- principle 2\n"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str, Path]]:
    """One store (an experiment of four runs on the local wire server) and its Inspect export, for every test."""
    from stability.inspect_log import export_inspect

    folder = tmp_path_factory.mktemp("inspect")
    db = folder / "store.duckdb"
    with pytest.MonkeyPatch.context() as patch, WireServer() as wire:
        patch.setenv("STABILITY_ALLOW_NETWORK", "1")
        patch.setenv("OPENAI_BASE_URL", wire.url + "/v1")
        patch.setenv("OPENAI_API_KEY", KEY)
        patch.setenv("STABILITY_EMBEDDING_CACHE", str(folder / "embeddings.duckdb"))
        wire.reply = _reply
        write(folder / "c.md", "- principle 1\n")
        spec = write(folder / "spec.yaml", f"""
name: small
models: [openai/fake, openai/other]
constitutions: ["{folder}/c.md"]
protocols:
  - name: fresh-instance
    options: {{max_steps: 6}}
replicates: 2
""")
        result = run_experiment(spec, db)
        assert result.done == 4
        exported = export_inspect(db, [result.experiment_id], False, folder / "export", "hashing")
        assert len(exported.logs) == 2 and exported.samples == 4
        yield db, result.experiment_id, folder / "export"


@pytest.fixture
def experiment(built: tuple[Path, str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A copy of the built store at the test's ``db``, with the wire fixture's key set."""
    shutil.copy(built[0], tmp_path / "test.duckdb")
    monkeypatch.setenv("STABILITY_EMBEDDING_CACHE", str(built[0].parent / "embeddings.duckdb"))
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    return built[1]


def export(tmp_path: Path, db: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
           *selection: str, name: str = "inspect") -> tuple[int, Path, str, str]:
    out = tmp_path / name
    code, stdout, err = run_cli(["export", *selection, "--format", "inspect", "--embedder", "hashing", "-o",
                                 str(out), "--db", str(db)], capsys, monkeypatch)
    return code, out, stdout, err


def test_export_writes_one_log_per_model_and_protocol_that_inspect_reads(
        experiment: str, tmp_path: Path, db: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, stdout, err = export(tmp_path, db, capsys, monkeypatch, experiment)
    assert code == 0, err
    assert "exported 4 runs as 2 Inspect logs" in stdout
    files = sorted(out.glob("*.eval"))
    assert len(files) == 2
    with Store.open(db, read_only=True) as store:
        runs = {r.id: r for r in store.runs()}
        calls = {i: store.calls(i) for i in runs}
    seen = set()
    for file in files:
        log = read_eval_log(str(file), resolve_attachments=True)
        assert log.status == "success" and log.eval.task == "stability/fresh-instance"
        assert log.eval.metadata is not None
        assert [e["name"] for e in log.eval.metadata["experiments"]] == ["small"]
        assert log.eval.metadata["experiments"][0]["spec"]["replicates"] == 2
        assert log.samples is not None and len(log.samples) == 2
        for sample in log.samples:
            run = runs[str(sample.id)]
            seen.add(run.id)
            assert run.model == log.eval.model
            assert sample.input == "- principle 1\n"
            events = [e for e in sample.events if e.event == "model"]
            assert [e.metadata["call_id"] for e in events] == [c.id for c in calls[run.id]]  # type: ignore[index]
            first = events[0]
            assert first.output.usage is not None and first.output.usage.input_tokens == calls[run.id][0].input_tokens
            assert first.call is not None and first.call.request == calls[run.id][0].request
            assert first.output.completion == calls[run.id][0].text
            assert sample.scores is not None
            assert sample.scores["verdict"].value == "fixed_point"
            assert sample.scores["fixed_point_step"].value == 2
            assert sample.scores["steps"].value >= 2  # type: ignore[operator]
            assert sample.scores["principles_kept"].value == 1 and sample.scores["principles_added"].value == 2
            assert sample.scores["principles_removed"].value == 0
            assert 0 < sample.scores["distance"].value <= 2  # type: ignore[operator]
            assert any(m.role == "assistant" and "REVISED" in m.text for m in sample.messages)
    assert seen == set(runs)
    samples = samples_df(str(out))
    assert set(samples["id"]) == set(runs)
    assert set(samples["score_verdict"]) == {"fixed_point"}
    evals = evals_df(str(out))
    assert sorted(evals["model"]) == ["openai/fake", "openai/other"]
    raw = b"".join(zipfile.ZipFile(f).read(n) for f in files for n in zipfile.ZipFile(f).namelist())
    assert KEY.encode() not in raw


def test_import_store_rebuilds_the_same_runs_nodes_and_calls(
        built: tuple[Path, str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    db, _, out = built
    back = tmp_path / "back.duckdb"
    code, stdout, err = run_cli(["import-store", str(out), "--db", str(back)], capsys, monkeypatch)
    assert code == 0, err
    assert "runs 4" in stdout
    assert contents(back) == contents(db)
    code, stdout, _ = run_cli(["import-store", str(out), "--db", str(back)], capsys, monkeypatch)
    assert code == 0 and "nothing new" in stdout


def test_a_run_id_selects_one_run_and_a_failed_run_has_no_verdict(
        experiment: str, tmp_path: Path, db: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    with Store.open(db, read_only=True) as store:
        run = store.runs()[0].id
    con = duckdb.connect(str(db))
    con.execute("UPDATE runs SET status = 'failed', stop_reason = NULL, error = 'boom' WHERE id = ?", [run])
    con.close()
    code, out, stdout, err = export(tmp_path, db, capsys, monkeypatch, run)
    assert code == 0, err
    [file] = out.glob("*.eval")
    [sample] = read_eval_log(str(file)).samples or []
    assert str(sample.id) == run
    assert sample.error is not None and sample.error.message == "boom"
    assert sample.scores is not None and sample.scores["verdict"].value == "no_verdict"
    assert "fixed_point_step" not in sample.scores and "stop_reason" not in sample.scores


def test_a_secret_in_the_store_refuses_the_export(experiment: str, tmp_path: Path, db: Path,
                                                  capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    con = duckdb.connect(str(db))
    con.execute("UPDATE runs SET model_params = json_object('api_key', ?)", [KEY])
    con.close()
    code, out, _, err = export(tmp_path, db, capsys, monkeypatch, experiment)
    assert code == 2 and "secret variable" in err and len(err.strip().splitlines()) == 1
    assert not out.exists() and not list(tmp_path.glob(".inspect.*"))


def _tampered(source: Path, target: Path, change) -> Path:  # type: ignore[no-untyped-def]
    """A copy of the export folder ``source`` whose first log's first sample is changed by ``change``."""
    shutil.copytree(source, target)
    file = sorted(target.glob("*.eval"))[0]
    with zipfile.ZipFile(file) as archive:
        members = {n: archive.read(n) for n in archive.namelist()}
    name = next(n for n in members if n.startswith("samples/"))
    sample = json.loads(members[name])
    change(sample)
    members[name] = json.dumps(sample).encode()
    with zipfile.ZipFile(file, "w") as archive:
        for n, data in members.items():
            archive.writestr(n, data)
    return file


@pytest.mark.parametrize("change, problem", [
    (lambda s: s["metadata"]["stability"].update(surprise=1), "Extra inputs are not permitted"),
    (lambda s: s["metadata"]["stability"]["rows"]["runs"][0].update(extra_column=1),
     "'extra_column' is not a column of table runs"),
    (lambda s: s["metadata"]["stability"]["rows"]["constitutions"][0].update(text="- forged\n"),
     "rows of table constitutions"),
    (lambda s: s["metadata"].pop("stability"), "not a stability Inspect log"),
])
def test_a_bad_log_is_refused_in_one_line_and_nothing_written(
        built: tuple[Path, str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch, change, problem: str) -> None:  # type: ignore[no-untyped-def]
    file = _tampered(built[2], tmp_path / "bad", change)
    back = tmp_path / "back.duckdb"
    code, _, err = run_cli(["import-store", str(tmp_path / "bad"), "--db", str(back)], capsys, monkeypatch)
    assert code == 2 and problem in err and len(err.strip().splitlines()) == 1, err
    assert str(file.parent) in err
    assert not back.exists()


def test_without_inspect_ai_one_line_and_exit_2(experiment: str, tmp_path: Path, db: Path,
                                               capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "inspect_ai", None)  # import inspect_ai now raises ImportError
    code, out, _, err = export(tmp_path, db, capsys, monkeypatch, experiment)
    assert code == 2 and "stability[inspect]" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def inspect_view(built: tuple[Path, str, Path]) -> Iterator[tuple[str, str, str]]:
    """``inspect view`` on the export (its own server, on a free port of 127.0.0.1): its URL, a run's model and
    id."""
    db, out = built[0], built[2]
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "inspect_ai", "view", "start", "--host", "127.0.0.1",
                               "--port", str(port), "--log-dir", str(out)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env={**os.environ, "INSPECT_LOG_DIR": str(out)})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60  # inspect_ai takes a few seconds to start its server
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(url, timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        with Store.open(db, read_only=True) as store:
            run = store.runs()[0]
        yield url, run.model, run.id
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="no chromium on this machine (apt-get install chromium)")
def test_inspect_view_shows_a_runs_sample(inspect_view: tuple[str, str, str]) -> None:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    url, model, run = inspect_view
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 860})
            page.goto(url)
            page.get_by_text(model, exact=True).first.click(timeout=30_000)  # its log, in the list of logs
            page.get_by_text(run, exact=True).first.wait_for(timeout=30_000)  # its sample, in the log's samples
            assert page.get_by_text("fixed_point").count() >= 1  # the verdict scored
            if os.environ.get("STABILITY_SCREENSHOT_DIR"):
                page.screenshot(path=str(Path(os.environ["STABILITY_SCREENSHOT_DIR"]) / "inspect-view.png"))
        finally:
            browser.close()


def test_a_file_that_is_not_a_log_is_refused_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "logs" / "broken.eval", "not a zip archive")
    back = tmp_path / "back.duckdb"
    code, _, err = run_cli(["import-store", str(tmp_path / "logs"), "--db", str(back)], capsys, monkeypatch)
    assert code == 2 and "broken.eval: not an Inspect log" in err and len(err.strip().splitlines()) == 1, err
    assert not back.exists()
