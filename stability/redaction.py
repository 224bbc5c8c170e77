"""Keep secrets out of everything we write: the database, logs, reports, exports, the viewer and error messages.

Secrets are redacted where they appear *as secrets*, never inside content:

- the values of ``*_API_KEY``/``*_KEY``/``*_TOKEN``/``*_SECRET``/``*_PASSWORD`` variables, and the credentials
  inside URL-valued variables (``*_BASE_URL=https://host/?subscription-key=...``), wherever they appear in an
  error message, a log line, a header or a configuration value;
- the values of auth-like keys of a mapping (headers and configs: ``Authorization``, ``api-key``,
  ``Ocp-Apim-Subscription-Key``, ``client_secret``...);
- in any URL: the user and password, the values of key-like query (and fragment) parameters (``?api_key=``,
  ``?subscription-key=``, ``?sig=``, ``#access_token=``...), and key-like path segments (``/key/VALUE``,
  ``/api-key=VALUE``, a segment shaped like a key: ``sk-...``, ``ghp_...``).

Content is never rewritten: a model's answer, its thinking, the messages of a request and a constitution's text
(the values under :data:`CONTENT_KEYS`) stay byte-exact, even when they happen to contain a key's value: the
stored revision is what the model wrote.
"""

from __future__ import annotations

import os
import re
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

SECRET_SUFFIXES = ("_API_KEY", "_KEY", "_TOKEN", "_SECRET", "_PASSWORD")
#: mapping keys (headers, configs) whose values are credentials, compared lower-case with "-" read as "_"
AUTH_KEYS = frozenset({
    "authorization", "proxy_authorization", "api_key", "apikey", "x_api_key", "subscription_key",
    "ocp_apim_subscription_key", "x_goog_api_key", "token", "access_token", "refresh_token", "id_token",
    "auth_token", "x_auth_token", "session_token", "bearer_token", "secret", "client_secret", "password", "passwd",
    "cookie", "set_cookie", "private_key", "secret_access_key", "access_key", "sas_token", "signature"})
_AUTH_SUFFIXES = ("_api_key", "_apikey", "_secret", "_password", "_access_token", "_auth_token",
                  "_session_token", "_subscription_key", "_access_key", "_private_key", "_sas_token")
#: query (and fragment) parameter names whose values are credentials: these names, or any name ending in one
#: of them once lower-cased with "-" read as "_" (``subscription-key``, ``x-goog-api-key``, ``sv_sig``...)
QUERY_KEYS = frozenset({"api_key", "apikey", "key", "token", "access_token", "auth", "secret", "client_secret",
                        "password", "sig", "signature", "code", "credential", "credentials", "sas", "passwd", "pwd"})
_QUERY_NAME = re.compile(r"(?:^|_)(?:[a-z]*key|[a-z]*token|secret|password|passwd|pwd|sig|signature|code|auth|"
                         r"credentials?|sas)$")
#: path segments after which the next segment is a credential (``/key/VALUE``)
PATH_KEYS = frozenset({"key", "api_key", "apikey", "token", "access_token", "secret",
                       "subscription_key", "sig", "password", "auth"})
#: a path segment shaped like a key on its own (OpenAI/Anthropic/Stripe sk-, GitHub, Slack, Google, Hugging Face,
#: AWS, a Telegram bot token)
_KEY_SHAPED = re.compile(r"^(?:(?:sk|pk|rk)[-_][A-Za-z0-9_-]{12,}|(?:ghp|gho|ghu|ghs|ghr|github_pat)_[A-Za-z0-9_]{12,}"
                         r"|xox[abprs]-[A-Za-z0-9-]{10,}|AIza[A-Za-z0-9_-]{20,}|hf_[A-Za-z0-9]{16,}"
                         r"|AKIA[A-Z0-9]{12,}|bot\d{5,}:[A-Za-z0-9_-]{20,})$")
#: mapping keys whose values are content (model answers, thinking, messages, constitution text): never rewritten
CONTENT_KEYS = frozenset({
    "text", "content", "messages", "refusal", "tool_calls", "arguments", "thinking", "reasoning", "reasoning_content",
    "system", "prompt", "input", "instructions", "completion", "output_text", "parts", "choices_text", "logprobs",
    "stability_logprobs", "top_logprobs", "option_text", "raw_answer", "rationale", "principles", "principle",
    "diff", "snippet", "answer", "target", "data", "examples"})
REDACTED = "[redacted]"
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")
#: shortest value worth matching as a secret (shorter ones would wipe ordinary words)
MIN_SECRET = 8


def _norm(name: str) -> str:
    return name.strip().lower().replace("-", "_")


def auth_key(name: str) -> bool:
    """Whether a mapping key (a header, a config field) holds a credential."""
    n = _norm(name)
    return n in AUTH_KEYS or n.endswith(_AUTH_SUFFIXES)


def query_key(name: str) -> bool:
    """Whether a URL query or fragment parameter holds a credential."""
    n = _norm(name)
    return n in QUERY_KEYS or bool(_QUERY_NAME.search(n))


def secret_values() -> list[str]:
    """Values of secret-named environment variables (see the module's docstring) and the credentials inside
    URL-valued ones, each of :data:`MIN_SECRET` characters or more; longest first.

    Read again whenever the environment changed since the last call (every run asks once; a hundred runs in one
    process then read the environment once)."""
    global _secrets_seen
    key = _environment()
    if _secrets_seen is None or _secrets_seen[0] != key:
        _secrets_seen = (key, _read_secret_values())
    return list(_secrets_seen[1])


