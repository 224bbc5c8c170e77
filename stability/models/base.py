"""The one model interface and its records (the registry keyed by provider prefix is :mod:`.registry`).

Every provider turns ``messages`` into an :class:`Output` that carries the text, the usage, and the raw
request and response for logging, and declares which of its failures are worth retrying
(:meth:`Model.transient`). Providers know nothing of persistence, protocols or the CLI.
"""

from __future__ import annotations

import asyncio
import json
import os
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

from stability.errors import NetworkRefused, StabilityError
from stability.models.choices import AnswerFormat, ReasoningEffort  # declared there, for the CLI's help
from stability.models.sampling import is_openai_reasoning_model
from stability.tokens import Tokens

if TYPE_CHECKING:
    from stability.finetune import Adapter, TrainerParams, TrainingExample, TrainingResult
    from stability.models.batch_api import BatchAPI

ALLOW_NETWORK_ENV = "STABILITY_ALLOW_NETWORK"
HTTP_TIMEOUT_ENV = "STABILITY_HTTP_TIMEOUT"
T = TypeVar("T")


def http_timeout() -> float:
    """Seconds an SDK provider waits for one response (600; ``STABILITY_HTTP_TIMEOUT`` overrides, for tests)."""
    return float(os.environ.get(HTTP_TIMEOUT_ENV) or 600)


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    role: Literal["system", "user", "assistant"]
    content: str


