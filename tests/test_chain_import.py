"""``stability import-chain``: versions written elsewhere become one run of protocol ``external``, a chain that
every command reads like any other (analyze, judge, the viewer, export and import-store)."""

from __future__ import annotations

import json
import subprocess
import urllib.request
from pathlib import Path

import pytest

from bench.sectioned_chain import write_chain
from stability.chain_import import import_chain, natural_key
from stability.documents import read_document
from stability.errors import StabilityError
from stability.models import scripted
from stability.models.scripted import ScriptedModel
from stability.store import Store
from stability.testing.judges import rule_judge
from tests.conftest import run_cli, write

V1 = "# Charter\n\n## Honesty\n\n- Be honest.\n  - Say what you know.\n- Be kind.\n\nA closing paragraph.\n"
V2 = "# Charter\n\n## Honesty\n\n- Be honest always.\n  - Say what you know.\n- Be kind.\n"


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "versions"
    write(folder / "v1.md", V1)
    write(folder / "v2.md", V1.replace("# Charter", "# Charter, again"))  # the same principles: declined
    write(folder / "v10.md", V1)  # after v2, not after v1: natural order
    write(folder / "v3.md", V2)
    write(folder / ".hidden.md", "- never read\n")
    return folder


def test_natural_order() -> None:
    assert sorted(["v10.md", "v2.md", "V1.md", "v1b.md"], key=natural_key) == ["V1.md", "v1b.md", "v2.md", "v10.md"]


def test_a_folder_becomes_one_external_chain_with_decisions_edges_and_provenance(tmp_path: Path, db: Path,
                                                                                 capsys: pytest.CaptureFixture[str],
                                                                                 monkeypatch: pytest.MonkeyPatch
                                                                                 ) -> None:
    folder = _folder(tmp_path)
    code, out, err = run_cli(["import-chain", str(folder), "--label", "hand-written", "--model", "chat-x",
                              "--db", str(db)], capsys, monkeypatch)
    assert code == 0, err
    lines = out.strip().splitlines()
    assert lines[0] == (f"{folder / 'v1.md'}: 4 principles (3 list items, 1 of them nested; 1 paragraphs) in "
                        "1 sections")
    assert [line.split(":")[0] for line in lines[:4]] == [str(folder / n) for n in ("v1.md", "v2.md", "v3.md",
                                                                                      "v10.md")]
    assert lines[-1].endswith("4 versions, 2 nodes (2 changed, 1 declined)")
    with Store.open(db, read_only=True) as store:
        [run] = store.runs()
        assert (run.protocol, run.model, run.status, run.stop_reason) == ("external", "chat-x", "done", "imported")
        options = run.config["options"]
        assert options["label"] == "hand-written" and options["sources"][0] == str(folder / "v1.md")
        revisions = store.revisions(run.id)
        assert [r.decision for r in revisions] == ["origin", "declined", "changed", "changed"]
        assert revisions[3].cycle_to == revisions[0].id  # v10 returns to v1's node
        assert [r.detail for r in revisions] == options["sources"]
        edges = store.edges(run.id)
        assert [e.kind for e in edges] == ["decline", "edit", "edit"]
        assert all(e.protocol == "external" and e.source_id == r.parent_id for e, r in zip(edges, revisions[1:],
                                                                                          strict=True))
        assert store.constitution(run.start_hash).principles == read_document(V1).constitution.principles
        sources = store.con.execute("SELECT path, metadata FROM constitution_sources ORDER BY path").fetchall()
        assert [s[0] for s in sources] == sorted(options["sources"])
        first = json.loads(sources[0][1])
        assert first["import"]["label"] == "hand-written" and first["import"]["step"] == 0
        nested = first["principle_readings"][1]
        assert nested == {"kind": "bullet", "line": 6, "section": "Honesty", "parents": ["Be honest."]}


