"""Schema migrations: named, forward-only functions, applied in order and recorded in ``migrations``.

Add a new function ``mNNN_what_it_does`` at the end of ``MIGRATIONS``; never edit one that has shipped.
Table and column comments are part of the schema, and the schema page (docs/schema.md) is generated from them
(``python -m stability.store.schema_doc``), so documentation and database cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Callable

import duckdb

from stability.store.chains import chain_stored_calls

Migration = Callable[[duckdb.DuckDBPyConnection], None]


def _table(con: duckdb.DuckDBPyConnection, name: str, doc: str, columns: list[tuple[str, str, str]],
           extra: str = "") -> None:
    body = ",\n  ".join(f"{col} {kind}" for col, kind, _ in columns)
    con.execute(f"CREATE TABLE {name} (\n  {body}{',' + extra if extra else ''}\n)")
    # the table's comments as one script: one round trip instead of one per column (a fresh store makes 211 of them)
    comments = [f"COMMENT ON COLUMN {name}.{col} IS '{_quote(comment)}'" for col, _, comment in columns]
    con.execute(";\n".join([f"COMMENT ON TABLE {name} IS '{_quote(doc)}'", *comments]))


def _quote(text: str) -> str:
    return text.replace("'", "''")


def m001_initial(con: duckdb.DuckDBPyConnection) -> None:
    _table(con, "runs", "One execution of a protocol over a model and a starting constitution.", [
        ("id", "VARCHAR PRIMARY KEY", "run id, e.g. r-3f9c0a12b4de"),
        ("protocol", "VARCHAR NOT NULL", "protocol name, e.g. fresh-instance"),
        ("model", "VARCHAR NOT NULL", "full model id, e.g. local/gemma-3-270m"),
        ("model_params", "JSON NOT NULL", "provider parameters (base URL, GGUF file, ...), never secrets"),
        ("config", "JSON NOT NULL", "the complete run configuration, enough to re-run it"),
        ("seed", "BIGINT NOT NULL", "run seed; each call's seed derives from it"),
        ("start_hash", "VARCHAR NOT NULL", "content hash of the starting constitution"),
        ("template_hash", "VARCHAR NOT NULL", "sha256 over the protocol's prompt template files"),
        ("package_version", "VARCHAR NOT NULL", "stability version that ran it"),
        ("git_commit", "VARCHAR", "git commit of the checkout that ran it (+dirty when modified)"),
        ("status", "VARCHAR NOT NULL", "running | done | failed"),
        ("stop_reason", "VARCHAR", "declined | cycle | max_steps | parse_failures | error"),
        ("error", "VARCHAR", "the error that ended a failed run"),
        ("created_at", "TIMESTAMP NOT NULL", "UTC"),
        ("finished_at", "TIMESTAMP", "UTC; null while running or after a kill"),
    ])
    _table(con, "constitutions", "Graph nodes: constitutions addressed by the hash of their normalised text.", [
        ("hash", "VARCHAR PRIMARY KEY", "sha256: of the normalised text"),
        ("text", "VARCHAR NOT NULL", "normalised text: one '- principle' line each"),
        ("n_principles", "INTEGER NOT NULL", "number of principles"),
        ("created_at", "TIMESTAMP NOT NULL", "when first seen (UTC)"),
    ])
    _table(con, "principles", "The principles of each constitution, in order.", [
        ("constitution_hash", "VARCHAR NOT NULL", "constitutions.hash"),
        ("position", "INTEGER NOT NULL", "0-based position in the list"),
        ("text", "VARCHAR NOT NULL", "normalised principle text"),
    ], extra="\n  PRIMARY KEY (constitution_hash, position)")
    _table(con, "constitution_sources", "Files a constitution was read from, with their labels.", [
        ("constitution_hash", "VARCHAR NOT NULL", "constitutions.hash"),
        ("path", "VARCHAR NOT NULL", "file path as given"),
        ("title", "VARCHAR", "the file's '# Title', if any"),
        ("metadata", "JSON NOT NULL", "front-matter metadata, e.g. clash pairs"),
    ], extra="\n  PRIMARY KEY (constitution_hash, path)")
    _table(con, "revisions", "One node visit per step of a run.", [
        ("id", "VARCHAR PRIMARY KEY", "revision id: RUN:STEP"),
        ("run_id", "VARCHAR NOT NULL", "runs.id"),
        ("step", "INTEGER NOT NULL", "0 is the starting constitution"),
        ("constitution_hash", "VARCHAR NOT NULL", "constitutions.hash of the constitution after this step"),
        ("parent_id", "VARCHAR", "the previous revision; null at step 0"),
        ("decision", "VARCHAR NOT NULL", "origin | changed | declined | parse_failure | error"),
        ("cycle_to", "VARCHAR", "for a change that revisits an earlier node: the revision it returns to"),
        ("detail", "VARCHAR", "parse problem or error message"),
        ("created_at", "TIMESTAMP NOT NULL", "UTC"),
    ], extra="\n  UNIQUE (run_id, step)")
    _table(con, "edges", "Graph edges: the transition from a parent revision to a revision.", [
        ("id", "VARCHAR PRIMARY KEY", "edge id: the target revision id"),
        ("run_id", "VARCHAR NOT NULL", "runs.id"),
        ("source_id", "VARCHAR NOT NULL", "revisions.id of the parent"),
        ("target_id", "VARCHAR NOT NULL", "revisions.id of the child"),
        ("source_hash", "VARCHAR NOT NULL", "constitution before"),
        ("target_hash", "VARCHAR NOT NULL", "constitution after"),
        ("kind", "VARCHAR NOT NULL", "edit | decline | parse_failure | error"),
        ("protocol", "VARCHAR NOT NULL", "protocol that produced it"),
        ("call_ids", "JSON NOT NULL", "calls.id list behind this edge"),
    ])
    _table(con, "calls", "Every model call: full request and response, persisted before it is used.", [
        ("id", "VARCHAR PRIMARY KEY", "call id"),
        ("run_id", "VARCHAR NOT NULL", "runs.id"),
        ("step", "INTEGER NOT NULL", "protocol step the call belongs to"),
        ("purpose", "VARCHAR NOT NULL", "what the protocol asked for, e.g. revise"),
        ("model", "VARCHAR NOT NULL", "full model id"),
        ("cache_key", "VARCHAR NOT NULL", "sha256 of the canonical request (model, messages, config)"),
        ("sample_index", "INTEGER NOT NULL", "n-th identical request within the run"),
        ("status", "VARCHAR NOT NULL", "ok | error"),
        ("request", "JSON NOT NULL", "the wire request body (no headers, no keys)"),
        ("response", "JSON", "the raw response body"),
        ("text", "VARCHAR", "the answer text"),
        ("input_tokens", "INTEGER NOT NULL", "prompt tokens as reported by the provider"),
        ("output_tokens", "INTEGER NOT NULL", "completion tokens as reported by the provider"),
        ("latency_ms", "DOUBLE NOT NULL", "wall time of the successful attempt, or of all attempts on error"),
        ("attempts", "INTEGER NOT NULL", "1 + retries"),
        ("retries", "JSON NOT NULL", "one entry per failed attempt: error, status, waited seconds"),
        ("cost_usd", "DOUBLE", "cost where known (0 for local models)"),
        ("cached_from", "VARCHAR", "for a cache hit: the call id that paid for this answer"),
        ("error", "VARCHAR", "final error when status is error"),
        ("created_at", "TIMESTAMP NOT NULL", "UTC"),
    ])
    con.execute("CREATE INDEX calls_cache ON calls (cache_key, sample_index)")
    con.execute("CREATE INDEX revisions_hash ON revisions (constitution_hash)")


def m002_ratings_and_experiments(con: duckdb.DuckDBPyConnection) -> None:
    _table(con, "ratings", "rate-alternatives: one row per option shown in a trial.", [
        ("id", "VARCHAR PRIMARY KEY", "RUN:TRIAL:LABEL"),
        ("run_id", "VARCHAR NOT NULL", "runs.id"),
        ("trial", "INTEGER NOT NULL", "0-based trial number"),
        ("step", "INTEGER NOT NULL", "the revision step this trial produced"),
        ("mode", "VARCHAR NOT NULL", "principle | constitution"),
        ("target_index", "INTEGER", "1-based index of the principle being replaced (principle mode)"),
        ("target", "VARCHAR NOT NULL", "the current principle, or the source constitution's name"),
        ("label", "VARCHAR NOT NULL", "the option's label as shown (A, B, ...)"),
        ("position", "INTEGER NOT NULL", "0-based position the option was shown at (randomised per trial)"),
        ("option_text", "VARCHAR NOT NULL", "the alternative as shown"),
        ("relation", "VARCHAR", "the alternative's tagged relation (paraphrase, opposite, ...), if known"),
        ("rating", "INTEGER", "1-5; null when the answer could not be scored (never stored as a low score)"),
        ("rating_probs", "JSON", "probability of each rating 1-5 from token log-probabilities, where exposed"),
        ("expected_rating", "DOUBLE", "sum of rating x probability, where log-probabilities were exposed"),
        ("favourite", "BOOLEAN NOT NULL", "whether the model named this option its favourite"),
        ("call_id", "VARCHAR NOT NULL", "calls.id of the rating call"),
        ("reflection_call_id", "VARCHAR", "calls.id of the reflect-first call, if any"),
    ])
    _table(con, "experiments", "A grid of runs expanded from an experiment spec.", [
        ("id", "VARCHAR PRIMARY KEY", "NAME-SPECHASH: the same spec is the same experiment"),
        ("name", "VARCHAR NOT NULL", "the spec's name"),
        ("spec", "JSON NOT NULL", "the spec as loaded"),
        ("spec_path", "VARCHAR", "where the spec was read from"),
        ("created_at", "TIMESTAMP NOT NULL", "UTC"),
    ])
    _table(con, "experiment_runs", "The cells of an experiment and the run that fills each.", [
        ("experiment_id", "VARCHAR NOT NULL", "experiments.id"),
        ("cell", "VARCHAR NOT NULL", "hash of the cell's run configuration"),
        ("position", "INTEGER NOT NULL", "order of the cell in the expanded grid"),
        ("config", "JSON NOT NULL", "the run configuration of this cell"),
        ("run_id", "VARCHAR", "runs.id once started"),
        ("status", "VARCHAR NOT NULL", "not_started | running | done | failed"),
    ], extra="\n  PRIMARY KEY (experiment_id, cell)")


def m003_embeddings(con: duckdb.DuckDBPyConnection) -> None:
    _table(con, "embeddings", "Embedding cache for analysis: one vector per (text hash, embedding model).", [
        ("text_hash", "VARCHAR NOT NULL", "sha256: of the embedded text (a whole constitution or one principle)"),
        ("model", "VARCHAR NOT NULL", "embedding model name, e.g. all-MiniLM-L6-v2"),
        ("dim", "INTEGER NOT NULL", "vector length"),
        ("vector", "BLOB NOT NULL", "float32 little-endian, unit length"),
        ("created_at", "TIMESTAMP NOT NULL", "UTC"),
    ], extra="\n  PRIMARY KEY (text_hash, model)")


def m004_adapters(con: duckdb.DuckDBPyConnection) -> None:
    """Fine-tuned generations: adapter lineage and a per-generation summary (the fine-tune-reflect protocol)."""
    _table(con, "adapters", "LoRA adapters trained by a run; lineage: base model -> generation 0 -> 1 -> ...", [
        ("id", "VARCHAR PRIMARY KEY", "adapter id: RUN:gen-G"),
        ("run_id", "VARCHAR NOT NULL", "runs.id"),
        ("generation", "INTEGER NOT NULL", "0 is trained from the base model"),
        ("parent_id", "VARCHAR", "adapters.id it continued from; null when trained from the base model"),
        ("base_model", "VARCHAR NOT NULL", "full model id of the base weights, e.g. hf/gemma-3-270m"),
        ("base_params", "JSON NOT NULL", "the base model's parameters (weights folder, device, dtype)"),
        ("path", "VARCHAR NOT NULL", "adapter folder"),
        ("content_hash", "VARCHAR NOT NULL", "sha256 over the adapter folder's file names and bytes"),
        ("data_hash", "VARCHAR NOT NULL", "sha256 of the canonical training examples"),
        ("data", "JSON NOT NULL", "the training examples: messages, completion, source"),
        ("trainer", "JSON NOT NULL", "trainer parameters (LoRA rank, alpha, targets, learning rate, steps, seed)"),
        ("losses", "JSON NOT NULL", "mean training loss of each optimizer step"),
        ("loss_before", "DOUBLE NOT NULL", "mean loss over all the training examples before training"),
        ("loss_after", "DOUBLE NOT NULL", "mean loss over all the training examples after training"),
        ("train_seconds", "DOUBLE NOT NULL", "wall time of training"),
        ("created_at", "TIMESTAMP NOT NULL", "UTC"),
    ], extra="\n  UNIQUE (run_id, generation)")
    _table(con, "generations", "Per generation of a fine-tune loop: what its adapter produced, and how much changed.", [
        ("run_id", "VARCHAR NOT NULL", "runs.id"),
        ("generation", "INTEGER NOT NULL", "generation number"),
        ("adapter_id", "VARCHAR NOT NULL", "adapters.id of the adapter that reflected"),
        ("revision_id", "VARCHAR NOT NULL", "revisions.id this generation's reflection produced"),
        ("previous_hash", "VARCHAR NOT NULL", "constitution the generation reflected on"),
        ("constitution_hash", "VARCHAR NOT NULL", "constitution it settled on (consensus of its traces)"),
        ("n_traces", "INTEGER NOT NULL", "reflection traces collected"),
        ("n_parsed", "INTEGER NOT NULL", "traces that parsed as a list or NO CHANGE"),
        ("n_changed", "INTEGER NOT NULL", "traces that proposed a different constitution"),
        ("share_kept", "DOUBLE NOT NULL", "share of the previous principles kept, by exact normalised match"),
        ("set_distance", "DOUBLE NOT NULL", "Jaccard distance between the two principle sets (exact match)"),
        ("reflect_template_hash", "VARCHAR NOT NULL", "sha256 over the fresh-instance templates used to reflect"),
        ("created_at", "TIMESTAMP NOT NULL", "UTC"),
    ], extra="\n  PRIMARY KEY (run_id, generation)")


def m005_call_answer_details(con: duckdb.DuckDBPyConnection) -> None:
    """How each answer came: the finish reason (so a cut-off answer reads as ``truncated``, also on replay), thinking
    apart from the answer, and the answer format. Old calls get their finish reason from their stored raw responses
    (OpenAI ``choices[0].finish_reason``, Anthropic ``stop_reason``, local)."""
    for column, comment in [
        ("finish_reason", "the provider's raw finish reason: stop, length (OpenAI) or max_tokens (Anthropic) when cut "
                          "off at the token limit, end_turn, tool_use, ..."),
        ("thinking", "reasoning returned apart from the answer (Anthropic thinking blocks, reasoning_content); "
                     "never parsed as the answer"),
        ("answer_format", "structured (sent with its JSON schema) | text (a schema was asked for but sent as "
                          "text: answer_format text, or a fallback) | null (no schema asked)"),
        ("fallback_reason", "why a structured request went as text: the server's refusal of structured output"),
    ]:
        con.execute(f"ALTER TABLE calls ADD COLUMN {column} VARCHAR")
        con.execute(f"COMMENT ON COLUMN calls.{column} IS '{_quote(comment)}'")
    con.execute("""UPDATE calls SET finish_reason = coalesce(
                       json_extract_string(response, '$.choices[0].finish_reason'),
                       json_extract_string(response, '$.stop_reason'),
                       json_extract_string(response, '$.finish_reason'))
                   WHERE response IS NOT NULL""")
    con.execute("COMMENT ON COLUMN revisions.decision IS 'origin | changed | declined | parse_failure | truncated "
                "(the answer was cut off at the token limit) | error | authored'")
    con.execute("COMMENT ON COLUMN edges.kind IS 'edit | decline | parse_failure | truncated | error | author'")


def m006_embeddings_to_own_file(con: duckdb.DuckDBPyConnection) -> None:
    """The embedding cache moved to a DuckDB file of its own (stability.analysis.embeddings.EmbeddingCache), so
    the analysis commands only read the store. The old table held nothing but recomputable vectors."""
    con.execute("DROP TABLE IF EXISTS embeddings")


def m007_probes(con: duckdb.DuckDBPyConnection) -> None:
    """Probes of fixed points: a run's final node asked again as fresh samples (``stability probe``)."""
    _table(con, "probes", "Probes of a run's final node; each row is an edge from the probed node through one call.", [
        ("id", "VARCHAR PRIMARY KEY", "RUN:probe:SAMPLE"),
        ("run_id", "VARCHAR NOT NULL", "runs.id"),
        ("sample", "INTEGER NOT NULL", "0-based probe number"),
        ("source_hash", "VARCHAR NOT NULL", "constitutions.hash of the node probed (the run's final node)"),
        ("target_hash", "VARCHAR", "constitution the answer proposed: the same node for a decline, null if none"),
        ("decision", "VARCHAR NOT NULL", "declined | changed | parse_failure | truncated | error"),
        ("call_id", "VARCHAR NOT NULL", "calls.id of the probe"),
        ("created_at", "TIMESTAMP NOT NULL", "UTC"),
    ])

