"""Keep secrets out of everything we write: the database, logs, reports and error messages."""

from __future__ import annotations

import os
from typing import Any

SECRET_SUFFIXES = ("_API_KEY", "_TOKEN", "_SECRET")
AUTH_KEYS = frozenset({"authorization", "api_key", "x-api-key", "api-key"})


def secret_values() -> list[str]:
    """Values of ``*_API_KEY``, ``*_TOKEN`` and ``*_SECRET`` environment variables (8 characters or more)."""
    return [v for k, v in os.environ.items() if k.upper().endswith(SECRET_SUFFIXES) and len(v) >= 8]


def redact(value: Any, secrets: list[str] | None = None) -> Any:
    """Replace every secret value found in strings, and the values of auth-like keys, with ``[redacted]``."""
    secrets = secret_values() if secrets is None else secrets
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, "[redacted]")
        return value
    if isinstance(value, dict):
        return {k: "[redacted]" if str(k).lower() in AUTH_KEYS else redact(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v, secrets) for v in value]
    return value
