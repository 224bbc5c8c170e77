"""The manifest of an export folder: what each table's file holds (rows, columns, sha256) and which format wrote it.

A leaf: both the writer (:mod:`stability.store.export`) and the checks (:mod:`stability.store.export_checks`) read
it, so neither needs the other's types.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

MANIFEST_NAME = "stability-export.json"
#: 2: every file's sha256 in the manifest; 1 (still read): none
FORMAT_VERSION = 2


class ExportedTable(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    file: str
    rows: int = Field(ge=0)
    columns: list[dict[str, Any]]  # name, type, comment
    comment: str | None = None
    sha256: str | None = None  # of the file's bytes (format 2 on; format 1 exports have none)


class ExportManifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format_version: int = Field(FORMAT_VERSION, ge=1)
    experiments: list[str]  # empty for --all
    migrations: list[str]
    tables: list[ExportedTable]
    skipped: list[str] = []  # tables with no run or experiment column, left out of an experiment's export
