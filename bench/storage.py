"""Benchmark: database size after N revisions written through the real framework, with deduplication shown.

    python bench/storage.py --revisions 100000 [--starts 600] [--replicates 12] [--db runs/bench-storage.duckdb]

An experiment (``stability.experiment.run_experiment``, fresh-instance, K = 2 declines, at most 40 steps) runs
``starts × replicates`` runs of a deterministic editing model against ``starts`` synthetic starting constitutions
of 5-15 principles (the vocabulary and edits of ``bench/analysis.py``), and repeats with new seeds until the
database holds at least ``--revisions`` revisions. Every call, revision, edge and node goes through the call path
and the store exactly as a real run's do; only the model is a local stand-in (no HTTP, so it takes minutes).

The model (``EditingModel``) reads the constitution out of the prompt. Whether it declines depends on the
constitution's text only (30%: the same node is a fixed point for every seed); which edit it makes depends on
the text and the request's seed. So replicates of one start share their first nodes and part of their paths,
as runs of one model with different seeds do, and some reach the same node by different paths.

Prints one JSON object: file bytes, rows per table, bytes per revision and per call (and per call over the
mean raw request + response JSON of a call: the WHOLE request, its messages put back from their message chains,
as the call sent it), each table's bytes when copied alone into a file of its own, the load and package
versions, distinct constitutions against revisions, the principle-text bytes a store without content addressing
would have written, and the median time of a batched call-cache lookup on the finished database (hits and
misses, 1/16/64 keys).

The spec is written by ``stability.testing.specs.write_spec``; to run this script against a checkout older than
that module (``git archive OLD stability | tar -x -C /tmp/old``), copy ``stability/testing/specs.py`` in too.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from overhead import loadavg, versions  # noqa: E402  (bench/overhead.py: what every figure is measured with)

from analysis import edit, vocabulary  # noqa: E402  (bench/analysis.py: the synthetic vocabulary and edits)
from stability.models.scripted import ScriptedModel, register  # noqa: E402
from stability.testing.specs import write_spec  # noqa: E402
from stability.vocabulary import GenerateConfig, Message, Output  # noqa: E402

DECLINE_SHARE = 0.30


class EditingModel(ScriptedModel):
    """Declines by the constitution's text, edits by the text and the seed; answers like a chat model would."""

    def __init__(self) -> None:
        super().__init__(fn=lambda _: "", name="scripted/storage-bench")
        self.words = vocabulary()

    async def generate(self, messages: list[Message], config: GenerateConfig) -> Output:
        prompt = messages[-1].content
        principles = [line[2:].strip() for line in prompt.splitlines() if line.startswith("- ")]
        text = "\n".join(principles)
        by_text = int(hashlib.sha256(text.encode()).hexdigest()[:12], 16)
        if by_text % 1000 < DECLINE_SHARE * 1000 or not principles:
            answer = "NO CHANGE"
        else:
            rng = random.Random(f"{text}|{config.seed}")
            revised = edit(principles, self.words, rng)
            answer = "I would revise it.\n\nREVISED CONSTITUTION:\n" + "\n".join(f"- {p}" for p in revised)
        self.fn = lambda _: answer
        return await super().generate(messages, config)


def write_inputs(folder: Path, starts: int, replicates: int, seed_offset: int) -> Path:
    rng = random.Random(0)
    words = vocabulary()
    (folder / "c").mkdir(exist_ok=True)
    for n in range(starts):
        chosen = rng.sample(words, rng.randint(5, 15))
        (folder / "c" / f"s{n:04d}.md").write_text("".join(f"- {p}\n" for p in chosen), encoding="utf-8")
    return write_spec(folder / f"spec-{seed_offset}.yaml", name=f"storage-{seed_offset}",
                      models=["scripted/storage-bench"], constitutions=[f"{folder}/c/*.md"],
                      protocol="fresh-instance", options={"max_steps": 40, "declines_to_stop": 2},
                      seeds=list(range(seed_offset, seed_offset + replicates)), concurrency={"scripted": 64},
                      max_parallel_runs=64)


def table_counts(db: Path) -> dict[str, Any]:
    from stability.store import Store

    with Store.open(db, read_only=True) as store:
        con = store.con
        counts = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # type: ignore[index]
                  for t in ("runs", "revisions", "edges", "calls", "constitutions", "principles", "messages")}
        principle_bytes = con.execute("SELECT coalesce(sum(strlen(text)), 0) FROM principles").fetchone()[0]  # type: ignore[index]
        # what storing every revision's full principle list (no content addressing) would have written
        undeduplicated = con.execute(
            """SELECT coalesce(sum(strlen(p.text)), 0) FROM revisions r
               JOIN principles p ON p.constitution_hash = r.constitution_hash""").fetchone()[0]  # type: ignore[index]
        # the raw JSON of each call: its WHOLE request (messages put back from their chains) and its response
        calls = store.frame("calls")
        raw = sum(len(r.encode()) for r in calls["request"]) + sum(len(r.encode()) for r in calls["response"]
                                                                    if isinstance(r, str))
        stored = con.execute("SELECT coalesce(sum(strlen(request::VARCHAR) + coalesce(strlen(chain), 0)), 0) "
                             "FROM calls").fetchone()[0]  # type: ignore[index]
        nodes = con.execute("SELECT count(*), coalesce(sum(strlen(message::VARCHAR)), 0) FROM messages").fetchone()
    return {**counts, "principle_text_bytes": principle_bytes, "principle_text_bytes_without_dedup": undeduplicated,
            "mean_call_json_bytes": round(raw / max(1, len(calls))),
            "raw_request_json_bytes": sum(len(r.encode()) for r in calls["request"]),
            "stored_request_and_chain_bytes": stored, "message_nodes": nodes[0],  # type: ignore[index]
            "message_node_bytes": nodes[1]}  # type: ignore[index]