def omit_later_defaults(model: BaseModel, data: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    """``data`` without the fields ``names`` that hold their default.

    For fields added after dumps of ``model`` were first hashed (cache keys, experiment cells): a config that
    does not use them dumps, and so hashes, exactly as it did before they existed.
    """
    fields = type(model).model_fields
    return {k: v for k, v in data.items() if k not in names or getattr(model, k) != fields[k].default}


class GenerateConfig(BaseModel):
    """Sampling parameters. Part of every call's cache key and stored with every run.

    The fields after ``json_schema`` are left out of the dump while at their default, so existing cache keys
    stay valid.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    temperature: float = 1.0
    max_tokens: int = 1024
    top_p: float | None = None
    seed: int | None = None
    stop: tuple[str, ...] = ()
    #: ask for the top-k log-probabilities of each generated token (providers that expose them)
    logprobs: int | None = None
    #: ask for JSON matching this schema (structured output / tool use where the provider supports it)
    json_schema: dict[str, Any] | None = None
    #: OpenAI reasoning models (o-series, gpt-5): how much to reason before answering
    reasoning_effort: ReasoningEffort | None = None
    #: Anthropic extended thinking: tokens the model may think for (at least 1024, below max_tokens)
    thinking_budget: int | None = None
    #: how a ``json_schema`` answer is asked for: structured output, plain text, or ``auto`` (structured, and
    #: plain text from a server that refuses structured output)
    answer_format: AnswerFormat = "auto"

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return omit_later_defaults(self, handler(self), ("reasoning_effort", "thinking_budget", "answer_format"))


class Usage(BaseModel):
    """Tokens as counted and priced: each bounded on the way in (negative 0, absurd capped: see
    :func:`stability.tokens.bounded_tokens`); the server's own figures stay in the raw response."""

    model_config = ConfigDict(extra="forbid")

    input_tokens: Tokens = 0
    output_tokens: Tokens = 0


class TokenLogprob(BaseModel):
    """One generated token, its log-probability, and the top alternatives at that position."""

    model_config = ConfigDict(extra="forbid")

    token: str
    logprob: float
    top: dict[str, float] = Field(default_factory=dict)


#: finish reasons meaning "cut at the token limit": OpenAI, llama.cpp, transformers and litellm say ``length``,
#: Anthropic ``max_tokens`` (or ``model_context_window_exceeded``), Gemini ``MAX_TOKENS``
TRUNCATED_FINISH_REASONS = frozenset({"length", "max_tokens", "model_context_window_exceeded"})


def is_truncated(finish_reason: str | None) -> bool:
    """Whether a provider's raw finish reason means the answer was cut at the token limit."""
    return finish_reason is not None and finish_reason.lower() in TRUNCATED_FINISH_REASONS


class Output(BaseModel):
    """One completed generation, with the raw wire-level request and response (secrets never included).

    ``text`` is the answer only: thinking the provider returned apart from it is in ``thinking``, never in
    ``text``. When a ``json_schema`` was asked for, ``answer_format`` says how it was sent (``structured``, or
    ``text`` with ``fallback_reason`` when the server refused structured output) and ``structured`` holds the
    answer parsed as a JSON object (None when it is not one).
    """

    model_config = ConfigDict(extra="forbid")

    text: str
    usage: Usage = Field(default_factory=Usage)
    #: the provider's raw finish reason (``stop``, ``length``, ``end_turn``, ``max_tokens``, ``tool_use`` ...)
    finish_reason: str | None = None
    logprobs: list[TokenLogprob] | None = None
    request: dict[str, Any] = Field(default_factory=dict)
    response: dict[str, Any] = Field(default_factory=dict)
    thinking: str | None = None
    structured: dict[str, Any] | None = None
    answer_format: Literal["structured", "text"] | None = None
    fallback_reason: str | None = None

    @property
    def truncated(self) -> bool:
        """The answer was cut at the token limit (whatever the provider calls that)."""
        return is_truncated(self.finish_reason)


class ModelTraits(BaseModel):
    """A model as a protocol sees it: its id and capabilities, never the model object."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    base_model: bool
    structured_output: bool
    exposes_logprobs: bool
    trainable: bool


class TransientError(Exception):
    """A failure worth retrying (429, 5xx, overloaded, timeout, dropped connection).

    ``retry_after`` is the server's ``Retry-After`` in seconds, when it sent one.
    """

    def __init__(self, message: str, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class Model(ABC):
    """A model that can generate. ``name`` is the full id, e.g. ``openai/gpt-4o``."""

    #: True when the provider sends requests over the network (refused under pytest unless a test opts in).
    network: bool = False
    #: True for base (non-chat) models: protocols then add their few-shot examples.
    base_model: bool = False
    #: True when ``GenerateConfig.json_schema`` is enforced by the provider (structured output or tool use).
    structured_output: bool = False
    #: True when ``GenerateConfig.logprobs`` returns token log-probabilities.
    exposes_logprobs: bool = False
    #: True when the model can train LoRA adapters (:meth:`train`) and generate through one (:meth:`with_adapter`).
    trainable: bool = False
    #: Why this model's server refused structured output, once it has: later ``auto`` calls then ask in text.
    structured_refusal: str | None = None
    #: Why this model's server refused ``json_schema``, once it has and took ``json_object`` with the schema
    #: instead (OpenAI-compatible servers such as llama.cpp's): later structured calls are sent so directly.
    json_schema_refusal: str | None = None

    def __init__(self, name: str) -> None:
        self.name = name

    def traits(self) -> ModelTraits:
        """What a protocol may know of this model (it never holds the model itself)."""
        return ModelTraits(name=self.name, base_model=self.base_model, structured_output=self.structured_output,
                           exposes_logprobs=self.exposes_logprobs, trainable=self.trainable)

    def with_adapter(self, adapter: Adapter | None) -> Model:
        """The same weights generating through ``adapter`` (``None``: none). Only trainable models have one."""
        raise StabilityError(f"{self.name}: this model cannot load LoRA adapters (try an hf/ model)")

    async def train(self, examples: list[TrainingExample], params: TrainerParams, out: Path,
                    init: Adapter | None) -> TrainingResult:
        """Train a LoRA adapter on ``examples`` (continuing ``init``) into ``out``. Only trainable models can."""
        raise StabilityError(f"{self.name}: this model cannot be fine-tuned (try an hf/ model)")

    @abstractmethod
    async def generate(self, messages: list[Message], config: GenerateConfig) -> Output: ...

    def batch_api(self) -> BatchAPI | None:
        """The provider's batch API (half price, answered within a day), or None: then ``--batch`` asks directly."""
        return None

    def describe(self) -> dict[str, Any]:
        """Parameters worth recording on a run (besides the sampling config)."""
        return {"name": self.name}

    async def aclose(self) -> None:
        """Release what this event loop holds (an SDK's connections) before the loop ends. Default: nothing."""
        return None

    def transient(self, err: Exception) -> TransientError | None:
        """This provider's retry classification: a :class:`TransientError` for a failure worth retrying (429,
        5xx, overloaded, timeout, dropped connection, truncated body), ``None`` for one that retrying cannot fix.

        The call path retries :class:`TransientError`; :meth:`sending` applies this to a request. Default:
        nothing is transient (a provider may also raise :class:`TransientError` itself).
        """
        return None

    async def sending(self, request: Awaitable[T]) -> T:
        """Await a request, raising :meth:`transient`'s :class:`TransientError` for retryable failures."""
        try:
            return await request
        except TransientError:
            raise
        except Exception as err:
            transient = self.transient(err)
            if transient is not None:
                raise transient from err
            raise


class SDKModel(Model):
    """A model behind an official SDK that reads ``<PREFIX>_API_KEY`` and ``<PREFIX>_BASE_URL``.

    A base URL without a key is allowed (local servers need none; a placeholder is sent). The SDK's own retries
    are off: the call path retries and records every attempt. A client belongs to one event loop, so one is made
    per loop.
    """

    network = True
    env_prefix: str = ""  # e.g. "OPENAI"

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.model_id = name.split("/", 1)[1]
        self.base_url = os.environ.get(f"{self.env_prefix}_BASE_URL") or None
        if not os.environ.get(f"{self.env_prefix}_API_KEY") and not self.base_url:
            raise StabilityError(f"{name}: set {self.env_prefix}_API_KEY (or {self.env_prefix}_BASE_URL for a "
                                 "local server or proxy)")
        self._client: Any = None
        self._loop: Any = None
        from stability.redaction import redact_url

        #: the base URL as recorded (every call's cache key holds it): credentials redacted, once
        self._described_url = redact_url(self.base_url) if self.base_url else None

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "base_url": self._described_url}

    def client(self) -> Any:
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            self._loop = loop
            self._client = self.make_client(os.environ.get(f"{self.env_prefix}_API_KEY") or "not-needed")
        return self._client

    async def post_json(self, path: str, body: dict[str, Any], **options: Any) -> dict[str, Any]:
        """POST ``body`` through the SDK client's low-level API and return the response's JSON object.

        The SDK still sends it (auth, base URL, default headers, timeout; its status and connection errors), but
        neither transforms the body (it goes out as ``json.dumps(body)``, exactly the request we store) nor
        builds its response model (we store the response JSON as the server sent it). ``options`` are the SDK's
        request options (OpenAI's ``security``). A body that is not a JSON object fails like a body cut short,
        through :meth:`transient`.
        """
        async def send() -> dict[str, Any]:
            raw = await self.client().post(path, body=body, cast_to=bytes, options=options)
            data = json.loads(raw)
            if not isinstance(data, dict):
                raise TransientError(f"malformed response body: not a JSON object: {raw[:200]!r}")
            return data

        return await self.sending(send())

    async def aclose(self) -> None:
        """Close this loop's client, so its connections do not outlive the loop (and warn when collected)."""
        if self._client is not None and self._loop is asyncio.get_running_loop():
            client, self._client, self._loop = self._client, None, None
            await client.close()

    @abstractmethod
    def make_client(self, api_key: str) -> Any:
        """The SDK's async client for ``self.base_url``, with its retries off and our timeout."""


