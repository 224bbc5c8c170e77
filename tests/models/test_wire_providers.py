"""The real openai, anthropic and litellm SDK code paths against a local server on 127.0.0.1."""

from __future__ import annotations

import asyncio

import pytest

from stability.calls import CallPath, RetryPolicy
from stability.models.registry import get_model
from stability.store import Store
from stability.testing.wire_server import WireServer
from stability.vocabulary import CallFailed, GenerateConfig, Message

MESSAGES = [Message(role="system", content="Be brief."), Message(role="user", content="Say hi")]
NAMES = ["openai/test-model", "anthropic/test-model", "litellm/openai/test-model"]


@pytest.fixture
def litellm_base(wire: WireServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LITELLM_API_BASE", wire.url + "/v1")


@pytest.mark.parametrize("name", NAMES)
def test_generate_through_real_sdk(wire: WireServer, litellm_base: None, name: str) -> None:
    wire.reply = lambda messages: f"hi from {len(messages)} messages"
    output = asyncio.run(get_model(name).generate(MESSAGES, GenerateConfig(max_tokens=50, seed=3)))
    assert output.text == "hi from 2 messages"
    assert output.usage.output_tokens == 4
    assert output.request["max_tokens"] == 50
    assert output.response  # the raw body is kept
    assert wire.count == 1
    sent = wire.requests[0]
    assert sent["path"].endswith("/messages" if name.startswith("anthropic") else "/chat/completions")
    if name.startswith("anthropic"):
        assert sent["body"]["system"] == "Be brief."


@pytest.mark.parametrize("name", NAMES[:2])
def test_aclose_closes_the_loops_client(wire: WireServer, name: str) -> None:
    model = get_model(name)

    async def main() -> object:
        await model.generate(MESSAGES, GenerateConfig(max_tokens=5))
        client = model._client  # type: ignore[attr-defined]
        await model.aclose()
        return client

    client = asyncio.run(main())
    assert client.is_closed()  # type: ignore[attr-defined]
    assert model._client is None  # type: ignore[attr-defined]  # the next loop makes its own


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("status", [429, 500, 529])
def test_injected_faults_are_retried(wire: WireServer, litellm_base: None, db: object, name: str,
                                     status: int) -> None:
    wire.fail_next(status, retry_after=0.01, times=2)
    model = get_model(name)
    with Store.open(db) as store:  # type: ignore[arg-type]
        path = CallPath(store, model, "r-1", policy=RetryPolicy(initial=0, jitter=0, max_attempts=4))
        record = asyncio.run(path(MESSAGES, GenerateConfig(), step=1, purpose="revise"))
    assert record.text == "NO CHANGE"
    assert wire.count == 3
    assert record.attempts == 3
    assert [r["status"] for r in record.retries] == [status, status]
    assert all(r["wait_s"] >= 0.01 for r in record.retries)


def test_exhausted_retries_fail_with_stored_reason(wire: WireServer, db: object) -> None:
    wire.fail_next(500, times=5)
    with Store.open(db) as store:  # type: ignore[arg-type]
        path = CallPath(store, get_model("openai/m"), "r-1", policy=RetryPolicy(initial=0, jitter=0,
                                                                                max_attempts=2))
        with pytest.raises(CallFailed):
            asyncio.run(path(MESSAGES, GenerateConfig(), step=1, purpose="revise"))
        [stored] = store.calls("r-1")
    assert stored.status == "error" and "500" in (stored.error or "")
    assert wire.count == 2


def test_keys_are_sent_to_the_server_but_never_stored(wire: WireServer, db: object) -> None:
    with Store.open(db) as store:  # type: ignore[arg-type]
        for name in ("openai/m", "anthropic/m"):
            path = CallPath(store, get_model(name), "r-1", policy=RetryPolicy(initial=0, jitter=0))
            asyncio.run(path(MESSAGES, GenerateConfig(), step=1, purpose="revise"))
        dump = str(store.con.execute("SELECT * FROM calls").fetchall())
    headers = " ".join(str(h) for h in wire.headers)
    assert "sk-test-openai-key-000000" in headers and "sk-ant-test-key-0000000" in headers
    assert "sk-test-openai-key" not in dump and "sk-ant-test-key" not in dump