def table_bytes(db: Path, tables: tuple[str, ...]) -> dict[str, int]:
    """Where the file's bytes go: each table copied alone into a fresh DuckDB file, less an empty file's size."""
    import duckdb

    out: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        empty = Path(tmp) / "empty.duckdb"
        duckdb.connect(str(empty)).close()
        con = duckdb.connect()
        con.execute(f"ATTACH '{db}' AS measured (READ_ONLY)")
        try:
            for table in tables:
                copy = Path(tmp) / f"{table}.duckdb"
                con.execute(f"ATTACH '{copy}' AS table_copy")
                con.execute(f"CREATE TABLE table_copy.{table} AS SELECT * FROM measured.{table}")
                con.execute("DETACH table_copy")
                out[table] = copy.stat().st_size - empty.stat().st_size
        finally:
            con.close()
    return out


def free_blocks(db: Path) -> dict[str, int]:
    """DuckDB's blocks of the finished file: in all and free (space released inside the file, not given back)."""
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        row = con.execute("SELECT block_size, total_blocks, free_blocks FROM pragma_database_size() "
                          "WHERE database_name = current_database()").fetchone()
    finally:
        con.close()
    assert row is not None
    return {"block_bytes": int(row[0]), "blocks_total": int(row[1]), "blocks_free": int(row[2])}


def lookup_times(db: Path, repeats: int = 15) -> dict[str, float]:
    """Median ms of one batched call-cache lookup (``find_calls``) of 1, 16 and 64 keys: stored keys (hits) and
    random keys shaped like real ones (misses, the common case of a new experiment)."""
    import statistics
    import uuid

    from stability.store import Store
    from stability.store.store import find_calls

    rng = random.Random(0)
    out: dict[str, float] = {}
    with Store.open(db, read_only=True) as store:
        con = store.con
        keys = [r[0] for r in con.execute("SELECT cache_key FROM calls USING SAMPLE 2000").fetchall()]
        for size in (1, 16, 64):
            for kind in ("hit", "miss"):
                times = []
                for _ in range(repeats):
                    asked = rng.sample(keys, size) if kind == "hit" else [
                        "sha256:" + uuid.uuid4().hex * 2 for _ in range(size)]
                    started = time.perf_counter()
                    find_calls(con, [(key, 0, "r-none", "global") for key in asked])
                    times.append(time.perf_counter() - started)
                out[f"lookup_{size}_{kind}_ms"] = round(1000 * statistics.median(times), 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--revisions", type=int, default=100_000)
    parser.add_argument("--starts", type=int, default=600)
    parser.add_argument("--replicates", type=int, default=12)
    parser.add_argument("--db", type=Path, help="keep the database here (default: a temporary folder)")
    args = parser.parse_args()
    register("storage-bench", EditingModel)
    from stability.experiment import run_experiment

    compactions: list[str] = []  # what Store.close logged when it compacted the file (stability.store.compact)

    class Compactions(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "compact" in record.getMessage():
                compactions.append(record.getMessage())

    logging.getLogger("stability.store").addHandler(Compactions())
    logging.getLogger("stability.store").setLevel(logging.INFO)

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        db = args.db or folder / "storage.duckdb"
        db.parent.mkdir(parents=True, exist_ok=True)
        started, offset, revisions, load_before = time.perf_counter(), 0, 0, loadavg()
        cpu_started = time.process_time()
        while revisions < args.revisions:
            spec = write_inputs(folder, args.starts, args.replicates, offset)
            result = run_experiment(spec, db)
            offset += args.replicates
            revisions = table_counts(db)["revisions"]
            print(json.dumps({"experiment": result.experiment_id, "done": result.done, "failed": result.failed,
                              "revisions_so_far": revisions, "elapsed_s": round(time.perf_counter() - started, 1)}),
                  file=sys.stderr, flush=True)
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        counts = table_counts(db)
        counts.update(lookup_times(db))
        size = db.stat().st_size
        per_table = table_bytes(db, ("calls", "messages", "revisions", "edges", "constitutions", "principles",
                                     "runs", "experiment_runs"))
        print(json.dumps({
            **counts, "file_bytes": size, "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
            "compactions_on_close": compactions, **free_blocks(db),
            "bytes_per_revision": round(size / counts["revisions"]), "bytes_per_call": round(size / counts["calls"]),
            # the whole file over the stored request + response JSON of the calls alone
            "bytes_per_call_over_call_json": round(size / counts["calls"] / max(1, counts["mean_call_json_bytes"]), 2),
            "raw_call_json_bytes_per_call": counts["mean_call_json_bytes"],
            "table_bytes_each_copied_alone": per_table,
            "loadavg_before": load_before, "loadavg_after": loadavg(), "versions": versions(),
            "revisions_per_distinct_constitution": round(counts["revisions"] / counts["constitutions"], 2),
            "principle_text_saved_by_dedup": round(1 - counts["principle_text_bytes"]
                                                   / max(1, counts["principle_text_bytes_without_dedup"]), 3),
        }, indent=2))


if __name__ == "__main__":
    main()
