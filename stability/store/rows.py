"""Rows as dictionaries: the one way the store's read modules turn a DuckDB result into named values."""

from __future__ import annotations

import json
from typing import Any

import duckdb


def dict_rows(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
    """Run ``sql`` on ``con`` and return each row as a dictionary keyed by column name."""
    cursor = con.execute(sql, params or [])
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def decode_json(row: dict[str, Any], json_columns: tuple[str, ...]) -> dict[str, Any]:
    """Parse the JSON text held in ``row``'s ``json_columns`` in place (a value already decoded is left)."""
    for column in json_columns:
        if isinstance(row.get(column), str):
            row[column] = json.loads(row[column])
    return row
