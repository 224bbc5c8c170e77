"""Hostile input through the CLI's one error boundary (stability.cli.boundary): exit 2, exactly one line on stderr
(never a traceback), nothing written, nothing executed. With ``--json``, stdout holds one JSON error object.

Most cases run in this process through ``main()`` (quick); those that need a process of their own (the encoding,
a closed or full stdout, a deleted working folder, bytes that are not UTF-8 in argv, a full disk) run the CLI in a
subprocess.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_cli, write

GOOD = "- principle one\n- café principle two ✓\n"
SPEC = "name: hostile\nmodels: [scripted/decline]\nprotocols: [fresh-instance]\nconstitutions: [{good}]\n"
BOMB = ("a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
        "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
        "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
        "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]\nh: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]\n")
HUGE = 2**63


def _digest(folder: Path) -> str:
    """Every file under the test's folder, by name and content: a case that writes anything changes it."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()):
        if path.name.startswith("embedding-cache"):
            continue
        digest.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def base_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with one finished run (a non-ASCII principle in it), built once and copied into each test."""
    from stability.engine import IterateConfig, iterate

    folder = tmp_path_factory.mktemp("hostile")
    start = write(folder / "good.md", GOOD)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("STABILITY_RETRY_INITIAL", "0")
        iterate(IterateConfig(protocol="fresh-instance", model="scripted/decline", constitution=str(start)),
                folder / "store.duckdb")
    return folder / "store.duckdb"


@pytest.fixture
def folder(base_store: Path, tmp_path: Path) -> Path:
    """The test's folder: ``store.duckdb`` (a copy of the base store) and ``good.md``, a good constitution."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "store.duckdb").write_bytes(base_store.read_bytes())
    write(work / "good.md", GOOD)
    return work


def _run_id(db: Path) -> str:
    from stability.store import Store

    with Store.open(db, read_only=True) as store:
        return store.runs()[0].id