def m008_judgements(con: duckdb.DuckDBPyConnection) -> None:
    """Judgements: a judge model's answers to questions of meaning (``stability judge``), apart from the runs."""
    _table(con, "judgements", "A judge model's answer to one question about one subject; never part of a run.", [
        ("id", "VARCHAR PRIMARY KEY", "sha256 of (judge_key, template_hash, question, subject_key)"),
        ("judge_key", "VARCHAR NOT NULL", "sha256 of the judge model's description and sampling parameters"),
        ("judge_model", "VARCHAR NOT NULL", "full model id of the judge"),
        ("judge_params", "JSON NOT NULL", "the judge's model description and sampling parameters, never secrets"),
        ("template_hash", "VARCHAR NOT NULL", "sha256 over the judge's system prompt and this question's template"),
        ("question", "VARCHAR NOT NULL", "clash | equivalence | contradiction | refusal"),
        ("subject_key", "VARCHAR NOT NULL", "sha256 of the subject's content hashes"),
        ("subjects", "JSON NOT NULL", "the subject's content hashes and positions (constitutions, principles, "
                                      "clash sides, answer text)"),
        ("verdict", "VARCHAR", "parsed verdict; null when the answer could not be read (no judgement)"),
        ("how", "VARCHAR", "clash: removed | reconciled | prioritised | scoped; null otherwise"),
        ("rationale", "VARCHAR", "the judge's stated reason"),
        ("detail", "JSON NOT NULL", "other parsed fields (e.g. the principles a contradiction involves)"),
        ("raw_answer", "VARCHAR", "the judge's answer text as stored on its call"),
        ("problem", "VARCHAR", "why no verdict was read (unreadable answer, failed call)"),
        ("call_id", "VARCHAR NOT NULL", "calls.id of the judge's call (its run_id is judge-KEY, no run)"),
        ("created_at", "TIMESTAMP NOT NULL", "UTC"),
    ])
    con.execute("CREATE INDEX judgements_subject ON judgements (question, subject_key)")


