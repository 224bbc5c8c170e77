"""Cache keys, stored run configs and experiment ids are pinned: the values below were computed on the code before
the run settings were declared once (issue 27, commit fdd0105), so a change to how a setting is declared, defaulted
or dumped that would orphan an existing store's cache or rename an experiment fails here."""

from __future__ import annotations

from stability.calls import cache_key
from stability.engine import IterateConfig
from stability.experiment.spec import ExperimentSpec, cell_key
from stability.models.scripted import ScriptedModel
from stability.vocabulary import GenerateConfig, Message


class _Pinned(ScriptedModel):
    def describe(self) -> dict[str, object]:
        return {"name": self.name, "base_url": "http://pin"}


MESSAGES = [Message(role="system", content="s"), Message(role="user", content="u é")]


def test_call_cache_keys_are_as_before() -> None:
    model = _Pinned(["x"], name="scripted/pin")
    pinned = [
        (GenerateConfig(), "5b82188aa06de28bc063930fe13cbc36163fbab40babb559a6910cdb5a2c599a"),
        (GenerateConfig(temperature=0.7, max_tokens=2048, top_p=0.9, seed=3),
         "1704b7eabb45717edf166a532e55a00612965c111f2856a106656f7dd6ac2947"),
        (GenerateConfig(reasoning_effort="low", answer_format="text", json_schema={"type": "object"}),
         "934a335631799cfb5a87dcdb1318bdf1e26f1ff4b161a4618810de85c6a93cad"),
        (GenerateConfig(thinking_budget=2048, max_tokens=4096, stop=("x",), logprobs=5),
         "0261e0b241367fe2a1abfa758b2d642f50f417ebfde4386f3a7adb2f9ef0018a"),
    ]
    assert [cache_key(model, MESSAGES, config) for config, _ in pinned] == ["sha256:" + key for _, key in pinned]


def test_stored_run_configs_and_their_generate_configs_are_as_before() -> None:
    default = IterateConfig(model="scripted/pin")
    full = IterateConfig(model="scripted/pin", protocol="in-context", constitution="c.md", seed=4, temperature=0.5,
                         max_tokens=512, top_p=0.8, options={"steps": 3}, reasoning_effort="high",
                         thinking_budget=1500, answer_format="structured", templates="neutral", cache="run")
    assert cell_key(default) == "78b3ee33926c4829"
    assert cell_key(full) == "dafbe6222902a541"
    assert default.generate().model_dump() == {"temperature": 1.0, "max_tokens": 1024, "top_p": None, "seed": None,
                                               "stop": (), "logprobs": None, "json_schema": None}
    assert full.generate().model_dump() == {
        "temperature": 0.5, "max_tokens": 512, "top_p": 0.8, "seed": None, "stop": (), "logprobs": None,
        "json_schema": None, "reasoning_effort": "high", "thinking_budget": 1500, "answer_format": "structured"}


def test_experiment_ids_are_as_before() -> None:
    plain = ExperimentSpec.model_validate({"name": "pin", "models": ["scripted/pin"], "protocols": ["fresh-instance"]})
    framing = ExperimentSpec.model_validate({
        "name": "pin", "models": ["scripted/pin"], "protocols": ["fresh-instance"], "templates": ["default", "neutral"],
        "replicates": 2, "parameters": {"temperature": [0.5, 1.0], "max_tokens": [512]}})
    assert plain.experiment_id == "pin-205bb7a9f4"
    assert framing.experiment_id == "pin-deb24391e7"
