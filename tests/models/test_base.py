from __future__ import annotations

import asyncio

import pytest

from stability.errors import ModelNotFound, NetworkRefused, StabilityError
from stability.models.base import (
    GenerateConfig,
    Message,
    canonical_name,
    get_model,
    parse_retry_after,
    provider_status,
    transient_from_sdk_error,
)


def test_bare_names_map_to_providers() -> None:
    assert canonical_name("claude-sonnet-4") == "anthropic/claude-sonnet-4"
    assert canonical_name("gpt-4o") == "openai/gpt-4o"
    assert canonical_name("o3-mini") == "openai/o3-mini"
    assert canonical_name("o1") == "openai/o1"
    assert canonical_name("litellm/mistral/small") == "litellm/mistral/small"


def test_unknown_names_get_did_you_mean() -> None:
    with pytest.raises(ModelNotFound, match="did you mean 'openai/'"):
        get_model("opnai/gpt-4o")
    with pytest.raises(ModelNotFound, match="did you mean 'local/gemma-3-270m'"):
        get_model("local/gemma-270m")
    with pytest.raises(ModelNotFound, match="expected PROVIDER/NAME"):
        get_model("mystery")


def test_network_providers_refuse_under_pytest_without_opt_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-whatever-123")
    model = get_model("openai/gpt-4o")
    with pytest.raises(NetworkRefused, match="refused under pytest"):
        asyncio.run(model.generate([Message(role="user", content="hi")], GenerateConfig()))


def test_missing_key_is_a_clear_error() -> None:
    with pytest.raises(StabilityError, match="set OPENAI_API_KEY"):
        get_model("gpt-4o")
    with pytest.raises(StabilityError, match="set ANTHROPIC_API_KEY"):
        get_model("claude-sonnet-4")


def test_provider_status_lists_every_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    statuses = {s.prefix: s for s in provider_status()}
    assert set(statuses) == {"anthropic", "openai", "litellm", "local", "hf", "scripted"}
    assert not statuses["openai"].usable and "OPENAI_API_KEY" in statuses["openai"].reason
    assert statuses["scripted"].usable
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:1/v1")
    assert {s.prefix: s for s in provider_status()}["openai"].usable


def test_retry_after_parsing() -> None:
    assert parse_retry_after("2.5") == 2.5
    assert parse_retry_after(None) is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert parse_retry_after("soon") is None


def test_sdk_error_classification() -> None:
    class Response:
        headers = {"retry-after": "4"}

    class StatusError(Exception):
        status_code = 429
        response = Response()

    class BadRequest(Exception):
        status_code = 400

    class APITimeoutError(Exception):
        pass

    transient = transient_from_sdk_error(StatusError())
    assert transient is not None and transient.status == 429 and transient.retry_after == 4
    assert transient_from_sdk_error(BadRequest()) is None
    assert transient_from_sdk_error(APITimeoutError()) is not None
    assert transient_from_sdk_error(ValueError()) is None
