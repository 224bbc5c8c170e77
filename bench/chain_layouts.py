"""What other layouts of the message chains would cost: a chain store's messages re-laid in SQL, each measured.

    python bench/chain_layouts.py CHAINED.duckdb [WHOLE.duckdb]

(the stores ``bench/in_context_storage.py --keep FOLDER`` leaves). Each layout is the store copied into a fresh
file (16 kB blocks, as a new store's) with only ``messages`` and ``calls.chain`` changed, and its size after a
checkpoint:

- ``as_stored``: the store as it is (a compacted copy);
- ``no_messages_key``: ``messages`` without its primary-key index (deduplication would then need another way);
- ``blob_hashes``: hash, parent and ``calls.chain`` as 16-byte BLOBs (the 128 bits the 22 characters encode);
- ``integer_ids``: nodes numbered in the store (root-first order of first use), parent and ``calls.chain`` as
  those integers, no hash column and no index (a merge would have to renumber);
- ``integer_ids_with_blob_hash``: the same plus the 16-byte content hash of each node, unindexed (what finding a
  node by its content would need on write).

Prints one JSON object of file bytes per layout (and the whole-requests store's, if given, with each layout's
ratio to it), with the load and package versions.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).parent))

from overhead import loadavg, versions  # noqa: E402  (bench/overhead.py: what every figure is measured with)

BLOCK = "16384"
#: per layout, the statements run on the copy after COPY FROM DATABASE (``messages`` and ``calls`` rebuilt)
_B64 = "from_base64(replace(replace({c}, '-', '+'), '_', '/') || '==')"
#: calls.chain replaced in place (the rest of calls, its key and its columns' compression, kept)
_CHAIN_RENAMED = ["ALTER TABLE calls DROP COLUMN chain", "ALTER TABLE calls RENAME COLUMN chain_new TO chain"]
LAYOUTS: dict[str, list[str]] = {
    "as_stored": [],
    "no_messages_key": [
        "CREATE TABLE m2 (hash VARCHAR, parent VARCHAR, role VARCHAR, message JSON USING COMPRESSION zstd)",
        "INSERT INTO m2 SELECT * FROM messages", "DROP TABLE messages", "ALTER TABLE m2 RENAME TO messages"],
    "blob_hashes": [
        "CREATE TABLE m2 (hash BLOB PRIMARY KEY, parent BLOB, role VARCHAR, message JSON USING COMPRESSION zstd)",
        f"INSERT INTO m2 SELECT {_B64.format(c='hash')}, {_B64.format(c='parent')}, role, message FROM messages",
        "DROP TABLE messages", "ALTER TABLE m2 RENAME TO messages",
        "ALTER TABLE calls ADD COLUMN chain_new BLOB", f"UPDATE calls SET chain_new = {_B64.format(c='chain')}",
        *_CHAIN_RENAMED],
}
_NUMBERED = """CREATE TEMP TABLE ids AS
    WITH RECURSIVE depth(hash, d) AS (SELECT hash, 0 FROM messages WHERE parent IS NULL
        UNION ALL SELECT m.hash, d + 1 FROM messages m JOIN depth ON m.parent = depth.hash)
    SELECT hash, row_number() OVER (ORDER BY d, hash) AS id FROM depth"""
LAYOUTS["integer_ids"] = [
    _NUMBERED,
    "CREATE TABLE m2 (id BIGINT, parent BIGINT, role VARCHAR, message JSON USING COMPRESSION zstd)",
    """INSERT INTO m2 SELECT i.id, p.id AS parent, m.role, m.message FROM messages m
       JOIN ids i USING (hash) LEFT JOIN ids p ON p.hash = m.parent ORDER BY i.id""",
    "DROP TABLE messages", "ALTER TABLE m2 RENAME TO messages",
    "ALTER TABLE calls ADD COLUMN chain_new BIGINT",
    "UPDATE calls SET chain_new = ids.id FROM ids WHERE ids.hash = calls.chain",
    *_CHAIN_RENAMED]
LAYOUTS["integer_ids_with_blob_hash"] = [
    *LAYOUTS["integer_ids"][:1],
    "CREATE TABLE m2 (id BIGINT, parent BIGINT, hash BLOB, role VARCHAR, message JSON USING COMPRESSION zstd)",
    f"""INSERT INTO m2 SELECT i.id, p.id AS parent, {_B64.format(c='m.hash')} AS hash, m.role, m.message
        FROM messages m JOIN ids i USING (hash) LEFT JOIN ids p ON p.hash = m.parent ORDER BY i.id""",
    *LAYOUTS["integer_ids"][3:]]


def _copy(source: Path, target: Path, statements: list[str]) -> None:
    """``source`` copied into a new file ``target`` (16 kB blocks), then ``statements`` run on it."""
    con = duckdb.connect(str(target), config={"default_block_size": BLOCK})
    try:
        con.execute(f"ATTACH '{source}' AS source (READ_ONLY)")
        con.execute(f'COPY FROM DATABASE source TO "{target.stem}"')
        con.execute("DETACH source")
        for statement in statements:
            con.execute(statement)
        con.execute("CHECKPOINT")
    finally:
        con.close()


def layout_bytes(store: Path, statements: list[str], folder: Path, name: str) -> int:
    target = folder / f"{name}.duckdb"
    _copy(store, target, statements)
    compacted = folder / f"{name}_compacted.duckdb"  # a rebuilt table leaves the old one's blocks free
    _copy(target, compacted, [])
    return compacted.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("chained", type=Path)
    parser.add_argument("whole", type=Path, nargs="?")
    args = parser.parse_args()
    before = loadavg()
    out: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        sizes = {name: layout_bytes(args.chained, statements, Path(tmp), name)
                 for name, statements in LAYOUTS.items()}
        out["file_bytes"] = sizes
        if args.whole:
            whole = layout_bytes(args.whole, [], Path(tmp), "whole")
            out["whole_requests_file_bytes"] = whole
            out["over_whole"] = {name: round(size / whole, 3) for name, size in sizes.items()}
    print(json.dumps({**out, "loadavg_before": before, "loadavg_after": loadavg(), "versions": versions()},
                     indent=2))


if __name__ == "__main__":
    main()