def m009_batches(con: duckdb.DuckDBPyConnection) -> None:
    """Provider batches (``--batch``): the intent is written before a batch is submitted, its provider id right
    after, and each request's outcome once the batch ends (answers are imported as ordinary calls)."""
    _table(con, "batches", "Provider batches (OpenAI Batch API, Anthropic Message Batches) of --batch runs.", [
        ("local_key", "VARCHAR PRIMARY KEY", "our key, sb-<hex>, written before submission (OpenAI metadata)"),
        ("provider", "VARCHAR NOT NULL", "openai | anthropic"),
        ("model", "VARCHAR NOT NULL", "full model id of every request in the batch"),
        ("provider_id", "VARCHAR", "the provider's batch id; null until the provider created it"),
        ("state", "VARCHAR NOT NULL", "intent (written, not known submitted) | live | ended | failed | cancelled "
                                      "(finished, results not yet imported) | imported | abandoned (the intent "
                                      "never reached the provider)"),
        ("raw_status", "VARCHAR", "the provider's last status word: in_progress, completed, expired, ended, ..."),
        ("counts", "JSON", "the provider's last request counts"),
        ("wave", "INTEGER NOT NULL", "the wave of the session that submitted it (1-based)"),
        ("n_requests", "INTEGER NOT NULL", "requests in the batch"),
        ("created_at", "TIMESTAMP NOT NULL", "UTC, when the intent was written"),
        ("submitted_at", "TIMESTAMP", "UTC, when the provider id was stored"),
        ("finished_at", "TIMESTAMP", "UTC, when its results were imported (or it was found failed or cancelled)"),
    ])
    _table(con, "batch_requests", "The requests of a batch: one call each, keyed by custom_id.", [
        ("local_key", "VARCHAR NOT NULL", "batches.local_key"),
        ("custom_id", "VARCHAR NOT NULL", "sha256 of run id, cache key and sample index: the call key in the batch"),
        ("run_id", "VARCHAR NOT NULL", "runs.id of the run that asked"),
        ("cache_key", "VARCHAR NOT NULL", "calls.cache_key of the call it becomes"),
        ("sample_index", "INTEGER NOT NULL", "calls.sample_index of the call it becomes"),
        ("step", "INTEGER NOT NULL", "the step that asked"),
        ("purpose", "VARCHAR NOT NULL", "the purpose of the call"),
        ("model", "VARCHAR NOT NULL", "full model id"),
        ("body", "JSON NOT NULL", "the provider request body (no secrets: keys travel in headers)"),
        ("answer_format", "VARCHAR", "structured | text | null, as on calls"),
        ("committed_usd", "DOUBLE", "committed spending at batch prices (input estimate + max_tokens output)"),
        ("state", "VARCHAR NOT NULL", "pending | done (answer stored as call_id) | retry (expired or a transient "
                                      "error: asked again in a later wave) | failed (error stored as call_id)"),
        ("call_id", "VARCHAR", "calls.id of the imported answer or error"),
        ("error", "VARCHAR", "the provider's error for this request"),
    ], extra=" PRIMARY KEY (local_key, custom_id)")