# (id, files to write {name: text | "<dir>" | "<loop>" | "<fifo>"}, command line)
# In command lines {t} is the test's folder, {db} its store, {run} the stored run's id. Every case must exit 2 with
# one line on stderr, and leave every file under {t} as it was (no new file either).
CASES: list[tuple[str, dict[str, str], str] | object] = [
    # specs
    ("spec-yaml-bomb", {"s.yaml": BOMB}, "run {t}/s.yaml --db {db}"),
    ("spec-python-tag", {"s.yaml": "name: x\nmodels: !!python/object/apply:os.system ['touch {t}/pwned']\n"},
     "run {t}/s.yaml --db {db}"),
    ("spec-wrong-type-name", {"s.yaml": "name: [1, 2]\nmodels: [scripted/decline]\nprotocols: [fresh-instance]\n"},
     "run {t}/s.yaml --db {db}"),
    ("spec-unknown-key", {"s.yaml": SPEC + "colour: blue\n"}, "run {t}/s.yaml --db {db}"),
    ("spec-huge", {"s.yaml": "name: x\n# " + "x" * 3_000_000 + "\n"}, "run {t}/s.yaml --db {db}"),
    ("spec-template-escape", {"s.yaml": SPEC + "parameters: {templates: ['../x']}\n"}, "run {t}/s.yaml --db {db}"),
    ("spec-symlink-loop", {"loop1.md": "<loop>", "s.yaml": SPEC.replace("{good}", "loop1.md")},
     "run {t}/s.yaml --db {db}"),
    ("spec-glob-symlink-loop", {"loop1.md": "<loop>", "s.yaml": SPEC.replace("{good}", "'*.md'")},
     "run {t}/s.yaml --dry-run --db {db}"),
    ("spec-fifo", {"s.yaml": "<fifo>"}, "run {t}/s.yaml --db {db}"),
    ("spec-folder", {"s.yaml": "<dir>"}, "run {t}/s.yaml --db {db}"),
    ("spec-store-as-spec", {}, "run {db} --db {db}"),
    ("spec-negative-replicates", {"s.yaml": SPEC + "replicates: -3\n"}, "run {t}/s.yaml --db {db}"),
    ("spec-nan-temperature", {"s.yaml": SPEC + "parameters: {temperature: [.nan]}\n"}, "run {t}/s.yaml --db {db}"),
    ("spec-agents-huge", {"s.yaml": SPEC.replace("[fresh-instance]", "[{name: multi-agent-discussion, options: "
                                                 "{agents: [" + ", ".join(f"{{name: a{i}}}" for i in range(500))
                                                 + "]}}]")}, "run {t}/s.yaml --dry-run --db {db}"),
    # constitutions
    ("constitution-symlink-loop", {"loop1.md": "<loop>"}, "iterate -m scripted/decline -c {t}/loop1.md --db {db}"),
    ("constitution-fifo", {"c.md": "<fifo>"}, "iterate -m scripted/decline -c {t}/c.md --db {db}"),
    ("constitution-binary", {"c.md": "\x00\x01\x02PNG"}, "iterate -m scripted/decline -c {t}/c.md --db {db}"),
    ("constitution-missing", {}, "iterate -m scripted/decline -c {t}/nothing.md --db {db}"),
    ("constitution-empty", {"c.md": ""}, "iterate -m scripted/decline -c {t}/c.md --db {db}"),
    # flags
    ("template-variant-parent", {}, "iterate -m scripted/decline -c {t}/good.md --templates ../x --db {db}"),
    ("template-variant-absolute", {}, "iterate -m scripted/decline -c {t}/good.md --templates /etc --db {db}"),
    ("template-variant-missing", {}, "iterate -m scripted/decline -c {t}/good.md --templates nowhere --db {db}"),
    ("unknown-flag", {}, "iterate -m scripted/decline -c {t}/good.md --bogus --db {db}"),
    ("seed-not-a-number", {}, "iterate -m scripted/decline -c {t}/good.md --seed abc --db {db}"),
    ("max-steps-negative", {}, "iterate -m scripted/decline -c {t}/good.md --max-steps -1 --db {db}"),
    ("agents-huge", {}, "iterate -m scripted/decline -c {t}/good.md -p multi-agent-discussion --agents 100000 "
                        "--db {db}"),
    ("rounds-huge", {}, "iterate -m scripted/decline -c {t}/good.md -p multi-agent-discussion --rounds 1000000 "
                        "--db {db}"),
    ("option-malformed", {}, "iterate -m scripted/decline -c {t}/good.md --option nokey --db {db}"),
    ("role-unknown-model", {}, "iterate -m scripted/decline -c {t}/good.md --role subject=nope/x --db {db}"),
    ("protocol-unknown", {}, "iterate -m scripted/decline -c {t}/good.md -p nope --db {db}"),
    ("resume-unknown-run", {}, "iterate --resume r-nope --db {db}"),
    ("epsilon-nan", {}, "analyze --all --embedder hashing --epsilon nan --db {db}"),
    ("epsilon-negative", {}, "analyze --all --embedder hashing --epsilon -1 --db {db}"),
    ("k-zero", {}, "analyze --all --embedder hashing --k 0 --db {db}"),
    ("cluster-threshold-huge", {}, "analyze --all --embedder hashing --cluster-threshold 5 --db {db}"),
    ("reworded-threshold-over-one", {}, "report --all --embedder hashing --reworded-threshold 2 -o {t}/r.html "
                                        "--db {db}"),
    ("graph-format-unknown", {}, "graph --all --format xml --db {db}"),
    ("probe-samples-zero", {}, "probe {run} --samples 0 --db {db}"),
    ("probe-samples-negative", {}, "probe {run} --samples -5 --db {db}"),
    ("judge-question-unknown", {}, "judge {run} --judge scripted/decline --questions nope --db {db}"),
    ("judge-without-model", {}, "judge {run} --db {db}"),
    ("port-too-large", {}, "view --port 99999 --db {db}"),
    ("port-negative", {}, "view --port -1 --db {db}"),
    ("port-huge", {}, f"view --port {HUGE} --db {{db}}"),
    ("missing-argument", {}, "show --db {db}"),
    ("extra-argument", {}, "protocols extra"),
    ("unknown-command", {}, "frobnicate"),
    # stores
    ("db-fifo", {"fifo.duckdb": "<fifo>"}, "runs --db {t}/fifo.duckdb"),
    ("db-dev-null", {}, "runs --db /dev/null"),
    ("db-symlink-loop", {"loop1.md": "<loop>"}, "runs --db {t}/loop1.md"),
    ("db-folder", {"d.duckdb": "<dir>"}, "runs --db {t}/d.duckdb"),
    ("db-text", {"t.duckdb": "not a database\n"}, "show r-x --db {t}/t.duckdb"),
    ("db-missing", {}, "runs --db {t}/none.duckdb"),
    ("db-under-a-file", {}, "runs --db {t}/good.md/store.duckdb"),
    ("show-unknown-run", {}, "show r-nope --db {db}"),
    ("merge-symlink-loop", {"loop1.md": "<loop>"}, "merge {t}/loop1.md -o {t}/m.duckdb"),
    ("merge-not-a-store", {}, "merge {t}/good.md -o {t}/m.duckdb"),
    ("merge-missing", {}, "merge {t}/none.duckdb -o {t}/m.duckdb"),
    ("export-onto-file", {}, "export --all -o {t}/good.md --db {db}"),
    ("export-unknown-experiment", {}, "export nope -o {t}/out --db {db}"),
    ("import-store-not-export", {}, "import-store {t} --db {t}/new.duckdb"),
    ("graph-into-missing-folder", {}, "graph --all -o {t}/nowhere/g.graphml --db {db}"),
    ("report-onto-folder", {"out": "<dir>"}, "report --all --embedder hashing -o {t}/out --db {db}"),
    ("library-missing", {}, "constitutions --library {t}/nolibrary"),
    ("library-show-escape", {}, "constitutions show ../../../etc/passwd"),
    ("import-format-unknown", {}, "import {t}/good.md --format nope -o {t}/out"),
]


