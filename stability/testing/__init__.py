"""Test doubles that ship with the package: the scripted model lives in ``stability.models.scripted``; a local
HTTP server speaking the OpenAI and Anthropic wire formats lives in ``stability.testing.wire_server``."""
