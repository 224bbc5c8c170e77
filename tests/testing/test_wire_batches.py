"""The wire server's batch APIs through the real SDKs: results, injected faults, cancel, and a restart."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from stability.models.batch_api import BatchRequest, request_for
from stability.models.registry import get_model
from stability.testing.wire_server import WireServer
from stability.vocabulary import GenerateConfig, Message

HELLO = [Message(role="user", content="hello there")]
NAMES = ["openai/gpt-4o-mini", "anthropic/claude-haiku-4"]


def _requests(name: str, n: int) -> list[BatchRequest]:
    api = get_model(name).batch_api()
    assert api is not None
    config = GenerateConfig(max_tokens=50)
    return [request_for(HELLO, config, api.body(HELLO, config), f"c{i}") for i in range(n)]


async def _wait_ended(name: str, batch_id: str) -> str:
    api = get_model(name).batch_api()
    assert api is not None
    deadline = time.monotonic() + 120  # a loaded machine is slow, never wrong: wait for the state, not a count
    while time.monotonic() < deadline:
        status = await api.status(batch_id)
        if status.state != "live":
            return status.raw_status
        await asyncio.sleep(0.05)
    raise AssertionError("the batch never ended")


@pytest.mark.parametrize("name", NAMES)
def test_results_with_an_expired_request_and_a_partial_error(wire: WireServer, name: str) -> None:
    wire.reply = lambda messages: "NO CHANGE here"
    wire.batches.delay = 0.2
    requests = _requests(name, 4)
    wire.batches.expire_next(1)
    wire.batches.error_next(1, 500)

    async def go() -> None:
        api = get_model(name).batch_api()
        assert api is not None
        batch_id = await api.submit(requests, "sb-local-1")
        assert (await api.status(batch_id)).state == "live"
        await _wait_ended(name, batch_id)
        results = {r.custom_id: r for r in await api.results(batch_id, {r.custom_id: r for r in requests})}
        assert results["c0"].output is None and results["c0"].retry and "xpired" in (results["c0"].error or "")
        assert results["c1"].output is None and results["c1"].retry
        for cid in ("c2", "c3"):
            output = results[cid].output
            assert output is not None and output.text == "NO CHANGE here" and output.usage.output_tokens == 3

    asyncio.run(go())
    assert wire.batches.submitted == {f"c{i}": 1 for i in range(4)}
    assert wire.count == 0  # nothing went to the direct endpoints


def test_a_failed_batch_and_a_rejected_request(wire: WireServer) -> None:
    wire.batches.fail_next_batch()
    name = "openai/gpt-4o-mini"
    requests = _requests(name, 2)

    async def go() -> None:
        api = get_model(name).batch_api()
        assert api is not None
        batch_id = await api.submit(requests, "sb-f")
        assert await _wait_ended(name, batch_id) == "failed"
        assert all(r.retry and r.output is None for r in await api.results(batch_id, {r.custom_id: r for r in
                                                                                      requests}))
        # a reasoning model's max_tokens is refused by the rules a direct call meets: an error not worth retrying
        bad = BatchRequest(custom_id="bad", body={"model": "o3-mini", "max_tokens": 5, "messages": []})
        batch_id = await api.submit([bad], "sb-g")
        await _wait_ended(name, batch_id)
        [result] = await api.results(batch_id, {"bad": bad})
        assert not result.retry and "max_tokens" in (result.error or "")

    asyncio.run(go())


@pytest.mark.parametrize("name", NAMES)
def test_cancel_and_find_by_local_key(wire: WireServer, name: str) -> None:
    wire.batches.delay = 30
    requests = _requests(name, 3)

    async def go() -> None:
        api = get_model(name).batch_api()
        assert api is not None
        since = datetime.now(UTC)
        time.sleep(0.01)
        batch_id = await api.submit(requests, "sb-mine")
        assert await api.find("sb-mine", since, 3, set()) == batch_id
        # OpenAI finds it by its metadata; Anthropic (no metadata) by time and size, never a batch already claimed
        expected = batch_id if name.startswith("openai") else None
        assert await api.find("sb-mine", since, 3, {batch_id}) == expected
        await api.cancel(batch_id)
        status = await api.status(batch_id)
        assert status.state != "live"
        assert all(r.retry for r in await api.results(batch_id, {r.custom_id: r for r in requests}))

    asyncio.run(go())


def test_a_restarted_server_loses_nothing(tmp_path: Path, allow_network: None,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    state = tmp_path / "batches.json"
    name = "anthropic/claude-haiku-4"
    with WireServer(reply=lambda m: "kept", batch_state=str(state), batch_delay=0.3) as first:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", first.url)
        monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
        requests = _requests(name, 2)
        api = get_model(name).batch_api()
        assert api is not None
        batch_id = asyncio.run(api.submit(requests, "sb-r"))
    with WireServer(reply=lambda m: "kept", batch_state=str(state), batch_delay=0.3) as second:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", second.url)
        assert asyncio.run(_wait_ended(name, batch_id)) == "ended"
        api = get_model(name).batch_api()
        assert api is not None
        results = asyncio.run(api.results(batch_id, {r.custom_id: r for r in requests}))
        assert [r.output.text if r.output else None for r in results] == ["kept", "kept"]
        assert second.batches.submitted == {"c0": 1, "c1": 1}
