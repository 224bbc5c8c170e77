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
              "response", "text", "input_tokens", "output_tokens", "latency_ms", "attempts", "retries", "cost_usd",
              "cached_from", "error", "created_at"],
    "ratings": ["id", "run_id", "trial", "step", "mode", "target_index", "target", "label", "position",
                "option_text", "relation", "rating", "rating_probs", "expected_rating", "favourite", "call_id",
                "reflection_call_id"],
    "experiments": ["id", "name", "spec", "spec_path", "created_at"],
    "experiment_runs": ["experiment_id", "cell", "position", "config", "run_id", "status"],
    "embeddings": ["text_hash", "model", "dim", "vector", "created_at"],
    "adapters": ["id", "run_id", "generation", "parent_id", "base_model", "base_params", "path", "content_hash",
                 "data_hash", "data", "trainer", "losses", "loss_before", "loss_after", "train_seconds",
                 "created_at"],
    "generations": ["run_id", "generation", "adapter_id", "revision_id", "previous_hash", "constitution_hash",
                    "n_traces", "n_parsed", "n_changed", "share_kept", "set_distance", "reflect_template_hash",
                    "created_at"],
    "probes": ["id", "run_id", "sample", "source_hash", "target_hash", "decision", "call_id", "created_at"],
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


def test_readme_schema_matches_migrations() -> None:
    current = readme_block(ROOT / "README.md")
    assert current is not None, "README.md lacks the schema markers"
    assert current == block(), "README schema is stale: run python -m stability.store.schema_doc"