def m010_message_chains(con: duckdb.DuckDBPyConnection) -> None:
    """Message chains (:mod:`stability.store.chains`): each message of a request stored once, addressed by its
    content and its parent, so a conversation's shared prefix is stored once across calls and runs. Existing
    calls' messages move into chains; every reader puts them back into ``request.messages``."""
    _table(con, "messages", "Message chain nodes: one message of a request after the node before it, stored once.", [
        ("hash", "VARCHAR PRIMARY KEY", "sha256: of the parent's hash and the message's canonical JSON"),
        ("parent", "VARCHAR", "messages.hash of the message before it in the request; null for the first"),
        ("role", "VARCHAR", "the message's role (system, user, assistant, ...)"),
        # zstd: DuckDB would pick dictionary/FSST compression for these mid-sized texts, which keeps little of
        # what messages share (a template, most of a constitution); zstd stores them in about 2/3 of the blocks
        ("message", "JSON NOT NULL USING COMPRESSION zstd",
         "the whole message as sent: role, content and any other fields"),
    ])
    con.execute("ALTER TABLE calls ADD COLUMN chain VARCHAR")
    con.execute("COMMENT ON COLUMN calls.chain IS 'messages.hash of the last message of the request; its messages "
                "are that chain, root first (null: the request is stored whole)'")
    con.execute("COMMENT ON COLUMN calls.request IS 'the wire request body (no headers, no keys), without its "
                "messages when chain is set'")
    chain_stored_calls(con)


