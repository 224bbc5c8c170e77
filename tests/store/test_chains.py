"""Message chains: each request message stored once; every reader of calls gets the whole request back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pytest

from stability.engine import IterateConfig, iterate
from stability.records import CallRecord, now
from stability.store import Store
from stability.store.call_lookup import find_calls
from stability.store.chains import node_hash, split
from stability.store.export import copy_runs, export_store, import_export
from stability.store.json_values import to_json
from stability.store.merge import merge_files
from stability.testing.wire_server import WireServer
from tests.conftest import revised, run_protocol, write


def _call(call_id: str, run_id: str, messages: list[dict[str, Any]], **request: Any) -> CallRecord:
    return CallRecord(id=call_id, run_id=run_id, step=1, purpose="revise", model="openai/m",
                      cache_key=f"sha256:{call_id}", sample_index=0, status="ok",
                      request={"model": "m", "messages": messages, "temperature": 0.5, **request},
                      response={"choices": [{"message": {"content": "NO CHANGE"}}]}, text="NO CHANGE",
                      created_at=now())


SYSTEM = {"role": "system", "content": "You are careful. ünïcode ✓"}
BLOCKS = {"role": "user", "content": [{"type": "text", "text": "- a\n- b", "cache_control": {"type": "ephemeral"}}]}


def _count(db: Path, table: str) -> int:
    with Store.open(db, read_only=True) as store:
        row = store.con.execute(f"SELECT count(*) FROM {table}").fetchone()
    return int(row[0]) if row else 0


def test_split_keeps_everything_but_the_messages_and_addresses_nodes_by_prefix() -> None:
    request = {"model": "m", "messages": [SYSTEM, BLOCKS], "max_tokens": 5}
    stored, nodes, tip = split(request)
    assert stored == {"model": "m", "max_tokens": 5}
    assert [n["parent"] for n in nodes] == [None, nodes[0]["hash"]] and tip == nodes[1]["hash"]
    assert [n["role"] for n in nodes] == ["system", "user"]
    # the same message after another prefix is another node
    alone = split({"messages": [BLOCKS]})[2]
    assert alone != tip and alone == node_hash(None, to_json(BLOCKS))
    for whole in ({"model": "m"}, {"messages": []}, {"messages": "text"}, {"messages": ["a"]}):
        assert split(whole) == (whole, [], None)


def test_round_trip_is_the_same_json_and_a_prefix_is_stored_once(db: Path) -> None:
    first = _call("c-1", "r-1", [SYSTEM, BLOCKS])
    second = _call("c-2", "r-1", [SYSTEM, BLOCKS, {"role": "assistant", "content": "ok"}, BLOCKS])
    other_run = _call("c-3", "r-2", [SYSTEM, BLOCKS], top_p=1)
    whole = _call("c-4", "r-2", []).model_copy(update={"request": {"model": "m", "prompt": "no messages"}})
    with Store.open(db) as store:
        for call in (first, second, other_run, whole):
            store.insert_call(call)
        store.flush()
        assert [to_json(c.request) for c in store.calls("r-1")] == [to_json(first.request), to_json(second.request)]
        assert [c.request for c in store.calls("r-2")] == [other_run.request, whole.request]
        assert store.calls("r-1")[1].model_dump() == second.model_dump()
        stored = dict(store.con.execute("SELECT id, request::VARCHAR FROM calls").fetchall())
        chains = dict(store.con.execute("SELECT id, chain FROM calls").fetchall())
    assert "messages" not in json.loads(stored["c-1"]) and stored["c-4"] == to_json(whole.request)
    assert chains["c-1"] == chains["c-3"] and chains["c-4"] is None
    # SYSTEM, BLOCKS once for all three; then the assistant turn and BLOCKS again after it
    assert _count(db, "messages") == 4


def test_cache_hit_returns_the_whole_request(db: Path) -> None:
    call = _call("c-1", "r-1", [SYSTEM, BLOCKS])
    with Store.open(db) as store:
        store.insert_call(call)
        store.flush()
        [found] = find_calls(store.con, [(call.cache_key, 0, "r-other", "global")])
        assert found is not None and found.request == call.request
        assert store.find_call(call.cache_key, 0, "r-1") == call


def test_frame_and_viewer_read_whole_requests(db: Path) -> None:
    from stability.store import browse

    call = _call("c-1", "r-1", [SYSTEM, BLOCKS])
    with Store.open(db) as store:
        store.insert_call(call)
        frame = store.frame("calls")
        assert list(frame["request"]) == [to_json(call.request)] and "chain" not in frame.columns
        viewed = browse.call(store, "c-1")
        assert viewed is not None and viewed.request == call.request


def test_a_missing_node_is_an_error_naming_the_call(db: Path) -> None:
    with Store.open(db) as store:
        store.insert_call(_call("c-1", "r-1", [SYSTEM, BLOCKS]))
        store.con.execute("DELETE FROM messages WHERE parent IS NULL")
        with pytest.raises(Exception, match="call c-1: its message chain .* is incomplete"):
            store.calls("r-1")


def test_a_store_from_before_chains_is_migrated_forward(db: Path) -> None:
    from stability.store import migrations

    con = duckdb.connect(str(db))
    shipped = migrations.MIGRATIONS[:9]
    assert shipped[-1].__name__ == "m009_batches"
    con.execute("CREATE TABLE migrations (name VARCHAR PRIMARY KEY, applied_at TIMESTAMP NOT NULL)")
    for migration in shipped:
        migration(con)
        con.execute("INSERT INTO migrations VALUES (?, now()::TIMESTAMP)", [migration.__name__])
    calls = [_call("c-1", "r-1", [SYSTEM, BLOCKS]), _call("c-2", "r-1", [SYSTEM, {"role": "user", "content": "x"}]),
             _call("c-3", "r-1", []).model_copy(update={"request": {"model": "m"}})]
    for call in calls:
        row = call.model_dump()
        con.execute(f"INSERT INTO calls ({', '.join(row)}) VALUES ({', '.join('?' for _ in row)})",
                    [to_json(v) if isinstance(v, dict | list) else v for v in row.values()])
    before = dict(con.execute("SELECT id, request::VARCHAR FROM calls").fetchall())
    con.close()
    with Store.open(db) as store:
        assert "m010_message_chains" in store.migrations_applied()
        assert {c.id: to_json(c.request) for c in store.calls("r-1")} == before
        assert store.con.execute("SELECT count(*) FROM calls WHERE chain IS NOT NULL").fetchone() == (2,)
    assert _count(db, "messages") == 3  # the system prompt once, two user messages


def test_a_store_from_before_chains_reads_whole_requests_read_only(tmp_path: Path, db: Path) -> None:
    """Opened read-only (so not migrated), a store from before chains still reads, frames and exports."""
    from stability.store import migrations

    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE migrations (name VARCHAR PRIMARY KEY, applied_at TIMESTAMP NOT NULL)")
    for migration in migrations.MIGRATIONS[:9]:
        migration(con)
        con.execute("INSERT INTO migrations VALUES (?, now()::TIMESTAMP)", [migration.__name__])
    call = _call("c-1", "r-1", [SYSTEM, BLOCKS])
    row = call.model_dump()
    con.execute(f"INSERT INTO calls ({', '.join(row)}) VALUES ({', '.join('?' for _ in row)})",
                [to_json(v) if isinstance(v, dict | list) else v for v in row.values()])
    con.close()
    with Store.open(db, read_only=True) as store:
        assert [c.request for c in store.calls("r-1")] == [call.request]
        assert list(store.frame("calls")["request"]) == [to_json(call.request)]
        export_store(store.con, None, tmp_path / "export")
    assert "m010_message_chains" not in duckdb.connect(str(db), read_only=True).execute(
        "SELECT list(name) FROM migrations").fetchone()[0]  # type: ignore[index]


def _wire_run(db: Path, tmp_path: Path, protocol: str, steps: int, seed: int = 0) -> str:
    start = write(tmp_path / "start.md", "- a\n- b\n")
    result = iterate(IterateConfig(protocol=protocol, model="openai/m", constitution=str(start), seed=seed,
                                   options={"max_steps": steps, "declines_to_stop": steps}), db)
    return result.run.id


@pytest.mark.parametrize("protocol", ["in-context-iteration", "fresh-instance"])
def test_every_stored_request_is_what_the_server_received(wire: WireServer, tmp_path: Path, db: Path,
                                                          protocol: str) -> None:
    """Provenance: each call's request read back from the store equals the body the server got, message for
    message, while the store holds each distinct message once."""
    asked = [0]

    def reply(messages: list[dict[str, Any]]) -> str:
        asked[0] += 1
        return revised(*(f"principle {i} at {asked[0]}" for i in range(3)))

    wire.reply = reply
    run_id = _wire_run(db, tmp_path, protocol, steps=8)
    with Store.open(db) as store:
        calls = store.calls(run_id)
    sent = [r["body"] for r in wire.requests]
    assert len(calls) == len(sent) == 8
    for call, body in zip(calls, sent, strict=True):
        assert call.request["messages"] == body["messages"]
        assert {k: v for k, v in call.request.items() if k in body} == body
    distinct = {json.dumps(m, sort_keys=True) for body in sent for m in body["messages"]}
    total = sum(len(body["messages"]) for body in sent)
    if protocol == "in-context-iteration":  # one conversation: a node per message of the last request
        assert _count(db, "messages") == len(sent[-1]["messages"]) < total
    else:  # one system prompt for all, a user message per constitution
        assert _count(db, "messages") == len(distinct) < total


def test_dedup_across_runs(tmp_path: Path, db: Path) -> None:
    """Two in-context runs of the same start share their first turn's nodes."""
    outputs = [revised("c"), revised("d"), "NO CHANGE", "NO CHANGE"]
    first, _ = run_protocol(tmp_path, db, "in-context-iteration", list(outputs))
    after_one = _count(db, "messages")
    second, _ = run_protocol(tmp_path, db, "in-context-iteration", [revised("e"), "NO CHANGE", "NO CHANGE"],
                             seed=1)
    with Store.open(db, read_only=True) as store:
        one, two = store.calls(first), store.calls(second)
    assert one[0].request["messages"] == two[0].request["messages"]
    # the second run adds nodes only after the shared system prompt and first user message
    longest = max(len(c.request["messages"]) for c in two)
    assert _count(db, "messages") == after_one + longest - 2


