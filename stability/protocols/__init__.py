"""Built-in protocols; importing this package registers them."""

from stability.protocols import fine_tune_reflect, fresh_instance
from stability.protocols.base import Protocol, protocol_class

__all__ = ["Protocol", "fine_tune_reflect", "fresh_instance", "protocol_class"]
