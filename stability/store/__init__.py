"""The store: the only place that speaks SQL."""

from stability.store.store import Store, default_db_path

__all__ = ["Store", "default_db_path"]