async def close_models(models: Iterable[Model]) -> None:
    """:meth:`Model.aclose` each model once (a model playing several roles is one model)."""
    for model in {id(m): m for m in models}.values():
        await model.aclose()


def check_network_allowed(name: str) -> None:
    """Refuse network providers under pytest unless the test opted in (``STABILITY_ALLOW_NETWORK=1``)."""
    if os.environ.get("PYTEST_CURRENT_TEST") and os.environ.get(ALLOW_NETWORK_ENV) != "1":
        raise NetworkRefused(
            f"{name}: network providers are refused under pytest; a test opts in with {ALLOW_NETWORK_ENV}=1"
        )


def chat_completions_body(model_id: str, messages: list[Message], config: GenerateConfig) -> dict[str, Any]:
    """The OpenAI chat-completions request body, shared by the openai and litellm providers.

    A reasoning model (o-series, gpt-5) gets ``max_completion_tokens``, and its default temperature is not sent
    (any other is, for the server to refuse: :func:`~stability.models.sampling.check_sampling` refuses it first).
    """
    body: dict[str, Any] = {"model": model_id, "messages": [m.model_dump() for m in messages]}
    if not is_openai_reasoning_model(model_id):
        body.update(temperature=config.temperature, max_tokens=config.max_tokens)
    else:
        if config.temperature != 1.0:
            body["temperature"] = config.temperature
        body["max_completion_tokens"] = config.max_tokens
    if config.reasoning_effort is not None:
        body["reasoning_effort"] = config.reasoning_effort
    if config.top_p is not None:
        body["top_p"] = config.top_p
    if config.seed is not None:
        body["seed"] = config.seed
    if config.stop:
        body["stop"] = list(config.stop)
    if config.logprobs:
        body["logprobs"] = True
        body["top_logprobs"] = config.logprobs
    if config.json_schema is not None:
        body["response_format"] = {"type": "json_schema",
                                   "json_schema": {"name": "answer", "schema": config.json_schema}}
    return body


