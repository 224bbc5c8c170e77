"""Every run setting is declared once (:mod:`stability.vocabulary.settings`) and each consumer sees it: the engine's
config, the generate config (and so the cache key), the spec grid, the analysis factors, ``stability experiments``
and ``iterate``'s flags. A setting added to the declaration and missing from a consumer fails here."""

from __future__ import annotations

from typing import Any

import pytest
from typer.testing import CliRunner

from stability.analysis.experiments import cell_factors
from stability.analysis.factors import CONFIG_DEFAULTS, CONFIG_FACTORS
from stability.engine import IterateConfig
from stability.experiment.spec import SAMPLING_PARAMETERS, ExperimentSpec, expand
from stability.vocabulary import GenerateConfig, RunSettings
from stability.vocabulary.settings import declared, default_of, later_names, sampling_names

#: a value other than the default for every setting (a new setting must add one)
OTHER: dict[str, Any] = {"temperature": 0.3, "max_tokens": 77, "top_p": 0.5, "reasoning_effort": "low",
                         "thinking_budget": 2048, "answer_format": "text", "templates": "neutral", "seed": 9}
SETTINGS = list(declared())


def test_every_setting_has_a_value_to_try() -> None:
    assert sorted(OTHER) == sorted(SETTINGS)
    assert all(OTHER[name] != default_of(name) for name in SETTINGS)


def test_the_default_max_tokens_is_written_once() -> None:
    assert default_of("max_tokens") == 1024
    assert GenerateConfig().max_tokens == IterateConfig(model="m").max_tokens == CONFIG_DEFAULTS["max_tokens"] == 1024


@pytest.mark.parametrize("name", SETTINGS)
def test_the_engine_config_stores_the_setting(name: str) -> None:
    config = IterateConfig(model="m", **{name: OTHER[name]})
    assert getattr(config, name) == OTHER[name]
    assert config.model_dump()[name] == OTHER[name]
    assert getattr(IterateConfig(model="m"), name) == default_of(name)
    if name in later_names():  # left out at its default, so stored configs hash as before
        assert name not in IterateConfig(model="m").model_dump()


@pytest.mark.parametrize("name", SETTINGS)
def test_a_sampling_setting_reaches_the_generate_config_and_the_cache_key(name: str) -> None:
    generate = IterateConfig(model="m", **{name: OTHER[name]}).generate()
    if name in sampling_names():
        assert getattr(generate, name) == OTHER[name] and generate.model_dump()[name] == OTHER[name]
        assert generate.model_dump() != GenerateConfig().model_dump()
    else:  # the run's seed and template variant reach calls through per-call seeds and the messages
        assert generate == GenerateConfig()
    assert (name in sampling_names()) == (name in GenerateConfig.model_fields and name in RunSettings.model_fields
                                          and declared()[name].spec == "parameters")


@pytest.mark.parametrize("name", SETTINGS)
def test_a_spec_varies_the_setting(name: str) -> None:
    spec: dict[str, Any] = {"name": "walk", "models": ["scripted/a"], "protocols": ["blank-slate"]}
    values = [default_of(name), OTHER[name]]
    where = declared()[name].spec
    if where == "parameters":
        assert name in SAMPLING_PARAMETERS
        spec["parameters"] = {name: values}
    elif where == "templates":
        spec["templates"] = values
    else:
        spec["seeds"] = values
    cells = expand(ExperimentSpec.model_validate(spec))
    assert [getattr(c, name) for c in cells] == values


@pytest.mark.parametrize("name", SETTINGS)
def test_analysis_and_stability_experiments_see_the_setting(name: str) -> None:
    assert name in CONFIG_FACTORS and CONFIG_DEFAULTS[name] == default_of(name)
    stored = IterateConfig(model="m", **{name: OTHER[name]}).model_dump(mode="json")
    assert cell_factors(stored)[name] == OTHER[name]
    assert cell_factors(IterateConfig(model="m").model_dump(mode="json"))[name] == default_of(name)


class _Captured(Exception):
    pass


@pytest.mark.parametrize("name", SETTINGS)
def test_iterate_has_the_settings_flag_and_passes_its_value_on(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import stability.engine
    from stability.cli.app import app

    seen: list[IterateConfig] = []

    def capture(config: IterateConfig, *args: Any, **kwargs: Any) -> Any:
        seen.append(config)
        raise _Captured

    monkeypatch.setattr(stability.engine, "iterate", capture)
    flag = declared()[name].flag
    result = CliRunner().invoke(app, ["iterate", "-m", "scripted/a", flag, str(OTHER[name])])
    assert isinstance(result.exception, _Captured), result.output
    assert getattr(seen[0], name) == OTHER[name]


def test_iterate_refuses_a_settings_value_out_of_its_bounds_naming_the_flag() -> None:
    from stability.cli.app import app
    from stability.errors import StabilityError

    result = CliRunner().invoke(app, ["iterate", "-m", "scripted/a", "--top-p", "1.5"])
    assert isinstance(result.exception, StabilityError) and str(result.exception).startswith("--top-p 1.5:")
    result = CliRunner().invoke(app, ["iterate", "-m", "scripted/a", "--answer-format", "json"])
    assert str(result.exception) == "--answer-format 'json': choose one of auto, structured, text"


def test_declared_settings_are_cached_but_handed_out_as_a_fresh_dict() -> None:
    # computed once per model class (issue 30); a caller that edits its copy must not change the next caller's
    from stability.vocabulary.settings import declared, later_names

    first = declared()
    first.pop("seed")
    assert "seed" in declared() and "templates" in later_names() and "seed" not in later_names()
