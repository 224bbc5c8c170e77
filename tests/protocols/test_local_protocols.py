"""Every protocol on the real local models (gemma-3-270m, a base model, and SmolLM2-135M-Instruct, a chat model
with structured output), briefly. Slow-marked; CI runs them."""

from __future__ import annotations

from pathlib import Path

import pytest

from stability.engine import IterateConfig, iterate
from stability.store import Store
from tests.conftest import ROOT

MINIMAL = str(ROOT / "constitutions" / "consistent" / "minimal.md")
POOL = str(ROOT / "constitutions" / "consistent" / "minimal.alternatives.yaml")

CASES = {
    "fresh-instance": ({"max_steps": 2}, 2),
    "in-context-iteration": ({"max_steps": 2}, 2),
    "free-form-edit": ({}, 1),
    "blank-slate": ({"size": 3, "max_parse_failures": 1}, 1),
    "multi-agent-discussion": ({"max_steps": 1, "rounds": 1, "agents": [{"name": "ann"}, {"name": "ben"}],
                                "editor": "ann"}, 2),
    "rate-alternatives": ({"alternatives": POOL, "trials": 1}, 1),
}


@pytest.mark.slow
@pytest.mark.parametrize("model", ["local/gemma-3-270m", "local/smollm2-135m-instruct"])
@pytest.mark.parametrize("protocol", list(CASES))
def test_protocol_on_the_local_model(protocol: str, model: str, db: Path) -> None:
    options, min_calls = CASES[protocol]
    chat = "smollm2" in model  # the chat model: fewer tokens (CI time), structured answers where a protocol asks
    config = IterateConfig(protocol=protocol, model=model, seed=2, temperature=0.7, max_tokens=96 if chat else 160,
                           constitution=None if protocol == "blank-slate" else MINIMAL, options=options)
    result = iterate(config, db)
    assert result.run.status == "done", result.run.error
    with Store.open(db) as store:
        calls = store.calls(result.run.id)
        ratings = store.ratings(result.run.id)
    assert len(calls) >= min_calls
    assert all(c.status == "ok" and c.output_tokens > 0 for c in calls)
    assert len(result.revisions) >= 2
    if protocol == "rate-alternatives":
        assert len(ratings) == 8  # the pool's 7 alternatives and the current principle (include_current)
        assert sum(r.relation == "current" for r in ratings) == 1
        # gemma exposes log-probabilities: where a rating was written, its distribution is stored.
        scored = [r for r in ratings if r.rating is not None]
        assert all(r.rating_probs is None or abs(sum(r.rating_probs.values()) - 1) < 1e-6 for r in scored)
    if chat:  # every call that asked for a schema was sent as llama.cpp's json_object grammar
        assert all(c.request["response_format"]["type"] == "json_object" for c in calls
                   if "response_format" in c.request)
