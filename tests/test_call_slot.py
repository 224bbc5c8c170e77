"""A call holds its provider slot while it is sent, not while its record is committed; it is still returned only
once committed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from stability.calls import CallPath, RetryPolicy
from stability.models.base import Model
from stability.models.scripted import ScriptedModel
from stability.store import Store
from stability.vocabulary import CallFailed, GenerateConfig, Message

MESSAGES = [Message(role="user", content="hello")]


def test_the_slot_is_free_before_the_commit_and_the_answer_waits_for_it(db: Path) -> None:
    events: list[str] = []

    @asynccontextmanager
    async def limiter(model: Model) -> AsyncIterator[None]:
        events.append("slot taken")
        yield
        events.append("slot freed")

    async def main(store: Store) -> Any:
        commit = asyncio.Event()
        real_committed = store.committed

        async def committed() -> None:
            events.append("commit awaited")
            await commit.wait()
            await real_committed()
            events.append("committed")

        store.committed = committed  # type: ignore[method-assign]
        path = CallPath(store, ScriptedModel(fn=lambda messages: "ok"), "r-1", limiter=limiter,
                        policy=RetryPolicy(initial=0, jitter=0))
        asking = asyncio.ensure_future(path(MESSAGES, GenerateConfig(seed=1), step=1, purpose="revise"))
        while "commit awaited" not in events:
            await asyncio.sleep(0)
        assert events == ["slot taken", "slot freed", "commit awaited"]  # the slot is free, the commit pending
        await asyncio.sleep(0.01)
        assert not asking.done()  # nothing is returned before it is committed
        commit.set()
        record = await asking
        assert events[-1] == "committed"
        return record

    with Store.open(db) as store:
        record = asyncio.run(main(store))
        [stored] = store.calls("r-1")
    assert record.text == stored.text == "ok"


def test_a_failed_call_is_committed_before_it_is_raised(db: Path) -> None:
    def refuse(messages: list[dict[str, Any]]) -> str:
        raise ValueError("bad request")

    with Store.open(db) as store:
        path = CallPath(store, ScriptedModel(fn=refuse), "r-1", policy=RetryPolicy(initial=0, jitter=0))
        with pytest.raises(CallFailed) as failed:
            asyncio.run(path(MESSAGES, GenerateConfig(seed=1), step=1, purpose="revise"))
        [stored] = store.calls("r-1")
    assert stored.status == "error" and "bad request" in (stored.error or "")
    assert failed.value.call.id == stored.id
