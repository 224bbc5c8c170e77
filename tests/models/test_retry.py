"""Each SDK provider's retry classification, on its SDK's real exception types (the wire-level faults that raise
them are in tests/testing/test_wire_server.py)."""

from __future__ import annotations

import json
from types import ModuleType

import anthropic
import httpx
import openai
import pytest

from stability.models.base import Model
from stability.models.registry import get_model
from stability.models.retry import backoff, parse_retry_after
from stability.vocabulary import TransientError

REQUEST = httpx.Request("POST", "http://127.0.0.1:9/v1/chat/completions")


def response(status: int, retry_after: str | None = None) -> httpx.Response:
    headers = {"retry-after": retry_after} if retry_after else {}
    return httpx.Response(status, headers=headers, request=REQUEST, json={"error": {"message": "x"}})


@pytest.fixture(scope="module")
def litellm() -> ModuleType:
    """litellm, imported as the provider imports it (with no attempt to download a price map)."""
    from stability.models.litellm import _litellm

    module: ModuleType = _litellm()
    return module


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-openai-key-000000")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-key-0000000")


def classify(name: str, err: Exception) -> TransientError | None:
    model: Model = get_model(name)
    return model.transient(err)


class ConnectionTimeoutOverloaded(Exception):
    """Not an SDK's error: its name must not make it transient (classification is by type, not by name)."""


def test_retry_after_parsing() -> None:
    assert parse_retry_after("2.5") == 2.5
    assert parse_retry_after(None) is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert parse_retry_after("soon") is None


@pytest.mark.parametrize(("name", "sdk"), [("openai/m", openai), ("anthropic/m", anthropic)])
def test_stainless_sdks_classify_by_type_and_status(keys: None, name: str, sdk: object) -> None:
    rate = classify(name, sdk.RateLimitError("slow down", response=response(429, "4"), body=None))  # type: ignore[attr-defined]
    assert rate is not None and rate.status == 429 and rate.retry_after == 4
    server = classify(name, sdk.InternalServerError("boom", response=response(502), body=None))  # type: ignore[attr-defined]
    assert server is not None and server.status == 502 and server.retry_after is None
    assert classify(name, sdk.APIStatusError("conflict", response=response(409), body=None)) is not None  # type: ignore[attr-defined]
    for permanent in (sdk.BadRequestError("bad", response=response(400), body=None),  # type: ignore[attr-defined]
                      sdk.AuthenticationError("key", response=response(401), body=None),  # type: ignore[attr-defined]
                      sdk.NotFoundError("no model", response=response(404), body=None)):  # type: ignore[attr-defined]
        assert classify(name, permanent) is None
    assert classify(name, sdk.APITimeoutError(request=REQUEST)) is not None  # type: ignore[attr-defined]
    assert classify(name, sdk.APIConnectionError(request=REQUEST)) is not None  # type: ignore[attr-defined]
    assert classify(name, json.JSONDecodeError("Unterminated string", '{"id": "x', 9)) is not None
    assert classify(name, httpx.RemoteProtocolError("peer closed connection", request=REQUEST)) is not None
    assert classify(name, ConnectionTimeoutOverloaded()) is None
    assert classify(name, ValueError("not JSON")) is None


def test_anthropic_overloaded_is_transient(keys: None) -> None:
    overloaded = classify("anthropic/m", anthropic.APIStatusError("overloaded", response=response(529, "1"),
                                                                  body=None))
    assert overloaded is not None and overloaded.status == 529 and overloaded.retry_after == 1


def test_litellm_classifies_its_openai_derived_errors(litellm: ModuleType) -> None:
    args = {"llm_provider": "openai", "model": "m"}
    rate = classify("litellm/openai/m", litellm.RateLimitError("slow down", **args))
    assert rate is not None and rate.status == 429
    assert classify("litellm/openai/m", litellm.ServiceUnavailableError("down", **args)) is not None
    assert classify("litellm/openai/m", litellm.InternalServerError("boom", **args)) is not None
    assert classify("litellm/openai/m", litellm.Timeout("slow", **args)) is not None
    assert classify("litellm/openai/m", litellm.APIConnectionError("reset", **args)) is not None
    assert classify("litellm/openai/m", litellm.BadRequestError("bad", **args)) is None
    assert classify("litellm/openai/m", litellm.AuthenticationError("key", **args)) is None
    assert classify("litellm/openai/m", ConnectionTimeoutOverloaded()) is None


def test_backoff_doubles_with_bounded_jitter_and_a_cap() -> None:
    assert backoff(1, 0, 60, 0) == 0.0 and backoff(9, 0, 60, 0) == 0.0  # tests: no waiting at all
    assert [backoff(n, 1.0, 60.0, 0.0) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 8.0]
    assert backoff(10, 1.0, 60.0, 0.0) == 60.0 and backoff(10_000, 1.0, 60.0, 1.0) == 60.0  # capped, no overflow
    jittered = [backoff(2, 1.0, 60.0, 0.5) for _ in range(200)]
    assert all(2.0 <= d <= 2.5 for d in jittered) and len(set(jittered)) > 100