def _store_with_runs(db: Path, tmp_path: Path) -> list[str]:
    ids = []
    for n, outputs in enumerate([[revised("c"), "NO CHANGE", "NO CHANGE"], [revised("d"), "NO CHANGE", "NO CHANGE"]]):
        run_id, _ = run_protocol(tmp_path / str(n), db, "in-context-iteration", outputs, seed=n)
        ids.append(run_id)
    return ids


def _requests(db: Path) -> dict[str, str]:
    with Store.open(db, read_only=True) as store:
        return {c.id: to_json(c.request) for r in store.run_ids() for c in store.calls(r)}


def test_merge_keeps_chains(tmp_path: Path) -> None:
    a, b = tmp_path / "a.duckdb", tmp_path / "b.duckdb"
    _store_with_runs(a, tmp_path / "a")
    _store_with_runs(b, tmp_path / "b")
    out = tmp_path / "all.duckdb"
    merge_files([a, b], out)
    assert _requests(out) == {**_requests(a), **_requests(b)}
    assert _count(out, "messages") < _count(a, "messages") + _count(b, "messages")  # shared nodes once
    merge_files([a, b], out)  # idempotent
    assert _count(out, "calls") == _count(a, "calls") + _count(b, "calls")


def test_export_carries_whole_requests_and_import_chains_them_again(tmp_path: Path, db: Path) -> None:
    _store_with_runs(db, tmp_path)
    folder = tmp_path / "export"
    with Store.open(db) as store:
        manifest = export_store(store.con, None, folder)
    assert "messages" not in {t.name for t in manifest.tables} and not (folder / "messages.parquet").exists()
    exported = duckdb.connect().execute(
        f"SELECT id, request::VARCHAR FROM read_parquet('{folder / 'calls.parquet'}')").fetchall()
    assert dict(exported) == _requests(db)  # the whole request, as stored before chains
    target = tmp_path / "imported.duckdb"
    import_export(folder, target)  # verified, staged, then merged into the target
    assert _requests(target) == _requests(db)
    assert _count(target, "messages") == _count(db, "messages")
    with Store.open(target, read_only=True) as store:
        assert store.con.execute("SELECT count(*) FROM calls WHERE chain IS NULL").fetchone() == (0,)


