"""Sampling parameters each model family accepts, checked before any call is sent.

OpenAI's reasoning models (the o-series and the gpt-5 family, but not ``gpt-5-chat``) take
``max_completion_tokens`` instead of ``max_tokens``, take ``reasoning_effort``, and refuse any temperature
but the default and any ``top_p``. Anthropic's extended thinking (``thinking_budget``) needs a budget of at
least 1024 tokens below ``max_tokens`` and the default temperature. :func:`check_sampling` turns each of these
rules into a one-line error at prepare time, so a run never starts only to fail at its first call.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from stability.errors import StabilityError

if TYPE_CHECKING:
    from stability.vocabulary import GenerateConfig

#: o1, o3-mini, o4-mini, gpt-5, gpt-5-mini, gpt-5.1 ... but not gpt-5-chat-latest (a chat model without reasoning)
_OPENAI_REASONING = re.compile(r"^(o[1-9]\d*(-|$)|gpt-5(\.\d+)?(-(?!chat)|$))")
#: the least thinking budget the Anthropic API accepts
MIN_THINKING_BUDGET = 1024


def is_openai_reasoning_model(model_id: str) -> bool:
    """True for OpenAI's reasoning models, by the last segment of the id (``o3-mini``, ``openai/gpt-5``)."""
    return bool(_OPENAI_REASONING.match(model_id.rsplit("/", 1)[-1].lower()))


def check_sampling(name: str, config: GenerateConfig) -> None:
    """Refuse sampling parameters that ``name`` (a canonical model id) would refuse, in one line."""
    prefix, _, model_id = name.partition("/")
    if prefix in ("openai", "litellm") and is_openai_reasoning_model(model_id):
        if config.temperature != 1.0:
            raise StabilityError(f"{name}: a reasoning model accepts only the default temperature (1), not "
                                 f"{config.temperature:g}; drop --temperature (use --reasoning-effort instead)")
        if config.top_p is not None:
            raise StabilityError(f"{name}: a reasoning model does not accept top_p; leave it unset")
    if config.reasoning_effort is not None and prefix not in ("openai", "litellm", "scripted"):
        raise StabilityError(f"{name}: reasoning_effort applies to OpenAI-format models (openai/, litellm/); "
                             "for anthropic/ use thinking_budget")
    if config.thinking_budget is None:
        return
    if prefix not in ("anthropic", "scripted") and not (prefix == "litellm" and model_id.startswith("anthropic/")):
        raise StabilityError(f"{name}: thinking_budget applies to Anthropic models (anthropic/, "
                             "litellm/anthropic/); for OpenAI reasoning models use reasoning_effort")
    if config.thinking_budget < MIN_THINKING_BUDGET:
        raise StabilityError(f"{name}: thinking_budget must be at least {MIN_THINKING_BUDGET} tokens, "
                             f"not {config.thinking_budget}")
    if config.thinking_budget >= config.max_tokens:
        raise StabilityError(f"{name}: thinking_budget ({config.thinking_budget}) must be below max_tokens "
                             f"({config.max_tokens}), which counts the thinking too; raise max_tokens")
    if config.temperature != 1.0:
        raise StabilityError(f"{name}: with extended thinking only the default temperature (1) is accepted, not "
                             f"{config.temperature:g}; drop --temperature")
    if config.top_p is not None and not 0.95 <= config.top_p <= 1.0:
        raise StabilityError(f"{name}: with extended thinking top_p must be between 0.95 and 1, not "
                             f"{config.top_p:g}")