def m011_journal(con: duckdb.DuckDBPyConnection) -> None:
    """The write journal's bookmark (stability/store/journal.py): per open store, the last journalled round that
    DuckDB holds, written in the same transaction as the rows, so a replay after a kill skips what was applied."""
    _table(con, "journal", "the write journal's bookmark: one row per open store, removed when it closes", [
        ("token", "VARCHAR PRIMARY KEY", "the journal file's token: DB.journal.TOKEN"),
        ("through", "BIGINT NOT NULL", "sequence number of the last round applied from it"),
    ])


def m012_journal_bookmarks_kept(con: duckdb.DuckDBPyConnection) -> None:
    """A journal's bookmark outlives its file: written when the journal starts and closed (not removed) when its
    store closes or the journal is recovered, so a copy of the file found later is recognised as stale and can
    never move the store back, and a journal file with no bookmark at all is recognised as another store's."""
    con.execute("ALTER TABLE journal ADD COLUMN closed_at TIMESTAMP")
    con.execute("COMMENT ON TABLE journal IS 'the write journals'' bookmarks: one row per journal a store started, "
                "kept after it closed'")
    con.execute("COMMENT ON COLUMN journal.closed_at IS 'UTC, when its store closed it or it was recovered or found "
                "gone; null while its store is open (or was killed and not yet recovered). A file of a closed "
                "journal is stale: discarded, never applied'")