#: the environment :func:`secret_values` last read, and what it found there
_secrets_seen: tuple[object, tuple[str, ...]] | None = None


def _environment() -> object:
    """A snapshot of the environment to compare with: its raw bytes where the platform keeps them (posix)."""
    data = getattr(os.environ, "_data", None)
    return frozenset(data.items()) if isinstance(data, dict) else frozenset(os.environ.items())


def _read_secret_values() -> tuple[str, ...]:
    found: set[str] = set()
    for name, value in os.environ.items():
        if name.upper().endswith(SECRET_SUFFIXES):
            found.add(value)
        if "://" in value:
            found.update(url_secrets(value))
    return tuple(sorted((v for v in found if len(v) >= MIN_SECRET), key=lambda v: (-len(v), v)))


def url_secrets(url: str) -> list[str]:
    """The credentials inside ``url``: its password (and user), and the values :func:`redact_url` removes."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return []
    out = []
    if "@" in parts.netloc:  # the password, or a user with none (a token given as the user)
        user, _, password = parts.netloc.rsplit("@", 1)[0].partition(":")
        out.append(password or user)
    for section in (parts.query, parts.fragment):
        out += [v for k, v in parse_qsl(section, keep_blank_values=True) if query_key(k) and v]
    segments = parts.path.split("/")
    for n, segment in enumerate(segments):
        name, eq, value = segment.partition("=")
        if eq and query_key(name) and value:
            out.append(value)
        elif n and _norm(segments[n - 1]) in PATH_KEYS and segment or _KEY_SHAPED.match(segment):
            out.append(segment)
    return out


def _redact_params(section: str) -> str:
    if not section or "=" not in section:
        return section
    pairs = parse_qsl(section, keep_blank_values=True)
    if not any(query_key(k) for k, _ in pairs):
        return section
    return urlencode([(k, REDACTED if query_key(k) else v) for k, v in pairs], safe="[]")


def _redact_path(path: str) -> str:
    segments = path.split("/")
    out = []
    for n, segment in enumerate(segments):
        name, eq, value = segment.partition("=")
        if eq and query_key(name) and value:
            segment = f"{name}={REDACTED}"
        elif n and _norm(segments[n - 1]) in PATH_KEYS and segment or _KEY_SHAPED.match(segment):
            segment = REDACTED
        out.append(segment)
    return "/".join(out)


def redact_url(url: str) -> str:
    """``url`` with its user and password, key-like query and fragment values and key-like path segments
    replaced by ``[redacted]``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    netloc = parts.netloc
    if "@" in netloc:
        netloc = REDACTED + "@" + netloc.rsplit("@", 1)[1]
    path, query, fragment = _redact_path(parts.path), _redact_params(parts.query), _redact_params(parts.fragment)
    if (netloc, path, query, fragment) == (parts.netloc, parts.path, parts.query, parts.fragment):
        return url
    return urlunsplit((parts.scheme, netloc, path, query, fragment))


def redact_text(value: str, secrets: list[str]) -> str:
    """A message, a log line or a configuration value: every secret value and every URL's credentials removed."""
    for secret in secrets:
        value = value.replace(secret, REDACTED)
    if "://" in value:
        value = _URL.sub(lambda match: redact_url(match.group()), value)
    return value


def redact(value: Any, secrets: list[str] | None = None) -> Any:
    """``value`` with its secrets removed: in strings (:func:`redact_text`), and the values of auth-like keys of
    every mapping (:func:`auth_key`); the values under :data:`CONTENT_KEYS` are kept as they are."""
    secrets = secret_values() if secrets is None else secrets
    if isinstance(value, str):
        return redact_text(value, secrets)
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            kind = _key_kinds.get(k) if isinstance(k, str) else None
            if kind is None:
                kind = _key_kind(str(k))
                if isinstance(k, str) and len(_key_kinds) < 4096:
                    _key_kinds[k] = kind
            if kind == _AUTH and v not in (None, ""):
                out[k] = REDACTED
            elif kind == _CONTENT or v is None or type(v) in _PLAIN:  # kept as it is (no call to make)
                out[k] = v
            else:
                out[k] = redact_text(v, secrets) if type(v) is str else redact(v, secrets)
        return out
    if isinstance(value, list | tuple):
        return [redact(v, secrets) for v in value]
    return value


_AUTH, _CONTENT, _OTHER = 1, 2, 3
#: values :func:`redact` returns unchanged
_PLAIN = frozenset({int, float, bool})
#: each mapping key met so far, classified: the same few dozen keys recur in every request and response
_key_kinds: dict[str, int] = {}


def _key_kind(name: str) -> int:
    """Whether a mapping key's value is a credential, content, or walked into (in :func:`redact`'s order)."""
    return _AUTH if auth_key(name) else _CONTENT if name.lower() in CONTENT_KEYS else _OTHER


def exposes(value: Any, secrets: list[str]) -> bool:
    """Whether a secret value appears in ``value`` where :func:`redact` would have removed it (content, the
    values under :data:`CONTENT_KEYS`, may hold one: it is what a model wrote)."""
    if isinstance(value, str):
        return any(secret in value for secret in secrets)
    if isinstance(value, dict):
        return any(exposes(v, secrets) for k, v in value.items() if str(k).lower() not in CONTENT_KEYS)
    if isinstance(value, list | tuple):
        return any(exposes(v, secrets) for v in value)
    return False