def _make(folder: Path, files: dict[str, str], good: Path) -> None:
    for name, text in files.items():
        path = folder / name
        if text == "<dir>":
            path.mkdir()
        elif text == "<loop>":  # name -> name.b -> name
            os.symlink(path.name + ".b", path)
            os.symlink(path.name, folder / (path.name + ".b"))
        elif text == "<fifo>":
            os.mkfifo(path)
        else:
            write(path, text.replace("{good}", str(good)).replace("{t}", str(folder)))


@pytest.mark.parametrize(("case", "files", "command"), CASES,
                         ids=[c[0] if isinstance(c[0], str) else None for c in CASES])  # type: ignore[index]
def test_hostile_input_is_one_line_exit_2_and_writes_nothing(
        case: str, files: dict[str, str], command: str, folder: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    db = folder / "store.duckdb"
    _make(folder, files, folder / "good.md")
    args = command.format(t=folder, db=db, run=_run_id(db)).split()
    before = _digest(folder)
    code, out, err = run_cli(args, capsys, monkeypatch)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), (code, err)
    assert "Traceback" not in err and "\x1b" not in err
    assert out == ""
    assert _digest(folder) == before  # nothing written, no file created
    assert not (folder / "pwned").exists()  # nothing executed


def test_there_are_at_least_60_cases() -> None:
    assert len(CASES) >= 60


# -- --json: one JSON error object on stdout -------------------------------------------------------------------

