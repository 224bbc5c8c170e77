from __future__ import annotations

from pathlib import Path

from stability.store import Store
from stability.store.migrations import MIGRATIONS
from stability.store.schema_doc import block, readme_block

ROOT = Path(__file__).resolve().parents[2]

EXPECTED = {
    "migrations": ["name", "applied_at"],
    "runs": ["id", "protocol", "model", "model_params", "config", "seed", "start_hash", "template_hash",
             "package_version", "git_commit", "status", "stop_reason", "error", "created_at", "finished_at"],
    "constitutions": ["hash", "text", "n_principles", "created_at"],
    "principles": ["constitution_hash", "position", "text"],
    "constitution_sources": ["constitution_hash", "path", "title", "metadata"],
    "revisions": ["id", "run_id", "step", "constitution_hash", "parent_id", "decision", "cycle_to", "detail",
                  "created_at"],
    "edges": ["id", "run_id", "source_id", "target_id", "source_hash", "target_hash", "kind", "protocol",
              "call_ids"],
    "calls": ["id", "run_id", "step", "purpose", "model", "cache_key", "sample_index", "status", "request",
              "input_tokens", "output_tokens", "latency_ms", "attempts", "retries", "cost_usd", "cached_from",
              "error", "created_at", "finish_reason", "thinking", "answer_format", "fallback_reason", "chain",
              "response", "text"],
    "ratings": ["id", "run_id", "trial", "step", "mode", "target_index", "target", "label", "position",
                "option_text", "relation", "rating", "rating_probs", "expected_rating", "favourite", "call_id",
                "reflection_call_id"],
    "experiments": ["id", "name", "spec", "spec_path", "created_at"],
    "experiment_runs": ["experiment_id", "cell", "position", "config", "run_id", "status"],
    "adapters": ["id", "run_id", "generation", "parent_id", "base_model", "base_params", "path", "content_hash",
                 "data_hash", "data", "trainer", "losses", "loss_before", "loss_after", "train_seconds",
                 "created_at"],
    "generations": ["run_id", "generation", "adapter_id", "revision_id", "previous_hash", "constitution_hash",
                    "n_traces", "n_parsed", "n_changed", "share_kept", "set_distance", "reflect_template_hash",
                    "created_at"],
    "probes": ["id", "run_id", "sample", "source_hash", "target_hash", "decision", "call_id", "created_at"],
    "judgements": ["id", "judge_key", "judge_model", "judge_params", "template_hash", "question", "subject_key",
                   "subjects", "verdict", "how", "rationale", "detail", "raw_answer", "problem", "call_id",
                   "created_at"],
    "batches": ["local_key", "provider", "model", "provider_id", "state", "raw_status", "counts", "wave",
                "n_requests", "created_at", "submitted_at", "finished_at"],
    "batch_requests": ["local_key", "custom_id", "run_id", "cache_key", "sample_index", "step", "purpose", "model",
                       "body", "answer_format", "committed_usd", "state", "call_id", "error"],
    "messages": ["hash", "parent", "role", "message"],
    "journal": ["token", "through", "closed_at"],
    "run_inputs": ["run_id", "option", "path", "sha256"],
}


def test_empty_database_migrates_to_documented_schema(db: Path) -> None:
    with Store.open(db) as store:
        assert store.migrations_applied() == sorted(m.__name__ for m in MIGRATIONS)
        tables: dict[str, list[str]] = {}
        for row in store.schema():
            tables.setdefault(row["table_name"], []).append(row["column_name"])
            if row["table_name"] != "migrations":
                assert row["column_comment"], f"{row['table_name']}.{row['column_name']} has no comment"
    assert tables == EXPECTED


def test_migrating_twice_applies_nothing_new(db: Path) -> None:
    Store.open(db).close()
    with Store.open(db) as store:
        from stability.store import migrations

        assert migrations.apply(store.con) == []


def test_schema_page_matches_migrations() -> None:
    current = readme_block(ROOT / "docs" / "schema.md")
    assert current is not None, "docs/schema.md lacks the schema markers"
    assert current == block(), "docs/schema.md is stale: run python -m stability.store.schema_doc"


