"""Built-in protocols; importing this package registers them."""

from stability.protocols import (
    blank_slate,
    fine_tune_reflect,
    free_form_edit,
    fresh_instance,
    in_context,
    multi_agent,
    rate_alternatives,
)
from stability.protocols.base import Protocol, protocol_class

__all__ = [
    "Protocol",
    "blank_slate",
    "fine_tune_reflect",
    "free_form_edit",
    "fresh_instance",
    "in_context",
    "multi_agent",
    "protocol_class",
    "rate_alternatives",
]
