"""The JSON text of a value the store keeps in a JSON column (sorted keys, so equal values are equal texts)."""

from __future__ import annotations

import json
from typing import Any


def to_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