def test_calls_stored_before_m005_read_back_without_answer_details(db: Path) -> None:
    """A database from before the answer details keeps its calls; they read back with the new fields empty."""
    import duckdb

    from stability.store import migrations

    con = duckdb.connect(str(db))
    shipped = migrations.MIGRATIONS[:4]
    assert [m.__name__ for m in shipped][-1] == "m004_adapters"
    con.execute("CREATE TABLE migrations (name VARCHAR PRIMARY KEY, applied_at TIMESTAMP NOT NULL)")
    for migration in shipped:
        migration(con)
        con.execute("INSERT INTO migrations VALUES (?, now()::TIMESTAMP)", [migration.__name__])
    con.execute("INSERT INTO calls (id, run_id, step, purpose, model, cache_key, sample_index, status, request, "
                "text, input_tokens, output_tokens, latency_ms, attempts, retries, created_at) VALUES ('c-1', "
                "'r-1', 1, 'revise', 'openai/m', 'sha256:k', 0, 'ok', '{}', 'NO CHANGE', 1, 2, 3.0, 1, '[]', "
                "now()::TIMESTAMP)")
    con.close()
    with Store.open(db) as store:
        assert "m005_call_answer_details" in store.migrations_applied()
        [call] = store.calls("r-1")
    assert call.text == "NO CHANGE" and call.finish_reason is None and call.thinking is None
    assert call.answer_format is None and not call.truncated and call.structured is None


def test_finish_reason_is_filled_for_calls_stored_before_it_existed(db: Path) -> None:
    """m005 reads each old call's finish reason out of its stored raw response (OpenAI, Anthropic, local)."""
    import duckdb

    from stability.store import migrations

    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE migrations (name VARCHAR PRIMARY KEY, applied_at TIMESTAMP NOT NULL)")
    for migration in MIGRATIONS[:4]:
        migration(con)
        con.execute("INSERT INTO migrations VALUES (?, now()::TIMESTAMP)", [migration.__name__])
    responses = {"c-openai": '{"choices": [{"finish_reason": "length"}]}',
                 "c-anthropic": '{"stop_reason": "max_tokens"}', "c-hf": '{"finish_reason": "stop"}', "c-failed": None}
    for call_id, response in responses.items():
        con.execute("INSERT INTO calls VALUES (?, 'r-1', 1, 'revise', 'm', 'k', 0, 'ok', '{}', ?, 'x', 0, 0, 0, 1, "
                    "'[]', NULL, NULL, NULL, now()::TIMESTAMP)", [call_id, response])
    assert migrations.apply(con) == [m.__name__ for m in MIGRATIONS[4:]]
    found = dict(con.execute("SELECT id, finish_reason FROM calls").fetchall())
    con.close()
    assert found == {"c-openai": "length", "c-anthropic": "max_tokens", "c-hf": "stop", "c-failed": None}
    with Store.open(db) as store:
        assert {c.id: c.finish_reason for c in store.calls("r-1")} == found


