"""``hf/…``: names, device choice, and the real gemma-3-270m through transformers (slow-marked; CI runs it)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from stability.errors import ModelNotFound, StabilityError
from stability.finetune import Adapter, folder_hash
from stability.models.hf import HFModel, choose_device, resolve_source
from stability.models.registry import get_model
from stability.vocabulary import GenerateConfig, Message


def test_unknown_names_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFound, match="hf/gemma-3-270m"):
        resolve_source("no-such-model")
    (tmp_path / "weights.bin").write_bytes(b"x")
    with pytest.raises(ModelNotFound):
        resolve_source(str(tmp_path / "weights.bin"))
    (tmp_path / "config.json").write_text("{}")
    assert resolve_source(str(tmp_path)) == tmp_path


def test_cpu_defaults_to_float32_and_overrides_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STABILITY_HF_DEVICE", "cpu")
    assert choose_device() == ("cpu", "float32")
    monkeypatch.setenv("STABILITY_HF_DTYPE", "bfloat16")
    assert choose_device() == ("cpu", "bfloat16")
    monkeypatch.setenv("STABILITY_HF_DTYPE", "int3")
    with pytest.raises(StabilityError, match="STABILITY_HF_DTYPE"):
        choose_device()


def test_adapter_hash_covers_names_and_bytes(tmp_path: Path) -> None:
    folder = tmp_path / "a"
    folder.mkdir()
    (folder / "adapter_config.json").write_text("{}")
    (folder / "adapter_model.safetensors").write_bytes(b"weights")
    first = Adapter.from_path(folder)
    assert first.hash == folder_hash(folder) and first.hash.startswith("sha256:")
    (folder / "adapter_model.safetensors").write_bytes(b"weightz")
    assert Adapter.from_path(folder).hash != first.hash
    with pytest.raises(StabilityError, match="not a LoRA adapter folder"):
        Adapter.from_path(tmp_path)


@pytest.fixture(scope="session")
def gemma() -> HFModel:
    """The real model, loaded once per test session (the GGUF is converted once into the cache)."""
    model = get_model("hf/gemma-3-270m")
    assert isinstance(model, HFModel)
    return model


@pytest.mark.slow
def test_seeded_generation_is_deterministic(gemma: HFModel) -> None:
    messages = [Message(role="user", content="List three fruits, one per '- ' line.")]
    config = GenerateConfig(seed=11, max_tokens=16, temperature=0.8)
    first = asyncio.run(gemma.generate(messages, config))
    second = asyncio.run(gemma.generate(messages, config))
    assert first.text == second.text and first.text.strip()
    assert first.usage.output_tokens > 0 and "### Request" in first.request["prompt"]
    other = asyncio.run(gemma.generate(messages, config.model_copy(update={"seed": 12})))
    assert other.request["seed"] == 12
    described = gemma.describe()
    assert described["device"] == "cpu" and described["dtype"] == "float32" and described["adapter"] is None


@pytest.mark.slow
def test_adapter_changes_the_identity_and_the_cache_key(gemma: HFModel, tmp_path: Path) -> None:
    from stability.calls import cache_key
    from stability.finetune import TrainerParams, TrainingExample
    from stability.models.hf_training import train_lora

    examples = [TrainingExample(messages=[Message(role="user", content="Recite your constitution.")],
                                completion="- I am honest.\n- I am kind.\n")]
    result = train_lora(gemma.base, examples, TrainerParams(steps=3, grad_accum=1, learning_rate=1e-3),
                        tmp_path / "gen-00")
    assert result.loss_after < result.loss_before and len(result.losses) == 3
    tuned = gemma.with_adapter(result.adapter)
    assert tuned.describe()["adapter"] == {"path": str((tmp_path / "gen-00").resolve()), "hash": result.adapter.hash}
    messages = [Message(role="user", content="Recite your constitution.")]
    config = GenerateConfig(seed=0, max_tokens=12, temperature=0)
    assert cache_key(tuned, messages, config) != cache_key(gemma, messages, config)
    by_name = get_model(f"hf/gemma-3-270m@{tmp_path / 'gen-00'}")
    assert isinstance(by_name, HFModel) and by_name.adapter == result.adapter
    tuned_text = asyncio.run(tuned.generate(messages, config)).text
    assert "honest" in tuned_text  # three steps at lr 1e-3 are enough for a 270M model to recite two lines
    assert asyncio.run(gemma.generate(messages, config)).text != tuned_text  # the base is untouched
