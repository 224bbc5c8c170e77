"""Keep secrets out of everything we write: the database, logs, reports and error messages.

Secrets are the values of ``*_API_KEY``/``*_TOKEN``/``*_SECRET`` variables, the values of auth-like keys, and
in any URL (a base URL, an error naming one) the user and password and the values of key-like query
parameters (``?api_key=``, ``?key=``, ``?token=``...).
"""

from __future__ import annotations

import os
import re
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

SECRET_SUFFIXES = ("_API_KEY", "_TOKEN", "_SECRET")
AUTH_KEYS = frozenset({"authorization", "api_key", "x-api-key", "api-key"})
#: query parameters whose values are credentials
QUERY_KEYS = frozenset({"api_key", "apikey", "api-key", "key", "token", "access_token", "auth", "secret",
                        "client_secret", "password", "sig", "signature", "code"})
REDACTED = "[redacted]"
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")


def secret_values() -> list[str]:
    """Values of ``*_API_KEY``, ``*_TOKEN`` and ``*_SECRET`` environment variables (8 characters or more)."""
    return [v for k, v in os.environ.items() if k.upper().endswith(SECRET_SUFFIXES) and len(v) >= 8]


def redact_url(url: str) -> str:
    """``url`` with its user, password and key-like query values replaced by ``[redacted]``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    netloc = parts.netloc
    if "@" in netloc:
        netloc = REDACTED + "@" + netloc.rsplit("@", 1)[1]
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(k.lower() in QUERY_KEYS for k, _ in pairs):
            query = urlencode([(k, REDACTED if k.lower() in QUERY_KEYS else v) for k, v in pairs], safe="[]")
    if netloc == parts.netloc and query == parts.query:
        return url
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redact(value: Any, secrets: list[str] | None = None) -> Any:
    """Replace every secret value found in strings, credentials in URLs, and the values of auth-like keys, with
    ``[redacted]``."""
    secrets = secret_values() if secrets is None else secrets
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, REDACTED)
        if "://" in value:
            value = _URL.sub(lambda match: redact_url(match.group()), value)
        return value
    if isinstance(value, dict):
        return {k: REDACTED if str(k).lower() in AUTH_KEYS else redact(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v, secrets) for v in value]
    return value
