"""The words every layer shares about one generation: the messages sent, the config they are sent with, the output
that comes back, and a model's traits as a protocol sees them.

Contract: plain pydantic values with no behaviour beyond their own serialisation; :class:`GenerateConfig`'s dump is
part of every call's cache key, so a field added to it is left out of the dump while at its default.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

from stability.tokens import Tokens
from stability.vocabulary.settings import SamplingSettings, later_names, omit_later_defaults


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    role: Literal["system", "user", "assistant"]
    content: str


class GenerateConfig(SamplingSettings):
    """One call's sampling parameters: the run's sampling settings (declared in :mod:`.settings`) and the call's
    own seed, stop sequences, log-probabilities and answer schema. Part of every call's cache key.

    A setting added after cache keys were first hashed is left out of the dump while at its default
    (:func:`~stability.vocabulary.settings.later_names`), so existing cache keys stay valid.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int | None = None
    stop: tuple[str, ...] = ()
    #: ask for the top-k log-probabilities of each generated token (providers that expose them)
    logprobs: int | None = None
    #: ask for JSON matching this schema (structured output / tool use where the provider supports it)
    json_schema: dict[str, Any] | None = None

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return omit_later_defaults(self, handler(self), later_names(SamplingSettings))


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