JSON_COMMANDS = [
    ("runs", "runs --json --db {t}/none.duckdb", "none.duckdb"),
    ("show", "show r-nope --json --db {db}", "store.duckdb"),
    ("experiments", "experiments --json --db {t}/none.duckdb", "none.duckdb"),
    ("analyze", "analyze r-nope --json --embedder hashing --db {db}", "store.duckdb"),
    ("probe", "probe r-nope --json --db {db}", "store.duckdb"),
    ("judge", "judge r-nope --judge scripted/decline --json --db {db}", "store.duckdb"),
    ("run", "run {t}/none.yaml --json --db {db}", "none.yaml"),
    ("batches", "batches --json --prices {t}/none.yaml --db {db}", "none.yaml"),
    ("models", "models --json --bogus", None),
    ("protocols", "protocols --json extra", None),
    ("constitutions", "constitutions --json --tag bad", None),
    ("constitutions-show", "constitutions show nope --json", None),
]


@pytest.mark.parametrize(("command", "line", "named"), JSON_COMMANDS, ids=[c[0] for c in JSON_COMMANDS])
def test_json_commands_print_a_json_error_object(command: str, line: str, named: str | None, folder: Path,
                                                  capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    db = folder / "store.duckdb"
    before = _digest(folder)
    code, out, err = run_cli(line.format(t=folder, db=db).split(), capsys, monkeypatch)
    [stderr_line] = err.strip().splitlines()
    error = json.loads(out)
    assert code == 2 and set(error) == {"error", "file", "exit"} and error["exit"] == 2, (out, err)
    assert stderr_line == f"error: {error['error']}"
    if named is not None:
        assert error["file"] is not None and error["file"].endswith(named), error
    assert _digest(folder) == before


def test_a_bug_keeps_its_traceback_and_json_says_internal_error(folder: Path, capsys: pytest.CaptureFixture[str],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """An exception nobody expected is a bug: it is not dressed up as a one-line user error."""
    import stability.chain

    def broken(*args: object, **kwargs: object) -> None:
        raise TypeError("a bug")

    monkeypatch.setattr(stability.chain, "list_runs", broken)
    with pytest.raises(TypeError, match="a bug"):
        run_cli(["runs", "--json", "--db", str(folder / "store.duckdb")], capsys, monkeypatch)
    error = json.loads(capsys.readouterr().out)
    assert error["exit"] == 1 and error["error"].startswith("internal error (a bug"), error


@pytest.mark.parametrize(("raised", "fragment"), [
    (OSError(errno.ENOSPC, "No space left on device", "/data/store.duckdb"),
     "/data/store.duckdb: no space left on the device (disk full)"),
    (OSError(errno.EROFS, "Read-only file system", "/data/store.duckdb"), "/data/store.duckdb: read-only file system"),
    (OSError(errno.EACCES, "Permission denied", "/cache/x"), "/cache/x: permission denied"),
    (OSError(errno.EDQUOT, "Disk quota exceeded"), "disk quota exceeded"),
    ("duckdb-full", "no space left on the device (disk full)"),
    ("duckdb-commit-full", "no space left on the device (disk full)"),
    (RuntimeError("Symlink loop from '/data/a'"), "/data/a: too many levels of symbolic links"),
    (KeyboardInterrupt(), "interrupted"),
])
def test_environment_failures_met_inside_a_command_are_one_line(
        raised: BaseException | str, fragment: str, folder: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """ENOSPC and friends wherever they are met (here: where ``runs`` reads): one line, exit 2 (interrupt: 130)."""
    import duckdb

    import stability.chain

    error = {"duckdb-full": duckdb.IOException('IO Error: Could not write file "/data/x.duckdb": No space left on '
                                               'device'),
             "duckdb-commit-full": duckdb.TransactionException(  # a commit whose WAL write failed
                 'TransactionContext Error: Failed to commit: Could not write file "/data/x.duckdb.wal": No space '
                 'left on device')}.get(raised, raised) if isinstance(raised, str) else raised

    def failing(*args: object, **kwargs: object) -> None:
        assert isinstance(error, BaseException)
        raise error

    monkeypatch.setattr(stability.chain, "list_runs", failing)
    code, out, err = run_cli(["runs", "--json", "--db", str(folder / "store.duckdb")], capsys, monkeypatch)
    [line] = err.strip().splitlines()
    assert fragment in line and "Traceback" not in err, err
    expected = 130 if isinstance(raised, KeyboardInterrupt) else 2
    assert code == expected and json.loads(out)["exit"] == expected


# -- the process's own environment: a subprocess each ---------------------------------------------------------

def _cli(args: Sequence[str | bytes], cwd: Path | None = None, env: dict[str, str] | None = None,
         **streams: object) -> subprocess.CompletedProcess[bytes]:
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-m", "stability", *args], cwd=cwd or ROOT, env=environment,
                          timeout=180, **streams)  # type: ignore[call-overload]


def _one_error_line(done: subprocess.CompletedProcess[bytes]) -> str:
    err = done.stderr.decode("utf-8", "replace")
    lines = err.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and "Traceback" not in err, (done.returncode, err)
    return lines[0]


def test_an_ascii_terminal_gets_escapes_not_a_crash(folder: Path) -> None:
    db = folder / "store.duckdb"
    done = _cli(["show", _run_id(db), "--db", str(db)], capture_output=True, env={"PYTHONIOENCODING": "ascii"})
    assert done.returncode == 0, done.stderr
    assert b"caf\\xe9 principle two \\u2713" in done.stdout
    listed = _cli(["runs", "--json", "--db", str(db)], capture_output=True, env={"PYTHONIOENCODING": "ascii"})
    assert listed.returncode == 0 and json.loads(listed.stdout)[0]["id"] == _run_id(db)


def test_a_closed_stdout_is_refused_before_anything_is_written(folder: Path) -> None:
    before = _digest(folder)
    args = ["iterate", "-m", "scripted/decline", "-c", str(folder / "good.md"), "--db", str(folder / "store.duckdb")]
    done = subprocess.run([sys.executable, "-c", "import os, subprocess, sys; os.close(1); "
                           f"sys.exit(subprocess.run([sys.executable, '-m', 'stability', *{args!r}]).returncode)"],
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stderr=subprocess.PIPE, timeout=180)
    assert "standard output is closed" in _one_error_line(done)
    assert _digest(folder) == before


def test_a_full_stdout_is_one_line(folder: Path) -> None:
    with open("/dev/full", "wb") as full:
        done = _cli(["runs", "--db", str(folder / "store.duckdb")], stdout=full, stderr=subprocess.PIPE)
    assert _one_error_line(done) == "error: cannot write to standard output (No space left on device)"


def test_a_deleted_working_folder_is_one_line(folder: Path, tmp_path: Path) -> None:
    gone = tmp_path / "gone"
    gone.mkdir()
    script = (f"import os, subprocess, sys; os.chdir({str(gone)!r}); os.rmdir({str(gone)!r}); "
              "sys.exit(subprocess.run([sys.executable, '-m', 'stability', 'iterate', '-m', 'scripted/decline', "
              f"'-c', {str(folder / 'good.md')!r}]).returncode)")
    done = subprocess.run([sys.executable, "-c", script], env={**os.environ, "PYTHONPATH": str(ROOT)},
                          stderr=subprocess.PIPE, timeout=180)
    assert "the working folder no longer exists" in _one_error_line(done)


def test_arguments_that_are_not_utf8_are_one_line(folder: Path) -> None:
    done = _cli([b"show", b"\xff\xfe", b"--json", b"--db", str(folder / "store.duckdb").encode()],
                capture_output=True)
    assert "is not valid UTF-8 text" in _one_error_line(done)
    assert json.loads(done.stdout)["exit"] == 2


def test_an_unwritable_cache_folder_is_one_line(folder: Path, tmp_path: Path) -> None:
    """The local model's cache under a file (so it can never be created, even as root): one line naming it."""
    blocker = write(tmp_path / "blocker", "a file, not a folder\n")
    before = _digest(folder)
    done = _cli(["iterate", "-m", "local/gemma-3-270m", "-c", str(folder / "good.md"), "--db",
                 str(folder / "store.duckdb")], capture_output=True, env={"STABILITY_CACHE_DIR": str(blocker / "x")})
    line = _one_error_line(done)
    assert str(blocker) in line or "gemma" in line, line
    assert _digest(folder) == before


# -- a real full disk: a small tmpfs (root only; skipped elsewhere) -------------------------------------------

@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "full"
    mount.mkdir()
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)], capture_output=True,
                              timeout=30)
    except (OSError, subprocess.SubprocessError):
        pytest.skip("cannot mount a tmpfs here")
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.decode().strip()})")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True, timeout=30)


