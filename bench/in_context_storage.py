"""What storing a conversation's messages as chains saves: a 20-step in-context run, measured.

    python bench/in_context_storage.py [--steps 20] [--runs 1] [--keep FOLDER]

Runs ``in-context-iteration`` for ``--steps`` steps with a scripted model that revises every time (so the
conversation grows by two messages a step) into a store, which keeps each message once as a node of a message
chain (:mod:`stability.store.chains`). In the same run it writes the same calls, whole, into a store at the
schema before chains (every migration but ``m010_message_chains`` and ``m014_short_chain_hashes``: calls stored
the way 597154e stored them),
and compares:

- the raw request JSON of the calls, read back whole (the denominator);
- the request bytes each store holds: the ``calls.request`` text, plus (with chains) ``calls.chain`` and the
  ``messages`` rows (hash, parent, role, message);
- each database file's size after a checkpoint: the calls alone written into two fresh stores, one through
  ``Store.insert_call`` (chains), one whole (at this size DuckDB's 256 kB blocks still count). The stores are
  read back and every request checked equal to the run's.

Prints one JSON object, with the load and package versions.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).parent))

from overhead import loadavg, versions  # noqa: E402  (bench/overhead.py: what every figure is measured with)

from stability.engine import IterateConfig, iterate  # noqa: E402
from stability.models import scripted  # noqa: E402
from stability.models.scripted import ScriptedModel  # noqa: E402
from stability.records import CallRecord  # noqa: E402
from stability.store import Store, migrations  # noqa: E402
from stability.store.json_values import to_json  # noqa: E402


def whole_store(path: Path, calls: list[CallRecord]) -> None:
    """The calls written whole into a store at the schema before message chains (every migration but m010 and
    m014, which documents m010's table), queued exactly as ``Store.insert_call`` queued them before chains."""
    everything = migrations.MIGRATIONS
    migrations.MIGRATIONS = [m for m in everything
                             if m.__name__ not in ("m010_message_chains", "m014_short_chain_hashes")]
    try:
        with Store.open(path) as store:
            for call in calls:
                store.queue.insert("calls", call.model_dump(), call.id)
            store.con.execute("CHECKPOINT")
    finally:
        migrations.MIGRATIONS = everything


def chained_store(path: Path, calls: list[CallRecord]) -> None:
    """The same calls written into a store of today's schema, through ``Store.insert_call`` (message chains)."""
    with Store.open(path) as store:
        for call in calls:
            store.insert_call(call)
        store.con.execute("CHECKPOINT")


def stored_request_bytes(path: Path) -> dict[str, int]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        calls = con.execute("SELECT sum(strlen(request::VARCHAR)), count(*) FROM calls").fetchone()
        chains = con.execute("SELECT 1 FROM duckdb_tables() WHERE table_name = 'messages'").fetchone()
        hashes = con.execute("SELECT coalesce(sum(strlen(chain)), 0) FROM calls").fetchone() if chains else (0,)
        nodes = con.execute("""SELECT count(*), coalesce(sum(strlen(hash) + coalesce(strlen(parent), 0)
                                   + coalesce(strlen(role), 0) + strlen(message::VARCHAR)), 0)
                               FROM messages""").fetchone() if chains else (0, 0)
    finally:
        con.close()
    assert calls and hashes and nodes
    return {"calls": int(calls[1]), "request_column_bytes": int(calls[0]), "chain_column_bytes": int(hashes[0]),
            "message_nodes": int(nodes[0]), "message_node_bytes": int(nodes[1]),
            "request_bytes_stored": int(calls[0]) + int(hashes[0]) + int(nodes[1]),
            "file_bytes": path.stat().st_size}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--runs", type=int, default=1, help="runs of --steps steps each, from different starts")
    parser.add_argument("--keep", type=Path, help="copy the two stores (chained.duckdb, whole.duckdb) here")
    args = parser.parse_args()
    asked = [0]

    def revise(_: object) -> str:
        asked[0] += 1
        return "Here is my revision.\n\nREVISED CONSTITUTION:\n" + "".join(
            f"- principle {i}, as of step {asked[0]}\n" for i in range(8))

    model = ScriptedModel(fn=revise, name="scripted/in-context-storage")
    scripted.register("in-context-storage", lambda: model)
    load_before = loadavg()
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "in-context.duckdb"
        run_ids = []
        for run in range(args.runs):
            start = Path(folder) / f"start-{run}.md"
            start.write_text("".join(f"- starting principle {i} of run {run}\n" for i in range(8)),
                             encoding="utf-8")
            result = iterate(IterateConfig(protocol="in-context-iteration", model="scripted/in-context-storage",
                                           constitution=str(start), options={"max_steps": args.steps}, seed=run),
                             db)
            run_ids.append(result.run.id)
        with Store.open(db) as store:
            calls = [c for run_id in run_ids for c in store.calls(run_id)]
            store.con.execute("CHECKPOINT")
        run_file = db.stat().st_size
        # the calls alone, into two fresh stores: with chains (today) and whole (the schema before m010)
        chained_db, whole_db = Path(folder) / "chained.duckdb", Path(folder) / "whole.duckdb"
        chained_store(chained_db, calls)
        whole_store(whole_db, calls)
        with Store.open(chained_db, read_only=True) as store:
            assert [to_json(c.request) for r in run_ids for c in store.calls(r)] == [to_json(c.request) for c in calls]
        chained, unchained = stored_request_bytes(chained_db), stored_request_bytes(whole_db)
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            for kept in (chained_db, whole_db):
                shutil.copyfile(kept, args.keep / kept.name)
    raw = sum(len(to_json(c.request)) for c in calls)
    print(json.dumps({
        "steps": args.steps, "runs": args.runs, "calls": len(calls),
        "messages_sent": sum(len(c.request["messages"]) for c in calls),
        "raw_request_json_bytes": raw,
        "response_json_bytes": sum(len(to_json(c.response)) for c in calls),
        "run_store_file_bytes": run_file,
        "with_chains": chained, "whole_requests_before_chains": unchained,
        "request_bytes_over_raw_with_chains": round(chained["request_bytes_stored"] / raw, 3),
        "request_bytes_over_raw_before": round(unchained["request_bytes_stored"] / raw, 3),
        "request_bytes_saved": round(1 - chained["request_bytes_stored"] / unchained["request_bytes_stored"], 3),
        "file_bytes_ratio_after_over_before": round(chained["file_bytes"] / unchained["file_bytes"], 3),
        "loadavg_before": load_before, "loadavg_after": loadavg(), "versions": versions(),
    }, indent=2))


if __name__ == "__main__":
    main()
