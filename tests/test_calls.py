from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from stability.calls import CallPath, Flights, RetryPolicy, cache_key
from stability.models.scripted import ScriptedModel, flaky
from stability.store import Store
from stability.vocabulary import CallFailed, GenerateConfig, Message, TransientError
from tests.conftest import ROOT

MESSAGES = [Message(role="user", content="hello")]
CONFIG = GenerateConfig(seed=1)
NO_WAIT = RetryPolicy(initial=0, jitter=0, max_attempts=3)


def call(path: CallPath, step: int = 1) -> object:
    return asyncio.run(path(MESSAGES, CONFIG, step=step, purpose="revise"))


def test_transient_errors_are_retried_and_recorded(db: Path) -> None:
    model = ScriptedModel(fn=flaky("ok", failures=2, status=503))
    with Store.open(db) as store:
        path = CallPath(store, model, "r-1", policy=NO_WAIT)
        record = call(path)
        stored = store.calls("r-1")
    assert len(model.calls) == 3
    assert len(stored) == 1 and stored[0].attempts == 3
    assert [r["status"] for r in stored[0].retries] == [503, 503]
    assert stored[0].text == "ok" == record.text  # type: ignore[attr-defined]


def test_retry_after_is_honoured(db: Path) -> None:
    model = ScriptedModel(fn=flaky("ok", failures=1, status=429, retry_after=0.2))
    with Store.open(db) as store:
        call(CallPath(store, model, "r-1", policy=NO_WAIT))
        stored = store.calls("r-1")[0]
    assert stored.retries[0]["wait_s"] == pytest.approx(0.2)


def test_retries_are_bounded_and_the_failure_is_stored(db: Path) -> None:
    model = ScriptedModel(fn=flaky("ok", failures=10, status=500))
    with Store.open(db) as store:
        with pytest.raises(CallFailed, match="scripted 500"):
            call(CallPath(store, model, "r-1", policy=NO_WAIT))
        stored = store.calls("r-1")
    assert len(model.calls) == 3
    assert stored[0].status == "error" and stored[0].attempts == 3


def test_non_transient_errors_are_not_retried(db: Path) -> None:
    model = ScriptedModel(outputs=[ValueError("bad request")])
    with Store.open(db) as store, pytest.raises(CallFailed):
        call(CallPath(store, model, "r-1", policy=NO_WAIT))
    assert len(model.calls) == 1


def test_completed_call_is_persisted_before_it_is_returned(db: Path) -> None:
    """The process is killed (SIGKILL, nothing closed or flushed) the moment the call returns: the next open of
    the store has the call (from the journal, or DuckDB), and its answer."""
    script = f"""
import asyncio, os, signal
from stability.calls import CallPath, RetryPolicy
from stability.models.base import GenerateConfig, Message
from stability.models.scripted import ScriptedModel
from stability.store import Store

store = Store.open({str(db)!r})
path = CallPath(store, ScriptedModel(outputs=["a"]), "r-1", policy=RetryPolicy(initial=0, jitter=0, max_attempts=1))

async def go() -> None:
    record = await path([Message(role="user", content="hello")], GenerateConfig(seed=1), step=1, purpose="revise")
    assert record.text == "a"
    os.kill(os.getpid(), signal.SIGKILL)

asyncio.run(go())
"""
    killed = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    with Store.open(db, read_only=True) as store:
        stored = store.calls("r-1")
    assert [(c.status, c.text) for c in stored] == [("ok", "a")]


def test_replay_within_a_run_and_cache_across_runs(db: Path) -> None:
    model = ScriptedModel(fn=lambda m: "answer")
    with Store.open(db) as store:
        first = CallPath(store, model, "r-1", policy=NO_WAIT)
        call(first)
        call(first)  # the same request again is a new sample, not a cache hit
        assert len(model.calls) == 2
        replay = CallPath(store, model, "r-1", policy=NO_WAIT)
        call(replay)
        call(replay)
        assert len(model.calls) == 2 and len(store.calls("r-1")) == 2  # resume re-sends and re-stores nothing
        other = CallPath(store, model, "r-2", policy=NO_WAIT)
        hit = call(other)
        assert len(model.calls) == 2
        assert hit.cached_from is not None and hit.cost_usd == 0.0  # type: ignore[attr-defined]
        fresh = CallPath(store, model, "r-3", policy=NO_WAIT, use_cache=False)
        call(fresh)
        assert len(model.calls) == 3


