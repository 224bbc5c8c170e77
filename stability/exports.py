"""``stability export`` and ``stability import-store``: results as Parquet with a dataset card, and back.

The card (``README.md`` in the export folder) states where the data came from (the store, the experiments and
their specs, the models, the stability version and commit of every run and of the export), the schema with the
store's own column comments, and how to load it with pandas, DuckDB and Hugging Face ``datasets``; its front
matter declares one ``datasets`` configuration per table.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from stability.provenance import git_commit, package_version
from stability.store.export import ExportManifest, card_facts, export_store, import_export
from stability.store.merge import MergeReport
from stability.store.store import Store


def export(db: Path | str | None, experiment: str | None, out: Path | str) -> ExportManifest:
    """Export one experiment (or every table whole, for None) of the store ``db`` into the new folder ``out``."""
    target = Path(out)
    with Store.open(db, read_only=True) as store:
        con = store.con
        experiments = [experiment] if experiment else None
        manifest = export_store(con, experiments, target)
        facts = card_facts(con, experiments)
    (target / "README.md").write_text(dataset_card(manifest, facts, Path(store.path).name), encoding="utf-8")
    return manifest


def import_store(folder: Path | str, db: Path | str | None) -> MergeReport:
    """Merge an export folder, verified, into the store ``db`` (created when missing); a refused export or a
    conflict writes nothing. A folder of Inspect logs written by ``export --format inspect`` is read back through
    :mod:`stability.inspect_log`."""
    from stability.inspect_log import import_inspect, is_inspect_folder

    if is_inspect_folder(Path(folder)):
        return import_inspect(Path(folder), db)
    return import_export(Path(folder), db)


def dataset_card(manifest: ExportManifest, facts: dict[str, Any], source: str) -> str:
    tables = manifest.tables
    front = {"configs": [{"config_name": t.name, "data_files": t.file} for t in tables if t.rows],
             "tags": ["stability", "reflective-stability"]}
    title = ", ".join(e["name"] for e in facts["experiments"]) if manifest.experiments else f"the store {source}"
    lines = ["---", yaml.safe_dump(front, sort_keys=False).rstrip(), "---", "",
             f"# stability export: {title}", "",
             "Reflective-stability results exported by `stability export`: one Parquet file per table of the store. "
             "Constitutions are graph nodes addressed by the hash of their text; every model call is stored with "
             "its full request and response (no keys, no credentials).", "",
             "## Provenance", "",
             f"- source store: `{source}`",
             f"- exported: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M:%S')} UTC by stability {package_version()}"
             f" (commit {git_commit() or 'unknown'})",
             f"- experiments: {', '.join(manifest.experiments) if manifest.experiments else 'all (the whole store)'}",
             f"- protocols: {', '.join(facts['protocols']) or 'none'}",
             f"- store migrations: {', '.join(manifest.migrations)}"]
    lines += ["- runs by stability version and commit:"]
    lines += [f"  - {version} · {commit}: runs {n}" for version, commit, n in facts["versions"]] or ["  - none"]
    lines += ["", "## Models", ""]
    lines += [f"- `{model}`: runs {n}" for model, n in facts["models"]] or ["- none"]
    for experiment in facts["experiments"]:
        lines += ["", f"## Spec: {experiment['name']} (`{experiment['id']}`)", "", "```yaml",
                  yaml.safe_dump(experiment["spec"], sort_keys=False, allow_unicode=True).rstrip(), "```"]
    lines += ["", "## Tables", ""]
    for t in tables:
        lines += [f"### {t.name} ({t.rows} rows, `{t.file}`)", "", t.comment or "", "",
                  "| column | type | meaning |", "|---|---|---|"]
        lines += [f"| {c['name']} | {c['type']} | {(c['comment'] or '').replace('|', '/')} |" for c in t.columns]
        lines.append("")
    if manifest.skipped:
        lines += [f"Not exported (no run or experiment column to select by): {', '.join(manifest.skipped)}.", ""]
    first = next((t.name for t in tables if t.name == "revisions"), tables[0].name if tables else "runs")
    lines += ["## Loading", "", "pandas:", "", "```python", "import pandas as pd",
              f'{first} = pd.read_parquet("{first}.parquet")', "```", "",
              "DuckDB (or `stability import-store THIS_FOLDER --db store.duckdb` for a full stability store):", "",
              "```python", "import duckdb",
              f"duckdb.sql(\"SELECT decision, count(*) FROM '{first}.parquet' GROUP BY ALL\").show()"
              if first == "revisions" else f"duckdb.sql(\"SELECT * FROM '{first}.parquet'\").show()", "```", "",
              "Hugging Face `datasets` (one table at a time: the tables have different columns):", "",
              "```python", "from datasets import load_dataset",
              f'{first} = load_dataset("parquet", data_files="{first}.parquet", split="train")',
              "# once this folder is a dataset repository, each table is a configuration (front matter above):",
              f'# load_dataset("OWNER/NAME", "{first}", split="train")', "```", ""]
    return "\n".join(lines)
