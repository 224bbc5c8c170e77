"""Structured answers: asking for a JSON schema, reading the answer, and falling back to text.

A call whose :class:`~stability.vocabulary.GenerateConfig` carries a ``json_schema`` is sent according to its
``answer_format``:

- ``structured``: with the schema (OpenAI ``response_format``, Anthropic forced tool use); a server that refuses
  it fails the call at once with :class:`StructuredOutputRefused` (retrying cannot help);
- ``text``: without the schema, as a plain text question;
- ``auto`` (the default): with the schema until the model's server refuses it, then as text. A refusal is an
  HTTP 400 or 422, or a 500 whose body names ``response_format`` or ``json_schema`` (``llama_cpp.server`` and
  older ``llama-server`` answer so). It costs no retry: the same call is sent again as text at once, and the
  refusal is remembered on the model (``Model.structured_refusal``), so its later calls go as text directly.
  Until a model's server has answered one structured request, its ``auto`` calls go one at a time (the first
  finds out, the others wait for it), so a refusal is met once, not once per concurrent call.

The ``json_object`` rung: a provider that can also ask in OpenAI's older form passes ``json_object`` (a send
that puts ``response_format: {"type": "json_object", "schema": …}`` on the request; llama.cpp's servers enforce
that schema as a grammar). When a server refuses ``json_schema`` by name (a certain refusal), the call is sent
that way before falling back to text, in ``structured`` and ``auto`` alike, and the model remembers
(``Model.json_schema_refusal``) to send its later calls so straight away. Only when ``json_object`` is refused too
does ``auto`` fall back to text (``structured`` fails).

A resumed run learns both from its stored calls (:func:`remember_formats`), so it does not send a refused request
again.

The output records what happened: ``answer_format`` (``structured`` or ``text``), ``fallback_reason`` (the
server's refusal, when the answer went as text) and ``structured`` (the answer as a JSON object, when it is one);
the stored request shows which ``response_format`` was sent.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from stability.json_text import json_object
from stability.vocabulary import TransientError

if TYPE_CHECKING:
    from stability.models.base import Model
    from stability.vocabulary import GenerateConfig, Output

Send = Callable[["GenerateConfig"], Awaitable["Output"]]

_REFUSAL_STATUS = (400, 422)
_NAMES = ("response_format", "json_schema")
#: models whose server has answered a structured request
_ACCEPTED: weakref.WeakSet[Model] = weakref.WeakSet()
#: the structured request finding out, per model (its future ends when the answer or the refusal is in)
_PROBES: weakref.WeakKeyDictionary[Model, asyncio.Future[None]] = weakref.WeakKeyDictionary()


class StructuredOutputRefused(Exception):
    """The server refused structured output and the run asked for nothing else (``answer_format: structured``)."""


def parse_json_object(text: str) -> dict[str, Any] | None:
    """``text`` as a JSON object (read leniently: :func:`stability.json_text.json_object`), or None."""
    return json_object(text)


def structured_refusal(err: BaseException) -> tuple[str, bool] | None:
    """(reason, certain) when ``err`` may be a server refusing structured output, else None.

    ``certain`` when the error names ``response_format`` or ``json_schema``; a 400 or 422 that names neither is
    only a refusal if the same request without the schema then succeeds.
    """
    cause = err.__cause__ if isinstance(err, TransientError) and err.__cause__ is not None else err
    status = getattr(cause, "status_code", None)
    if not isinstance(status, int):
        return None
    message = _error_message(cause)
    names = any(name in message for name in _NAMES)
    if status in _REFUSAL_STATUS or (status == 500 and names):
        return f"HTTP {status}: {message[:300]}", names
    return None


def _error_message(err: BaseException) -> str:
    body = getattr(err, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return str(inner["message"])
    return str(err)


def as_sent(config: GenerateConfig) -> GenerateConfig:
    """The config a request is sent with when nothing is decided at send time (a provider batch): the text answer
    format carries no schema; structured and ``auto`` carry it (a batch cannot fall back to text, so ``auto`` asks
    for a structured answer)."""
    return config if config.answer_format != "text" else config.model_copy(update={"json_schema": None})


async def generate_in_format(model: Model, config: GenerateConfig, send: Send, json_object: Send | None = None
                             ) -> Output:
    """Send ``config`` through ``send`` in the run's answer format, trying ``json_object`` (when the provider has
    it) after a refused ``json_schema``, and falling back to text in ``auto``."""
    if config.json_schema is None:
        return await send(config)
    as_text = config.model_copy(update={"json_schema": None})
    if config.answer_format == "text":
        return (await send(as_text)).model_copy(update={"answer_format": "text"})
    probe = None
    if config.answer_format == "auto":
        probe = await _probe_or_wait(model)
        if model.structured_refusal is not None:
            output = await send(as_text)
            return output.model_copy(update={"answer_format": "text", "fallback_reason": model.structured_refusal})
    try:
        if model.json_schema_refusal is not None and json_object is not None:
            return await _send_json_object(model, config, as_text, send, json_object, model.json_schema_refusal)
        return await _send_structured(model, config, as_text, send, json_object)
    finally:
        if probe is not None:
            if _PROBES.get(model) is probe:
                del _PROBES[model]
            probe.set_result(None)


def remember_formats(model: Model, json_object_sent: bool, text_fallback: str | None) -> None:
    """What a resumed run's stored calls showed of ``model``'s server: a request sent as ``json_object`` (its
    ``json_schema`` was refused), a ``fallback_reason`` (structured output refused: its answers went as text)."""
    if json_object_sent and model.json_schema_refusal is None:
        model.json_schema_refusal = "json_schema refused earlier in this run (a stored call was sent as json_object)"
    if text_fallback is not None and model.structured_refusal is None:
        model.structured_refusal = text_fallback


async def _probe_or_wait(model: Model) -> asyncio.Future[None] | None:
    """A future when this call is to find out whether the model's server takes structured output (the caller
    ends it); else None, once that is known (waiting for the call finding out, if there is one)."""
    loop = asyncio.get_running_loop()
    while model.structured_refusal is None and model not in _ACCEPTED:
        probe = _PROBES.get(model)
        if probe is None or probe.done() or probe.get_loop() is not loop:
            _PROBES[model] = probe = loop.create_future()
            return probe
        await asyncio.shield(probe)
    return None


async def _send_structured(model: Model, config: GenerateConfig, as_text: GenerateConfig, send: Send,
                           json_object: Send | None) -> Output:
    try:
        output = await send(config)
    except Exception as err:
        refusal = structured_refusal(err)
        if refusal is None:
            raise
        reason, certain = refusal
        if certain and json_object is not None:
            model.json_schema_refusal = reason
            return await _send_json_object(model, config, as_text, send, json_object, reason)
        return await _refused(model, config, as_text, send, reason, certain, err)
    _ACCEPTED.add(model)
    return output.model_copy(update={"answer_format": "structured", "structured": parse_json_object(output.text)})


async def _send_json_object(model: Model, config: GenerateConfig, as_text: GenerateConfig, send: Send,
                            json_object: Send, schema_refusal: str) -> Output:
    try:
        output = await json_object(config)
    except Exception as err:
        refusal = structured_refusal(err)
        if refusal is None:
            raise
        reason, certain = refusal
        return await _refused(model, config, as_text, send, f"json_schema: {schema_refusal}; json_object: {reason}",
                              certain, err)
    _ACCEPTED.add(model)
    return output.model_copy(update={"answer_format": "structured", "structured": parse_json_object(output.text)})


async def _refused(model: Model, config: GenerateConfig, as_text: GenerateConfig, send: Send, reason: str,
                   certain: bool, err: Exception) -> Output:
    """The server refused structured output: fail a ``structured`` call, send an ``auto`` one as text."""
    if config.answer_format == "structured":
        raise StructuredOutputRefused(f"{model.name}: the server refuses structured output ({reason}); run "
                                      "with answer_format auto or text") from err
    if certain:
        model.structured_refusal = reason
    output = await send(as_text)  # what this raises was not about structured output: it propagates
    model.structured_refusal = reason
    return output.model_copy(update={"answer_format": "text", "fallback_reason": reason})
