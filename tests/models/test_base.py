from __future__ import annotations

import asyncio

import pytest

from stability.errors import NetworkRefused, StabilityError
from stability.models.registry import get_model
from stability.vocabulary import GenerateConfig, Message


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