def test_json_lines_carry_the_calls_that_made_each_version(tmp_path: Path, db: Path) -> None:
    rows: list[dict[str, object]] = [{"constitution": "- a\n- b\n", "step": 0},
            {"constitution": "- a\n- b, better\n", "model": "chat-y", "prompt": "Revise:\n- a\n- b",
             "answer": "REVISED CONSTITUTION:\n- a\n- b, better"},
            {"constitution": "- a\n- b, better\n", "model": "chat-y", "prompt": "Revise again", "answer": "NO CHANGE"}]
    source = write(tmp_path / "chain.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n")
    imported = import_chain([source], db)
    with Store.open(db, read_only=True) as store:
        run = store.run(imported.run_id)
        assert run.model == "chat-y"  # the one model the lines name
        calls = store.calls(run.id)
        assert [(c.step, c.text) for c in calls] == [(1, rows[1]["answer"]), (2, "NO CHANGE")]
        assert calls[0].request["messages"] == [{"role": "user", "content": rows[1]["prompt"]}]
        assert [e.call_ids for e in store.edges(run.id)] == [[calls[0].id], [calls[1].id]]
        assert [r.decision for r in store.revisions(run.id)] == ["origin", "changed", "declined"]
        [(text,)] = store.con.execute("SELECT metadata FROM constitution_sources WHERE path = ?",
                                      [f"{source}:1"]).fetchall()
        metadata = json.loads(text)
        assert metadata["import"]["fields"] == {"step": 0}


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
                   check=True, capture_output=True)


