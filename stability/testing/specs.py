"""Experiment spec files for tests and benchmarks, written from keyword arguments instead of hand-made YAML.

:func:`write_spec` checks the fields against :class:`stability.experiment.spec.ExperimentSpec` before it writes
anything, so a test's typo fails where the spec is made rather than as a load error later. Only the fields
given are written: a field left out keeps the spec's default *unset* (which matters where an unset field hashes
differently from its default written out, such as ``max_parallel_runs``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def write_spec(path: Path, *, name: str, models: list[str], constitutions: list[str], protocol: str,
               options: dict[str, Any] | None = None, **fields: Any) -> Path:
    """Write a one-protocol experiment spec to ``path`` (its folder is made); ``fields`` are any other top-level
    fields of the spec (``replicates``, ``seeds``, ``concurrency``, ``max_parallel_runs`` ...). Returns ``path``."""
    from stability.experiment.spec import ExperimentSpec

    document: dict[str, Any] = {"name": name, "models": models, "constitutions": constitutions,
                                "protocols": [{"name": protocol, "options": options or {}}], **fields}
    ExperimentSpec.model_validate(document)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(document, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path