def as_json_object(body: dict[str, Any]) -> dict[str, Any]:
    """A chat-completions body asking for ``json_object`` with the schema instead of ``json_schema``: the form
    llama.cpp's servers (``llama-server``, ``llama_cpp.server``) enforce as a grammar."""
    schema = body["response_format"]["json_schema"]["schema"]
    return {**body, "response_format": {"type": "json_object", "schema": schema}}


def chat_completions_output(response: Any, body: dict[str, Any]) -> Output:
    """An OpenAI-format chat completion object (litellm's, or the openai SDK's) as an :class:`Output`."""
    return chat_completions_json_output(response.model_dump(mode="json"), body)


def chat_completions_json_output(data: dict[str, Any], body: dict[str, Any]) -> Output:
    """An OpenAI-format chat completion, as JSON, as an :class:`Output` (``data`` is stored as the response)."""
    choices = data.get("choices") or [{}]
    choice = choices[0] or {}
    usage = data.get("usage") or {}
    message = choice.get("message") or {}
    # DeepSeek, vLLM and OpenRouter return a reasoning model's thinking beside the answer
    thinking = message.get("reasoning_content") or message.get("reasoning")
    return Output(
        text=message.get("content") or "",
        usage=Usage(input_tokens=usage.get("prompt_tokens") or 0, output_tokens=usage.get("completion_tokens") or 0),
        finish_reason=choice.get("finish_reason"),
        logprobs=chat_completions_logprobs(choice),
        thinking=thinking if isinstance(thinking, str) and thinking else None,
        request=body,
        response=data,
    )


def chat_completions_logprobs(choice: dict[str, Any]) -> list[TokenLogprob] | None:
    """Token log-probabilities from an OpenAI-format choice (JSON), if it carries them."""
    content = (choice.get("logprobs") or {}).get("content")
    if not content:
        return None
    return [TokenLogprob(token=t["token"], logprob=t["logprob"],
                         top={alt["token"]: alt["logprob"] for alt in (t.get("top_logprobs") or [])})
            for t in content]