def m013_run_inputs(con: duckdb.DuckDBPyConnection) -> None:
    """The input files a run's protocol options name (alternatives, a neutral constitution), hashed by the engine
    as it read them, so a run's provenance covers them and a resume refuses a changed one."""
    _table(con, "run_inputs", "Input files named by a run's protocol options, as the engine read them.", [
        ("run_id", "VARCHAR NOT NULL", "runs.id"),
        ("option", "VARCHAR NOT NULL", "the protocol option that names the file, e.g. alternatives"),
        ("path", "VARCHAR NOT NULL", "the file as read (relative paths as given, or relative to a YAML list)"),
        ("sha256", "VARCHAR NOT NULL", "sha256: of the file's bytes"),
    ], extra="\n  PRIMARY KEY (run_id, option, path)")


def m014_short_chain_hashes(con: duckdb.DuckDBPyConnection) -> None:
    """Message chain nodes written from now on are addressed by 128 bits of their sha256 in 22 characters of
    URL-safe base64 instead of a 71-character ``sha256:`` hex string (:func:`stability.store.chains.node_hash`):
    a third of the bytes in the hash and parent columns, ``calls.chain`` and the primary-key index. Nodes stored
    before keep their addresses (readers follow a chain by whatever its hashes are), so nothing is rewritten."""
    con.execute("COMMENT ON COLUMN messages.hash IS 'the first 128 bits of the sha256 of the parent''s hash and the "
                "message''s canonical JSON, URL-safe base64 (22 characters); nodes written before "
                "m014_short_chain_hashes: sha256: and the whole hex digest'")


