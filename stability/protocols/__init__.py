"""Built-in protocols; importing this package registers them."""

from stability.protocols import fresh_instance
from stability.protocols.base import Protocol, protocol_class

__all__ = ["Protocol", "fresh_instance", "protocol_class"]
