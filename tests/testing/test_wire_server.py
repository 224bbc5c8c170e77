"""The wire server's faults, through the real SDKs: each is a retried TransientError or a parse failure."""

from __future__ import annotations

import asyncio
import hashlib
import json

import pytest

from stability.models.registry import get_model
from stability.testing.wire_server import FAULT_KINDS, FaultMix, WireServer
from stability.vocabulary import GenerateConfig, Message, TransientError

HELLO = [Message(role="user", content="hi")]


async def _generate_each(name: str, wire: WireServer, faults: list[int | str | None],
                         monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Each fault in turn, then a clean request. Only the ``timeout`` fault is met by a client with a short timeout;
    every other request is given a minute, so a loaded machine answering slowly cannot turn it into a timeout."""
    monkeypatch.setenv("STABILITY_HTTP_TIMEOUT", "60")
    patient = get_model(name)
    impatient = get_model(name)
    outcomes: list[object] = []
    for fault in faults:
        model = impatient if fault == "timeout" else patient
        if fault == "timeout":  # the client reads the timeout when it first connects
            monkeypatch.setenv("STABILITY_HTTP_TIMEOUT", "1")
        if fault is not None:  # the server holds the timeout fault for 2 s: twice the client's 1 s
            wire.fail_next(fault, retry_after=0.01, hold=2)
        try:
            outcomes.append((await model.generate(HELLO, GenerateConfig())).text)
        except Exception as err:  # noqa: BLE001 - the test inspects what was raised
            outcomes.append(err)
        monkeypatch.setenv("STABILITY_HTTP_TIMEOUT", "60")
    return outcomes


@pytest.mark.parametrize("name", ["openai/m", "anthropic/m", "litellm/openai/m"])
def test_every_fault_is_transient_or_an_empty_answer(wire: WireServer, name: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LITELLM_API_BASE", wire.url + "/v1")
    wire.reply = lambda messages: "hello"
    faults: list[int | str] = [429, 500, 529, "reset", "timeout", "truncate", "cut_json", "no_content"]
    outcomes = asyncio.run(_generate_each(name, wire, [*faults, None], monkeypatch))
    by_fault = dict(zip([str(f) for f in faults] + ["none"], outcomes, strict=True))
    for fault in ("429", "500", "529", "reset", "timeout", "truncate", "cut_json"):
        assert isinstance(by_fault[fault], TransientError), (fault, by_fault[fault])
    assert by_fault["429"].retry_after == pytest.approx(0.01)  # type: ignore[union-attr]
    assert by_fault["529"].status == 529  # type: ignore[union-attr]
    assert by_fault["no_content"] == ""  # a well-formed answer with no text: the protocol's parse failure
    assert by_fault["none"] == "hello"  # the connection pool survives every fault
    assert wire.count == len(faults) + 1
    assert sum(wire.injected.values()) == len(faults) and sum(wire.answered.values()) == 1


def test_fault_mix_is_seeded_per_request_not_per_arrival_order() -> None:
    bodies = [hashlib.sha256(json.dumps({"n": i}).encode()).hexdigest() for i in range(400)]

    def draws(order: list[str], seed: int) -> dict[str, str | None]:
        mix = FaultMix(rate=0.2, seed=seed, kinds=FAULT_KINDS)
        out = {}
        for key in order:
            fault = mix.draw(key)
            out[key] = fault.name if fault else None
        return out

    first = draws(bodies, seed=1)
    assert draws(list(reversed(bodies)), seed=1) == first
    assert draws(bodies, seed=2) != first
    hit = sum(v is not None for v in first.values())
    assert 40 < hit < 120  # about 20% of 400
    assert {v for v in first.values() if v} == set(FAULT_KINDS)


def test_unknown_fault_is_refused() -> None:
    with WireServer() as server, pytest.raises(ValueError, match="unknown fault 'explode'"):
        server.fail_next("explode")
