"""Sampling parameters: checked before any call, keyed without disturbing existing keys, counted in estimates."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from stability.calls import cache_key
from stability.engine import IterateConfig, prepare
from stability.errors import StabilityError
from stability.experiment.estimate import cell_estimate
from stability.experiment.spec import ExperimentSpec, cell_key, expand
from stability.models.base import Model
from stability.models.sampling import check_sampling, is_openai_reasoning_model
from stability.vocabulary import GenerateConfig, Message, Output
from tests.conftest import write


class Named(Model):
    async def generate(self, messages: list[Message], config: GenerateConfig) -> Output:
        raise NotImplementedError


HI = [Message(role="user", content="hi")]


def test_cache_keys_of_configs_without_the_new_fields_are_unchanged() -> None:
    """Keys computed before reasoning_effort, thinking_budget and answer_format existed still match."""
    model = Named("openai/gpt-4o")
    assert cache_key(model, HI, GenerateConfig()) == \
        "sha256:bddfc8fd6272c2dd8082482d4d727e6a8e0e43a115bc363ff8b6f543b45fa594"
    assert cache_key(model, HI, GenerateConfig(temperature=0.5, max_tokens=50, seed=3, json_schema={"type": "object"},
                                               logprobs=5)) == \
        "sha256:d74cffd50002260640548ed2d04b03d42cf245439505af89c99035194044427a"
    assert cell_key(IterateConfig(model="openai/gpt-4o", constitution="a.md", seed=2, temperature=0.5)) == \
        "ca68d5d1cb1accf6"


def test_each_new_parameter_changes_the_key() -> None:
    model = Named("openai/o3")
    keys = {cache_key(model, HI, GenerateConfig(**change)) for change in (
        {}, {"reasoning_effort": "low"}, {"reasoning_effort": "high"}, {"thinking_budget": 1024},
        {"answer_format": "text"}, {"answer_format": "structured"})}
    assert len(keys) == 6


def test_new_fields_are_dumped_only_when_set_and_read_back() -> None:
    config = IterateConfig(model="openai/o3", reasoning_effort="high", answer_format="text")
    dumped = config.model_dump()
    assert dumped["reasoning_effort"] == "high" and dumped["answer_format"] == "text"
    assert "thinking_budget" not in dumped and "answer_format" not in IterateConfig(model="m").model_dump()
    assert IterateConfig(**dumped) == config
    assert config.generate().reasoning_effort == "high" and config.generate().answer_format == "text"


@pytest.mark.parametrize("model_id", ["o1", "o1-mini", "o3-mini", "o4-mini", "o3-pro", "gpt-5", "gpt-5-mini",
                                      "gpt-5.1", "gpt-5-nano", "openai/o3-mini", "azure/gpt-5"])
def test_reasoning_models_are_recognised(model_id: str) -> None:
    assert is_openai_reasoning_model(model_id)


@pytest.mark.parametrize("model_id", ["gpt-4o", "gpt-4.1-mini", "gpt-5-chat-latest", "omni-moderation", "o", "gpt-50",
                                      "llama-3-o1"])
def test_chat_models_are_not_reasoning_models(model_id: str) -> None:
    assert not is_openai_reasoning_model(model_id)


@pytest.mark.parametrize(("name", "config", "error"), [
    ("openai/o3-mini", {"temperature": 0.5}, "accepts only the default temperature (1), not 0.5"),
    ("litellm/openai/gpt-5", {"temperature": 0.0}, "accepts only the default temperature"),
    ("openai/o3-mini", {"top_p": 0.9}, "does not accept top_p"),
    ("anthropic/claude-x", {"reasoning_effort": "low"}, "reasoning_effort applies to OpenAI-format models"),
    ("local/gemma-3-270m", {"reasoning_effort": "low"}, "reasoning_effort applies"),
    ("openai/o3", {"thinking_budget": 2048, "max_tokens": 4096}, "thinking_budget applies to Anthropic"),
    ("anthropic/claude-x", {"thinking_budget": 512}, "at least 1024 tokens"),
    ("anthropic/claude-x", {"thinking_budget": 1024, "max_tokens": 1024}, "must be below max_tokens (1024)"),
    ("anthropic/claude-x", {"thinking_budget": 1024, "max_tokens": 2048, "temperature": 0.2}, "default temperature"),
    ("anthropic/claude-x", {"thinking_budget": 1024, "max_tokens": 2048, "top_p": 0.5}, "between 0.95 and 1"),
])
def test_refused_parameters_are_one_line_errors(name: str, config: dict[str, object], error: str) -> None:
    with pytest.raises(StabilityError) as caught:
        check_sampling(name, GenerateConfig(**config))  # type: ignore[arg-type]
    assert error in str(caught.value) and "\n" not in str(caught.value) and str(caught.value).startswith(name)


@pytest.mark.parametrize(("name", "config"), [
    ("openai/o3-mini", {"reasoning_effort": "high"}),
    ("openai/gpt-4o", {"temperature": 0.2, "top_p": 0.9}),
    ("openai/my-vllm-model", {"reasoning_effort": "low"}),  # OpenAI-compatible servers may take it
    ("anthropic/claude-x", {"thinking_budget": 1024, "max_tokens": 2048, "top_p": 0.95}),
    ("litellm/anthropic/claude-x", {"thinking_budget": 4096, "max_tokens": 8192}),
    ("anthropic/claude-x", {"temperature": 0.2}),
])
def test_accepted_parameters_pass(name: str, config: dict[str, object]) -> None:
    check_sampling(name, GenerateConfig(**config))  # type: ignore[arg-type]


def test_prepare_checks_every_role_model(tmp_path: Path) -> None:
    start = write(tmp_path / "c.md", "- a\n")
    with pytest.raises(StabilityError, match="openai/o1: a reasoning model"):
        prepare(IterateConfig(model="scripted/decline", constitution=str(start), temperature=0.7,
                              roles={"editor": "o1"}))


def test_thinking_and_reasoning_count_toward_estimated_output(tmp_path: Path) -> None:
    start = str(write(tmp_path / "c.md", "- Be honest.\n- Be kind.\n"))
    plain = cell_estimate(IterateConfig(model="anthropic/claude-x", constitution=start, max_tokens=8000))
    thinking = cell_estimate(IterateConfig(model="anthropic/claude-x", constitution=start, max_tokens=8000,
                                           thinking_budget=4000))
    calls = plain[0]
    assert thinking[2] - plain[2] == calls * 4000 and thinking[1] == plain[1]
    low = cell_estimate(IterateConfig(model="openai/o3-mini", constitution=start, max_tokens=8000,
                                      reasoning_effort="low"))
    high = cell_estimate(IterateConfig(model="openai/o3-mini", constitution=start, max_tokens=8000,
                                       reasoning_effort="high"))
    assert plain[2] < low[2] < high[2] <= calls * 8000


def test_specs_vary_the_new_parameters(tmp_path: Path) -> None:
    start = str(write(tmp_path / "c.md", "- a\n"))
    spec = ExperimentSpec(name="x", models=["anthropic/claude-x"], protocols=["fresh-instance"],  # type: ignore[list-item]
                          constitutions=[start], parameters={"thinking_budget": [1024, 2048], "max_tokens": [4096],
                                                             "answer_format": ["text"]})
    cells = expand(spec)
    assert [(c.thinking_budget, c.answer_format) for c in cells] == [(1024, "text"), (2048, "text")]


def test_cli_refuses_a_temperature_for_a_reasoning_model(tmp_path: Path, db: Path, capsys: pytest.CaptureFixture[str],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from stability.cli.app import main

    start = write(tmp_path / "c.md", "- a\n")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-never-used-0000")
    for args, named in ((["-m", "openai/o3-mini", "--temperature", "0.5"], "temperature"),
                        (["-m", "anthropic/claude-x", "--thinking-budget", "100"], "thinking_budget"),
                        (["-m", "openai/o3-mini", "--reasoning-effort", "extreme"], "--reasoning-effort"),
                        (["-m", "openai/o3-mini", "--answer-format", "json"], "--answer-format")):
        monkeypatch.setattr(sys, "argv", ["stability", "iterate", *args, "-c", str(start), "--db", str(db)])
        with pytest.raises(SystemExit) as exit_:
            main()
        err = capsys.readouterr().err.strip()
        assert exit_.value.code == 2 and len(err.splitlines()) == 1 and err.startswith("error: "), err
        assert named in err and "Traceback" not in err
        assert not db.exists() and not list(tmp_path.glob("*.duckdb*"))


def test_dry_run_warns_when_max_tokens_is_below_the_expected_answer(tmp_path: Path) -> None:
    from stability.experiment.estimate import estimate
    from stability.prices import PriceTable

    small = str(write(tmp_path / "small.md", "- Be honest.\n"))
    large = str(write(tmp_path / "large.md", "".join(f"- Care {i}: {'be careful ' * 20}\n" for i in range(20))))
    cells = [IterateConfig(model="anthropic/claude-x", constitution=c, max_tokens=m) for c in (small, large)
             for m in (100, 8000)]
    [warning] = estimate(cells, PriceTable()).warnings
    assert warning.startswith("anthropic/claude-x: max_tokens 100 is below the ~") and "cut off" in warning
    thinking = [IterateConfig(model="anthropic/claude-x", constitution=small, max_tokens=2000, thinking_budget=1990)]
    assert len(estimate(thinking, PriceTable()).warnings) == 1  # the thinking leaves no room for the answer
    assert estimate(cells[1::2], PriceTable()).warnings == []
