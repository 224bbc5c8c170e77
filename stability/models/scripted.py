"""A deterministic test double that ships in the package (like inspect_ai's ``mockllm``).

``ScriptedModel(outputs=[...])`` answers with each output in turn; ``ScriptedModel(fn=...)`` answers with a
function of the messages. Usage is counted in whitespace-separated words, so token sums are exact.

Named scripts can be registered for ``scripted/NAME`` ids; ``scripted/decline`` and ``scripted/echo`` are built in.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

from stability.finetune import Adapter, TrainerParams, TrainingExample, TrainingResult, data_hash
from stability.models.base import Model
from stability.models.structured import generate_in_format
from stability.vocabulary import GenerateConfig, Message, Output, TransientError, Usage

Answer = str | Output
Script = Callable[[list[Message]], Answer]


class ScriptExhausted(RuntimeError):
    """A scripted model was called more often than it had outputs."""


class ScriptedModel(Model):
    network = False
    exposes_logprobs = True

    def __init__(
        self,
        outputs: Sequence[Answer | Exception] | None = None,
        fn: Script | None = None,
        name: str = "scripted/model",
        base_model: bool = False,
        structured: bool = False,
    ) -> None:
        super().__init__(name)
        if (outputs is None) == (fn is None):
            raise ValueError("give exactly one of outputs or fn")
        self.outputs = list(outputs) if outputs is not None else None
        self.fn = fn
        self.base_model = base_model
        #: like a chat API with structured output: protocols then ask with a JSON schema, and a JSON answer is
        #: parsed into ``Output.structured``
        self.structured_output = structured
        self.calls: list[list[Message]] = []
        self.usage = Usage()
        # Different scripts must never answer for each other from the cache: each instance is its own model.
        self.instance = uuid.uuid4().hex[:12]

    def describe(self) -> dict[str, object]:
        return {"name": self.name, "instance": self.instance}

    async def generate(self, messages: list[Message], config: GenerateConfig) -> Output:
        async def send(config: GenerateConfig) -> Output:
            return self._answer(messages, config)

        return await generate_in_format(self, config, send)

    def _answer(self, messages: list[Message], config: GenerateConfig) -> Output:
        self.calls.append(list(messages))
        if self.fn is not None:
            answer: Answer | Exception = self.fn(list(messages))
        else:
            assert self.outputs is not None
            index = len(self.calls) - 1
            if index >= len(self.outputs):
                raise ScriptExhausted(f"{self.name}: called {index + 1} times, script has {len(self.outputs)}")
            answer = self.outputs[index]
        if isinstance(answer, Exception):
            raise answer
        request = {"model": self.name, "messages": [m.model_dump() for m in messages], **config.model_dump()}
        if isinstance(answer, Output):  # a scripted answer with its own usage or log-probabilities
            return answer.model_copy(update={"request": request, "response": {"text": answer.text}})
        usage = Usage(
            input_tokens=sum(len(m.content.split()) for m in messages), output_tokens=len(answer.split())
        )
        self.usage.input_tokens += usage.input_tokens
        self.usage.output_tokens += usage.output_tokens
        return Output(text=answer, usage=usage, finish_reason="stop", request=request,
                      response={"text": answer, "call": len(self.calls)})


class TrainableScriptedModel(ScriptedModel):
    """A scripted model that "trains": :meth:`train` writes a small adapter folder (its data hash, parent and
    parameters) and records the call in ``trained``; :meth:`with_adapter` answers through the same script with the
    adapter on its requests. Tests of training protocols use it where real LoRA would be too slow."""

    trainable = True

    def __init__(self, *args: object, adapter: Adapter | None = None, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.adapter = adapter
        self.trained: list[tuple[str, list[TrainingExample]]] = []

    def describe(self) -> dict[str, object]:
        return {**super().describe(), "adapter": self.adapter.model_dump() if self.adapter else None}

    def with_adapter(self, adapter: Adapter | None) -> TrainableScriptedModel:
        twin = TrainableScriptedModel(fn=self._script_answer, name=self.name, base_model=self.base_model,
                                      adapter=adapter)
        twin.instance, twin.trained, twin.calls = self.instance, self.trained, self.calls
        return twin

    def _script_answer(self, messages: list[Message]) -> Answer:
        if self.fn is not None:
            return self.fn(messages)
        assert self.outputs is not None
        answer = self.outputs[min(len(self.calls) - 1, len(self.outputs) - 1)]
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def generate(self, messages: list[Message], config: GenerateConfig) -> Output:
        output = await super().generate(messages, config)
        return output.model_copy(update={"request": {**output.request, "adapter": self.describe()["adapter"]}})

    async def train(self, examples: list[TrainingExample], params: TrainerParams, out: Path,
                    init: Adapter | None) -> TrainingResult:
        self.trained.append((out.name, list(examples)))
        out.mkdir(parents=True, exist_ok=True)
        (out / "adapter_config.json").write_text(json.dumps(
            {"data": data_hash(examples), "parent": init.hash if init else None, "params": params.model_dump()},
            sort_keys=True))
        adapter = Adapter.from_path(out)
        return TrainingResult(adapter=adapter, losses=[1.0] * params.steps, loss_before=2.0, loss_after=1.0,
                              seconds=0.0, seconds_per_step=0.0, tokens=0)


def flaky(answer: str, failures: int, status: int = 429, retry_after: float | None = None) -> Script:
    """A script that fails ``failures`` times with a transient error, then answers."""
    count = {"n": 0}

    def script(messages: list[Message]) -> str:
        count["n"] += 1
        if count["n"] <= failures:
            raise TransientError(f"scripted {status}", status=status, retry_after=retry_after)
        return answer

    return script


_SCRIPTS: dict[str, Callable[[], ScriptedModel]] = {}


def register(name: str, factory: Callable[[], ScriptedModel]) -> None:
    """Make ``scripted/NAME`` resolvable through the registry (e.g. from a test or a plugin)."""
    _SCRIPTS[name] = factory


def _echo(messages: list[Message]) -> str:
    return messages[-1].content


register("decline", lambda: ScriptedModel(fn=lambda _: "NO CHANGE", name="scripted/decline"))
register("echo", lambda: ScriptedModel(fn=_echo, name="scripted/echo"))


def create(full_name: str) -> Model:
    from stability.errors import ModelNotFound

    name = full_name.split("/", 1)[1]
    if name not in _SCRIPTS:
        raise ModelNotFound(f"unknown scripted model {full_name!r}; registered: {', '.join(sorted(_SCRIPTS))}")
    return _SCRIPTS[name]()
