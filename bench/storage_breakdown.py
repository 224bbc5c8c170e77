"""Where a store file's bytes go: DuckDB blocks used and free, a compacted copy, and each table alone.

    python bench/storage_breakdown.py A.duckdb [B.duckdb ...]

For each database (opened read-only): its file size; DuckDB's blocks in use and free (a free block is space a
commit or checkpoint released inside the file, which DuckDB reuses but does not give back); the size of a
compacted copy (``COPY FROM DATABASE`` into a new file: the same tables and indexes, no free blocks); and each
table copied alone into a file of its own without its indexes (``bench/storage.py``'s ``table_bytes``). Prints
one JSON object with the load and package versions.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import duckdb

sys.path.insert(0, str(Path(__file__).parent))

from overhead import loadavg, versions  # noqa: E402  (bench/overhead.py: what every figure is measured with)
from storage import table_bytes  # noqa: E402

TABLES = ("calls", "messages", "revisions", "edges", "constitutions", "principles", "runs", "experiment_runs")


def breakdown(path: Path) -> dict[str, Any]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        row = con.execute("PRAGMA database_size").fetchone()
        present = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    finally:
        con.close()
    assert row is not None
    _, _, block, total, used, free, *_ = row
    with tempfile.TemporaryDirectory() as tmp:
        compact = Path(tmp) / "compact.duckdb"
        con = duckdb.connect()
        try:
            con.execute(f"ATTACH '{path}' AS measured (READ_ONLY)")
            con.execute(f"ATTACH '{compact}' AS compacted")
            con.execute("COPY FROM DATABASE measured TO compacted")
            con.execute("DETACH compacted")
        finally:
            con.close()
        compacted = compact.stat().st_size
    alone = table_bytes(path, tuple(t for t in TABLES if t in present))
    return {"file_bytes": os.path.getsize(path), "block_bytes": block, "blocks_total": total, "blocks_used": used,
            "blocks_free": free, "compacted_copy_bytes": compacted, "tables_copied_alone_no_indexes": alone,
            "tables_sum": sum(alone.values())}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("databases", nargs="+", type=Path)
    args = parser.parse_args()
    before = loadavg()
    out: dict[str, Any] = {str(db): breakdown(db) for db in args.databases}
    print(json.dumps({**out, "loadavg_before": before, "loadavg_after": loadavg(), "versions": versions()},
                     indent=2))


if __name__ == "__main__":
    main()