def test_a_store_with_the_lookup_indexes_migrates_and_reads_back_whole(tmp_path: Path) -> None:
    """A store written before m015 (calls_cache and revisions_hash indexes) opens, loses both indexes, reads its
    calls back whole, finds them by cache key and its revisions by constitution, and keeps every primary key."""
    from stability.constitution import Constitution
    from stability.records import CallRecord, RevisionRecord, now
    from stability.store import migrations
    from stability.store.call_lookup import find_calls

    db = tmp_path / "old.duckdb"
    shipped = MIGRATIONS[:[m.__name__ for m in MIGRATIONS].index("m015_no_lookup_indexes")]
    messages = [{"role": "system", "content": "be brief ✓"}, {"role": "user", "content": "- a\n- b"}]
    call = CallRecord(id="c-1", run_id="r-1", step=1, purpose="revise", model="openai/m", cache_key="sha256:k1",
                      sample_index=0, status="ok", request={"model": "m", "messages": messages, "seed": 3},
                      response={"choices": [{"message": {"content": "NO CHANGE"}}]}, text="NO CHANGE",
                      created_at=now())
    node = Constitution(principles=("a", "b"))
    old = migrations.MIGRATIONS
    migrations.MIGRATIONS = shipped
    try:
        with Store.open(db) as store:
            store.put_constitution(node)
            store.insert_revision(RevisionRecord(id="r-1:0", run_id="r-1", step=0, constitution_hash=node.hash,
                                                 decision="origin", created_at=now()))
            store.insert_call(call)
            indexes = {r[0] for r in store.con.execute("SELECT index_name FROM duckdb_indexes()").fetchall()}
        assert {"calls_cache", "revisions_hash"} <= indexes
    finally:
        migrations.MIGRATIONS = old
    with Store.open(db) as store:
        assert {"m015_no_lookup_indexes", "m016_answers_zstd"} <= set(store.migrations_applied())
        con = store.con
        assert con.execute("SELECT index_name FROM duckdb_indexes()").fetchall() == [("judgements_subject",)]
        constraints = {(r[0], r[1]) for r in con.execute(
            "SELECT table_name, constraint_type FROM duckdb_constraints() "
            "WHERE constraint_type IN ('PRIMARY KEY', 'UNIQUE')").fetchall()}
        assert {("calls", "PRIMARY KEY"), ("revisions", "UNIQUE"), ("messages", "PRIMARY KEY")} <= constraints
        [found] = find_calls(con, [("sha256:k1", 0, "r-2", "global")])
        assert found is not None and found.request == call.request
        assert (found.response, found.text) == (call.response, call.text)
        assert [c.request for c in store.calls("r-1")] == [call.request]
        assert con.execute("SELECT id FROM revisions WHERE constitution_hash = ?", [node.hash]).fetchall() == [
            ("r-1:0",)]


def test_answers_are_stored_with_zstd_and_read_back_the_same(tmp_path: Path) -> None:
    """m016 makes calls.response and calls.text again with zstd: a store written before it reads back every
    call's response and text unchanged (null ones included), with the columns' comments kept."""
    from stability.records import CallRecord, now
    from stability.store import migrations

    db = tmp_path / "old.duckdb"
    answers = [({"choices": [{"message": {"content": f"answer {i} ✓ " * (i + 1)}}]}, f"answer {i} ✓")
               for i in range(40)] + [(None, None)]
    calls = [CallRecord(id=f"c-{i:02d}", run_id="r-1", step=i, purpose="revise", model="openai/m",
                        cache_key=f"sha256:{i}", sample_index=0, status="ok" if response else "error",
                        request={"model": "m", "messages": [{"role": "user", "content": f"q {i}"}]},
                        response=response, text=text, error=None if response else "boom", created_at=now())
             for i, (response, text) in enumerate(answers)]
    old = migrations.MIGRATIONS
    migrations.MIGRATIONS = MIGRATIONS[:[m.__name__ for m in MIGRATIONS].index("m016_answers_zstd")]
    try:
        with Store.open(db) as store:
            for call in calls:
                store.insert_call(call)
            comments = dict(store.con.execute("SELECT column_name, comment FROM duckdb_columns() "
                                              "WHERE table_name = 'calls'").fetchall())
    finally:
        migrations.MIGRATIONS = old
    with Store.open(db) as store:
        assert "m016_answers_zstd" in store.migrations_applied()
        got = {c.id: (c.response, c.text) for c in store.calls("r-1")}
        [(sql,)] = store.con.execute("SELECT sql FROM duckdb_tables() WHERE table_name = 'calls'").fetchall()
        assert dict(store.con.execute("SELECT column_name, comment FROM duckdb_columns() "
                                      "WHERE table_name = 'calls'").fetchall()) == comments
    assert got == {c.id: (c.response, c.text) for c in calls}
    assert "response JSON USING COMPRESSION ZSTD" in sql and '"text" VARCHAR USING COMPRESSION ZSTD' in sql
