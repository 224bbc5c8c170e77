from __future__ import annotations

import pytest

from stability.redaction import redact, secret_values


def test_redacts_secret_values_and_auth_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_SERVICE_API_KEY", "abcdefgh12345")
    monkeypatch.setenv("SHORT_TOKEN", "abc")  # too short to be worth matching
    assert "abcdefgh12345" in secret_values() and "abc" not in secret_values()
    value = {"Authorization": "Bearer x", "nested": ["key=abcdefgh12345", 3], "ok": "fine"}
    assert redact(value) == {"Authorization": "[redacted]", "nested": ["key=[redacted]", 3], "ok": "fine"}
