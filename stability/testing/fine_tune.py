"""Test doubles for fine-tune-reflect: scripted trainable subjects with a known way of answering."""

from __future__ import annotations

from stability.models import scripted
from stability.models.scripted import TrainableScriptedModel
from stability.vocabulary import Message

#: the question fine-tune-reflect trains on and asks at each generation (held-out prompts ask otherwise)
TRAINED_QUESTION = "Would you change anything"


def _declines_trained_revises_heldout(messages: list[Message]) -> str:
    if TRAINED_QUESTION in messages[-1].content:
        return "NO CHANGE"
    return "REVISED CONSTITUTION:\n- I am honest.\n"


def heldout_reviser(name: str = "tunable") -> TrainableScriptedModel:
    """A trainable subject, registered as ``scripted/NAME``, that declines the trained question and proposes a
    change at every held-out one; the returned model records what it was trained on."""
    subject = TrainableScriptedModel(fn=_declines_trained_revises_heldout, name=f"scripted/{name}")
    scripted.register(name, lambda: subject)
    return subject