def _fill(mount: Path) -> None:
    with open(mount / "filler", "wb") as filler:
        try:
            while True:
                filler.write(b"\0" * 65536)
                filler.flush()
        except OSError as err:
            assert err.errno == errno.ENOSPC


@pytest.mark.parametrize("command", ["run", "read", "merge", "export", "graph"])
def test_a_full_disk_is_one_line_and_loses_nothing(command: str, full_disk: Path, folder: Path) -> None:
    from stability.store import Store

    db = full_disk / "store.duckdb"
    db.write_bytes((folder / "store.duckdb").read_bytes())
    run_id = _run_id(db)
    _fill(full_disk)
    args = {"run": ["iterate", "-m", "scripted/decline", "-c", str(folder / "good.md"), "--db", str(db)],
            "read": ["analyze", "--all", "--embedder", "hashing", "--db", str(folder / "store.duckdb")],
            "merge": ["merge", str(folder / "store.duckdb"), "-o", str(full_disk / "merged.duckdb")],
            "export": ["export", "--all", "-o", str(full_disk / "export"), "--db", str(db)],
            "graph": ["graph", "--all", "-o", str(full_disk / "g.graphml"), "--db", str(db)]}[command]
    env = {"STABILITY_EMBEDDING_CACHE": str(full_disk / "embeddings.duckdb")}
    done = _cli(args, capture_output=True, env=env)
    if command == "read":  # the embedding cache cannot be written: a note, and the analysis still answers
        assert done.returncode == 0 and b"embedding cache not used" in done.stderr, done.stderr
    else:
        assert "no space left on the device" in _one_error_line(done).lower() or \
            "No space left on device" in _one_error_line(done)
    (full_disk / "filler").unlink()
    with Store.open(db, read_only=True) as store:  # the store is whole, and its run is still there
        assert [r.id for r in store.runs()][:1] == [run_id]
    assert not (full_disk / "export").exists() and not (full_disk / "merged.duckdb").exists()
    assert not (full_disk / "g.graphml").exists() and not list(full_disk.glob(".*partial"))  # no half a graph


# -- the viewer: numbers out of range are a 400, not a 500 ----------------------------------------------------

@pytest.mark.parametrize("query", ["/api/runs?offset={huge}", "/api/runs?limit={huge}",
                                   "/api/runs/{run}?offset={huge}", "/api/graph?runs={run}&max_nodes={huge}",
                                   "/api/search?q=a&offset={huge}", "/api/runs/{run}/steps/{huge}"])
def test_viewer_numbers_out_of_range_are_400(query: str, folder: Path) -> None:
    pytest.importorskip("starlette")
    from stability.view import Viewer

    db = folder / "store.duckdb"
    with Viewer(db) as viewer:
        url = viewer.url + query.format(huge=HUGE, run=_run_id(db))
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(url, timeout=60)
        assert refused.value.code == 400
        body = json.loads(refused.value.read())
        assert "out of range" in body["error"], body