def test_cache_key_covers_model_messages_and_config() -> None:
    model = ScriptedModel(outputs=[])
    base = cache_key(model, MESSAGES, CONFIG)
    assert base == cache_key(model, list(MESSAGES), GenerateConfig(seed=1))
    assert base != cache_key(model, MESSAGES, GenerateConfig(seed=2))
    assert base != cache_key(model, [Message(role="user", content="hello!")], CONFIG)
    assert base != cache_key(ScriptedModel(outputs=[], name="scripted/other"), MESSAGES, CONFIG)


def test_an_answer_holding_a_secret_value_is_stored_as_the_model_wrote_it(db: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    # secrets are redacted where they are secrets (headers, URLs, configs, errors: tests/hostile/test_secrets.py),
    # never inside an answer: the stored revision is what the model wrote
    monkeypatch.setenv("SOME_API_KEY", "sk-very-secret-1234")
    model = ScriptedModel(outputs=["the key is sk-very-secret-1234"])
    with Store.open(db) as store:
        call(CallPath(store, model, "r-1", policy=NO_WAIT))
        [stored] = store.calls("r-1")
    assert stored.text == "the key is sk-very-secret-1234"
    assert stored.response is not None and stored.response["text"] == "the key is sk-very-secret-1234"


def test_policy_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STABILITY_RETRY_ATTEMPTS", "2")
    assert RetryPolicy.from_env().max_attempts == 2
    assert RetryPolicy.from_env().initial == 0  # conftest sets back-off to zero


def test_transient_error_type() -> None:
    err = TransientError("x", status=429, retry_after=3)
    assert err.retry_after == 3 and err.status == 429


def test_identical_requests_in_flight_are_sent_once(db: Path) -> None:
    model = ScriptedModel(fn=lambda m: "answer")
    flights = Flights()
    with Store.open(db) as store:
        paths = [CallPath(store, model, f"r-{n}", policy=NO_WAIT, flights=flights) for n in range(3)]
        uncached = CallPath(store, model, "r-x", policy=NO_WAIT, use_cache=False, flights=flights)

        async def main() -> list[object]:
            return list(await asyncio.gather(*(p(MESSAGES, CONFIG, step=1, purpose="revise")
                                               for p in [*paths, uncached])))

        records = asyncio.run(main())
    assert len(model.calls) == 2  # the three cached runs share one request; use_cache=False sends its own
    sent = [r for r in records[:3] if r.cached_from is None]  # type: ignore[attr-defined]
    assert len(sent) == 1
    assert {r.cached_from for r in records[:3] if r is not sent[0]} == {sent[0].id}  # type: ignore[attr-defined]
    assert not flights.sending


def test_a_failed_flight_lets_the_waiter_send_its_own(db: Path) -> None:
    model = ScriptedModel(outputs=[ValueError("bad request"), "answer"])
    flights = Flights()
    with Store.open(db) as store:
        first, second = (CallPath(store, model, f"r-{n}", policy=NO_WAIT, flights=flights) for n in range(2))

        async def main() -> list[object]:
            return list(await asyncio.gather(first(MESSAGES, CONFIG, step=1, purpose="revise"),
                                             second(MESSAGES, CONFIG, step=1, purpose="revise"),
                                             return_exceptions=True))

        failed, answered = asyncio.run(main())
    assert isinstance(failed, CallFailed)
    assert answered.text == "answer" and answered.cached_from is None  # type: ignore[attr-defined]
    assert len(model.calls) == 2


def test_a_stored_call_row_is_its_record_dump(db: Path) -> None:
    """``Store.insert_call`` queues the record's fields as they are (``__dict__``, not ``model_dump``: issue 30),
    which holds while a call record has no nested model and no serialiser: the call read back equals the record."""
    from stability.prices import PriceTable
    from stability.records import CallRecord

    async def ask(store: Store) -> CallRecord:
        calls = CallPath(store, ScriptedModel("scripted/decline"), "r1", prices=PriceTable())
        return await calls([Message(role="user", content="hi")], GenerateConfig(seed=1), step=1, purpose="edit")

    with Store.open(db) as store:
        record = asyncio.run(ask(store))
        assert record.__dict__ == record.model_dump()
        [stored] = store.calls("r1")
    assert stored == record
    assert stored.cost_usd == 0.0  # priced through the table's glob ("scripted/*"), found once per model
