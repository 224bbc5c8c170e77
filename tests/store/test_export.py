"""Results that travel: Parquet exports with a dataset card, ``import-store``, and ``--cache-from``."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from stability.experiment import run_experiment
from stability.store import Store
from stability.testing.wire_server import WireServer
from tests.conftest import run_cli, write
from tests.experiment.test_runner import grow
from tests.store.test_merge import contents

KEY = "sk-test-openai-key-000000"  # the wire fixture's fake key
PASSWORD = "hunter2pass"


def spec_file(tmp_path: Path, name: str, constitution: str = "- principle 1\n") -> Path:
    write(tmp_path / name / "c.md", constitution)
    return write(tmp_path / f"{name}.yaml", f"""
name: {name}
models: [openai/fake]
constitutions: ["{tmp_path}/{name}/c.md"]
protocols:
  - name: fresh-instance
    options: {{max_steps: 6}}
replicates: 2
cache: global
""")


@pytest.fixture
def store_with_two_experiments(tmp_path: Path, db: Path, wire: WireServer,
                               monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    wire.reply = grow
    monkeypatch.setenv("OPENAI_BASE_URL", wire.url.replace("http://", f"http://alice:{PASSWORD}@") + "/v1")
    first = run_experiment(spec_file(tmp_path, "first"), db)
    second = run_experiment(spec_file(tmp_path, "second", "- principle 1\n- principle 2\n"), db)
    assert first.done == 2 and second.done == 2 and wire.count > 0
    return first.experiment_id, second.experiment_id


def exported_text(folder: Path) -> str:
    """Every value of every Parquet file as text, and every other file as it is."""
    con = duckdb.connect()
    parts = []
    for file in sorted(folder.iterdir()):
        parts.append(file.read_bytes().decode("utf-8", errors="replace"))
        if file.suffix == ".parquet":
            parts += [str(row) for row in con.execute(f"SELECT * FROM read_parquet('{file}')").fetchall()]
    return "\n".join(parts)


def test_export_has_no_secrets_and_reads_back_equal(store_with_two_experiments: tuple[str, str], tmp_path: Path,
                                                    db: Path, capsys: pytest.CaptureFixture[str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "export-all"
    code, stdout, err = run_cli(["export", "--all", "--format", "parquet", "-o", str(out), "--db", str(db)], capsys,
                                monkeypatch)
    assert code == 0, err
    files = {p.name for p in out.iterdir()}
    assert {"runs.parquet", "calls.parquet", "revisions.parquet", "README.md", "stability-export.json"} <= files
    text = exported_text(out)
    assert "sk-test" not in text and KEY not in text and PASSWORD not in text
    assert "127.0.0.1" in text  # the base URL is there, without its credentials
    card = (out / "README.md").read_text()
    for needed in ("## Provenance", "## Models", "`openai/fake`", "## Spec: first", "## Spec: second",
                   "pd.read_parquet", "import duckdb", 'data_files="revisions.parquet"', "### calls", "cache_key",
                   "config_name: runs"):
        assert needed in card, needed
    snippet = card.split("import duckdb\n", 1)[1].split("```", 1)[0]  # the DuckDB snippet runs in the folder
    monkeypatch.chdir(out)
    exec(snippet, {"duckdb": __import__("duckdb")})
    assert "changed" in capsys.readouterr().out
    monkeypatch.chdir(tmp_path)
    back = tmp_path / "back.duckdb"
    code, stdout, err = run_cli(["import-store", str(out), "--db", str(back)], capsys, monkeypatch)
    assert code == 0, err
    assert contents(back) == contents(db)
    code, stdout, _ = run_cli(["import-store", str(out), "--db", str(back)], capsys, monkeypatch)
    assert code == 0 and "nothing new" in stdout and contents(back) == contents(db)  # idempotent


def test_export_of_one_experiment_selects_its_rows(store_with_two_experiments: tuple[str, str], tmp_path: Path,
                                                   db: Path, capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = store_with_two_experiments
    out = tmp_path / "export-first"
    code, _, err = run_cli(["export", first, "-o", str(out), "--db", str(db)], capsys, monkeypatch)
    assert code == 0, err
    con = duckdb.connect()
    with Store.open(db, read_only=True) as store:
        mine = {c.run_id for c in store.cells(first)}
        nodes = {r.constitution_hash for run in mine for r in store.revisions(str(run))}
    assert {r[0] for r in con.execute(f"SELECT id FROM '{out}/runs.parquet'").fetchall()} == mine
    assert {r[0] for r in con.execute(f"SELECT DISTINCT run_id FROM '{out}/calls.parquet'").fetchall()} == mine
    assert {r[0] for r in con.execute(f"SELECT id FROM '{out}/experiments.parquet'").fetchall()} == {first}
    assert {r[0] for r in con.execute(f"SELECT hash FROM '{out}/constitutions.parquet'").fetchall()} == nodes
    card = (out / "README.md").read_text()
    assert "## Spec: first" in card and "## Spec: second" not in card
    code, _, err = run_cli(["export", first, "-o", str(out), "--db", str(db)], capsys, monkeypatch)
    assert code == 2 and "already exists" in err
    code, _, err = run_cli(["export", "no-such", "-o", str(tmp_path / "x"), "--db", str(db)], capsys, monkeypatch)
    assert code == 2 and "no experiment 'no-such'" in err and not (tmp_path / "x").exists()


@pytest.mark.parametrize("as_folder", [False, True])
def test_cache_from_answers_from_another_store_read_only(tmp_path: Path, wire: WireServer, as_folder: bool,
                                                         capsys: pytest.CaptureFixture[str],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    wire.reply = grow
    theirs, mine = tmp_path / "theirs.duckdb", tmp_path / "mine.duckdb"
    spec = spec_file(tmp_path, "shared")
    run_experiment(spec, theirs)
    sent, before = wire.count, contents(theirs)
    source = theirs
    if as_folder:
        source = tmp_path / "theirs-export"
        assert run_cli(["export", "--all", "-o", str(source), "--db", str(theirs)], capsys, monkeypatch)[0] == 0
    code, _, err = run_cli(["run", str(spec), "--db", str(mine), "--cache-from", str(source)], capsys, monkeypatch)
    assert code == 0, err
    assert wire.count == sent  # every call answered from the other store: nothing paid twice
    assert contents(theirs) == before  # read-only
    their_ids = {r[0] for r in before["calls"]}
    with Store.open(mine, read_only=True) as store:
        calls = [c for r in store.runs() for c in store.calls(r.id)]
    assert calls and all(c.cached_from in their_ids and c.cost_usd == 0.0 for c in calls)
    code, _, err = run_cli(["run", str(spec), "--db", str(tmp_path / "x.duckdb"), "--cache-from",
                            str(tmp_path / "nope.duckdb")], capsys, monkeypatch)
    assert code == 2 and "nope.duckdb: no such store" in err and not (tmp_path / "x.duckdb").exists()