def test_copy_runs_copies_their_chains(tmp_path: Path, db: Path) -> None:
    first, _ = _store_with_runs(db, tmp_path)
    shard = tmp_path / "shard.duckdb"
    Store.open(shard).close()
    with Store.open(db) as store:
        copy_runs(store.con, [first], shard)
    with Store.open(shard, read_only=True) as store, Store.open(db, read_only=True) as source:
        assert [c.request for c in store.calls(first)] == [c.request for c in source.calls(first)]


def _old_node_hash(parent: str | None, message_json: str) -> str:
    """How nodes were addressed before m014_short_chain_hashes."""
    import hashlib

    return "sha256:" + hashlib.sha256(f"{parent or ''}\n{message_json}".encode()).hexdigest()


def test_a_store_with_the_long_chain_hashes_migrates_and_reads_back_whole(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A store written before m014 (71-character sha256: node hashes) opens, migrates, reads its calls back whole,
    and new calls (short hashes) sharing its messages read back whole beside them."""
    from stability.store import chains, migrations

    db = tmp_path / "old.duckdb"
    older = [m for m in migrations.MIGRATIONS if m.__name__ != "m014_short_chain_hashes"]
    assert len(older) == len(migrations.MIGRATIONS) - 1
    first = [SYSTEM, {"role": "user", "content": "- a"}]
    second = [*first, {"role": "assistant", "content": "- a\n- b"}, {"role": "user", "content": "again"}]
    with monkeypatch.context() as old:
        old.setattr(migrations, "MIGRATIONS", older)
        old.setattr(chains, "node_hash", _old_node_hash)
        with Store.open(db) as store:
            store.insert_call(_call("c-1", "r-1", first))
            store.insert_call(_call("c-2", "r-1", second))
    with Store.open(db) as store:
        assert "m014_short_chain_hashes" in store.migrations_applied()
        store.insert_call(_call("c-3", "r-2", second))
        store.insert_call(_call("c-4", "r-2", [*second, {"role": "assistant", "content": "NO CHANGE"}]))
        got = {c.id: c.request["messages"] for r in ("r-1", "r-2") for c in store.calls(r)}
        lengths = dict(store.con.execute("SELECT id, strlen(chain) FROM calls").fetchall())
    assert got == {"c-1": first, "c-2": second, "c-3": second,
                   "c-4": [*second, {"role": "assistant", "content": "NO CHANGE"}]}
    assert lengths == {"c-1": 71, "c-2": 71, "c-3": 22, "c-4": 22}