def m015_no_lookup_indexes(con: duckdb.DuckDBPyConnection) -> None:
    """The two secondary indexes go: ``calls_cache`` (cache_key, sample_index) and ``revisions_hash``
    (constitution_hash). Neither keeps anything unique, and their keys are 71-character ``sha256:`` strings, which
    DuckDB's ART stores at about 100 bytes a key: at 100k calls they were a sixth of the file. The call-cache
    lookup joins its batch of keys against ``calls`` by a hash join that never used the index, and a
    revision's constitution is found by a scan of one column. Primary keys and UNIQUE constraints stay: the
    store's deduplication (``INSERT OR IGNORE``) depends on them."""
    con.execute("DROP INDEX IF EXISTS calls_cache")
    con.execute("DROP INDEX IF EXISTS revisions_hash")


def m016_answers_zstd(con: duckdb.DuckDBPyConnection) -> None:
    """``calls.response`` and ``calls.text`` are stored with zstd: DuckDB picks dictionary/FSST compression for
    these mid-sized texts, which keeps little of what the answers of one model share; zstd stores them in about
    half the blocks (the 100k calls table: 6.7 MB less). DuckDB sets a column's compression when the column is
    made, so each is made again, filled, and takes the old one's name and comment: the two columns move to the
    end of ``calls``, and nothing read back changes."""
    for column, kind in (("response", "JSON"), ("text", "VARCHAR")):
        row = con.execute("SELECT comment FROM duckdb_columns() WHERE database_name = current_database() "
                          "AND schema_name = 'main' AND table_name = 'calls' AND column_name = ?",
                          [column]).fetchone()
        con.execute(f"ALTER TABLE calls ADD COLUMN {column}_zstd {kind} USING COMPRESSION zstd")
        con.execute(f"UPDATE calls SET {column}_zstd = {column}")
        con.execute(f"ALTER TABLE calls DROP COLUMN {column}")
        con.execute(f"ALTER TABLE calls RENAME COLUMN {column}_zstd TO {column}")
        con.execute(f"COMMENT ON COLUMN calls.{column} IS '{_quote(row[0] if row and row[0] else '')}'")


MIGRATIONS: list[Migration] = [m001_initial, m002_ratings_and_experiments, m003_embeddings, m004_adapters,
                               m005_call_answer_details, m006_embeddings_to_own_file,
                               m007_probes, m008_judgements, m009_batches, m010_message_chains,
                               m011_journal, m012_journal_bookmarks_kept, m013_run_inputs,
                               m014_short_chain_hashes, m015_no_lookup_indexes,
                               m016_answers_zstd]


def apply(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Apply every migration not yet recorded; return the names applied now."""
    con.execute(
        "CREATE TABLE IF NOT EXISTS migrations (name VARCHAR PRIMARY KEY, applied_at TIMESTAMP NOT NULL)"
    )
    done = {row[0] for row in con.execute("SELECT name FROM migrations").fetchall()}
    applied = []
    for migration in MIGRATIONS:
        if migration.__name__ in done:
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            migration(con)
            con.execute("INSERT INTO migrations VALUES (?, now()::TIMESTAMP)", [migration.__name__])
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        applied.append(migration.__name__)
    return applied