def test_a_files_git_history_is_a_chain_oldest_first(tmp_path: Path, db: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    for text, message in ((V1, "first"), (V2, "second")):
        write(repo / "old-name.md", text)
        _git(repo, "add", "old-name.md")
        _git(repo, "commit", "-qm", message)
    _git(repo, "mv", "old-name.md", "charter.md")
    write(repo / "charter.md", V2 + "- Be brief.\n")
    _git(repo, "add", "charter.md")
    _git(repo, "commit", "-qm", "renamed and extended")
    imported = import_chain([], db, git=repo / "charter.md", label="history")
    assert imported.versions == 3 and imported.changed == 2
    with Store.open(db, read_only=True) as store:
        revisions = store.revisions(imported.run_id)
        final = store.constitution(revisions[-1].constitution_hash)
        assert final.principles[-1] == "Be brief."
        assert store.constitution(revisions[0].constitution_hash).principles == \
            read_document(V1).constitution.principles
        commits = [json.loads(m)["import"]["commit"] for (m,) in store.con.execute(
            "SELECT metadata FROM constitution_sources ORDER BY path").fetchall()]
        assert all(c and len(c) == 40 for c in commits)
        assert all("@" in r.detail for r in revisions if r.detail)


@pytest.mark.parametrize(("name", "content", "problem"), [
    ("empty.md", "", "empty file"),
    ("invisible.md", "\u200b\n", "no visible text"),
    ("bad.jsonl", '{"constitution": "- a"}\nnot json\n', "bad.jsonl:2: not a valid JSON line"),
    ("shape.jsonl", '{"text": "- a"}\n', "shape.jsonl:1: expected an object with a 'constitution' string"),
    ("model.jsonl", '{"constitution": "- a", "model": 3}\n', "'model' must be a string"),
    ("binary.md", "- a\n\x00", "binary file"),
])
def test_bad_input_is_one_line_exit_2_and_nothing_written(tmp_path: Path, db: Path, name: str, content: str,
                                                          problem: str, capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    good = write(tmp_path / "good.md", V1)
    bad = write(tmp_path / name, content)
    code, out, err = run_cli(["import-chain", str(good), str(bad), "--db", str(db)], capsys, monkeypatch)
    assert code == 2
    assert str(bad) in err and problem in err and len(err.strip().splitlines()) == 1
    assert not db.exists()


def test_bad_sources_are_refused_before_anything_is_written(tmp_path: Path, db: Path,
                                                            capsys: pytest.CaptureFixture[str],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "empty-folder"
    empty.mkdir()
    outside = tmp_path / "not-a-repo"
    write(outside / "c.md", V1)
    for args, problem in (([str(empty)], "no files in the folder"), ([str(tmp_path / "missing.md")], "no such file"),
                          (["--git", str(outside / "c.md")], "git:"), ([], "give the versions")):
        code, _, err = run_cli(["import-chain", *args, "--db", str(db)], capsys, monkeypatch)
        assert code == 2 and problem in err and len(err.strip().splitlines()) == 1, (args, err)
    assert not db.exists()


def test_the_external_protocol_is_never_run(tmp_path: Path, db: Path, capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    start = write(tmp_path / "c.md", "- a\n")
    code, _, err = run_cli(["iterate", "-m", "scripted/decline", "-c", str(start), "--protocol", "external",
                            "--db", str(db)], capsys, monkeypatch)
    assert code == 2 and "import-chain" in err
    with Store.open(db) as store:
        assert store.runs() == []
    spec = write(tmp_path / "s.yaml", f"name: t\nmodels: [scripted/decline]\nconstitutions: [{start}]\n"
                                      "protocols: [external]\n")
    other = tmp_path / "spec.duckdb"
    code, _, err = run_cli(["run", str(spec), "--db", str(other)], capsys, monkeypatch)
    assert code == 2 and "never run" in err and len(err.strip().splitlines()) == 1
    assert not other.exists()


def test_the_synthetic_sectioned_chain_has_the_shape_asked_for(tmp_path: Path) -> None:
    facts = write_chain(tmp_path, 8)
    assert len(facts) == 8
    assert all(50_000 <= int(str(f["bytes"])) <= 230_000 for f in facts)
    assert all(550 <= int(str(f["bullets"])) <= 1_450 for f in facts)
    last = read_document((tmp_path / "v8.md").read_text(encoding="utf-8"))
    assert last.repeated > 0 and last.sections > 50
    assert any(p.parents for p in last.principles) and last.count("numbered") > 0 and last.count("paragraph") > 0


@pytest.fixture
def imported(tmp_path: Path, db: Path) -> str:
    """A small sectioned chain of the generator (three versions), imported."""
    folder = tmp_path / "chain"
    write_chain(folder, 3, seed=7)
    return import_chain([folder], db, label="synthetic").run_id


def test_analyze_judge_and_export_read_an_imported_chain(imported: str, db: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, err = run_cli(["analyze", imported, "--embedder", "hashing", "--json", "--db", str(db)], capsys,
                             monkeypatch)
    assert code == 0, err
    result = json.loads(out)
    [run] = result["runs"]
    assert run["run_id"] == imported and [s["decision"] for s in run["steps"]] == ["origin", "changed", "changed"]
    model = ScriptedModel(fn=rule_judge, name="scripted/chain-judge")
    scripted.register("chain-judge", lambda: model)
    code, out, err = run_cli(["judge", imported, "--judge", "scripted/chain-judge", "--questions", "contradiction",
                              "--embedder", "hashing", "--db", str(db)], capsys, monkeypatch)
    assert code == 0, err
    assert len(model.calls) == 2  # one question per node after the start
    out_dir = tmp_path / "export"
    code, _, err = run_cli(["export", "--all", "-o", str(out_dir), "--db", str(db)], capsys, monkeypatch)
    assert code == 0, err
    other = tmp_path / "other.duckdb"
    code, _, err = run_cli(["import-store", str(out_dir), "--db", str(other)], capsys, monkeypatch)
    assert code == 0, err
    with Store.open(db, read_only=True) as a, Store.open(other, read_only=True) as b:
        assert [r.id for r in b.runs()] == [imported]
        assert b.revisions(imported) == a.revisions(imported)
        assert b.edges(imported) == a.edges(imported)


def test_an_imported_chain_is_grouped_by_its_label_and_never_probed(imported: str, db: Path,
                                                                    capsys: pytest.CaptureFixture[str],
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, err = run_cli(["analyze", imported, "--by", "label", "--embedder", "hashing", "--json", "--db",
                              str(db)], capsys, monkeypatch)
    assert code == 0, err
    assert [g["key"] for g in json.loads(out)["groups"]] == [{"label": "synthetic"}]
    with Store.open(db, read_only=True) as store:
        calls = len(store.calls(imported))
    code, _, err = run_cli(["probe", imported, "--db", str(db)], capsys, monkeypatch)
    assert code == 2 and "never run" in err and len(err.strip().splitlines()) == 1
    with Store.open(db, read_only=True) as store:
        assert len(store.calls(imported)) == calls and store.probe_rows([imported]) == []


def test_the_viewer_shows_an_imported_chain(imported: str, db: Path) -> None:
    pytest.importorskip("starlette", reason="starlette is not installed (pip install -e '.[view]')")
    from stability.view import Viewer

    def get(viewer: Viewer, path: str) -> dict[str, object]:
        with urllib.request.urlopen(viewer.url + path, timeout=120) as response:
            return json.loads(response.read())

    with Viewer(db, embedder="hashing") as viewer:
        run = get(viewer, f"/api/runs/{imported}")
        assert run["run"]["protocol"] == "external"  # type: ignore[index]
        assert run["steps"]["total"] == 3  # type: ignore[index]
        graph = get(viewer, f"/api/graph?runs={imported}")
        assert len(graph["nodes"]) == 3  # type: ignore[arg-type]


def test_import_chain_refuses_files_and_git_together(tmp_path: Path, db: Path) -> None:
    with pytest.raises(StabilityError, match="not both"):
        import_chain([write(tmp_path / "a.md", V1)], db, git=tmp_path / "a.md")
