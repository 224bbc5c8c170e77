from __future__ import annotations

import pytest

from stability.redaction import redact, secret_values


def test_redacts_secret_values_and_auth_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_SERVICE_API_KEY", "abcdefgh12345")
    monkeypatch.setenv("SHORT_TOKEN", "abc")  # too short to be worth matching
    assert "abcdefgh12345" in secret_values() and "abc" not in secret_values()
    value = {"Authorization": "Bearer x", "nested": ["key=abcdefgh12345", 3], "ok": "fine"}
    assert redact(value) == {"Authorization": "[redacted]", "nested": ["key=[redacted]", 3], "ok": "fine"}


def test_secret_values_follow_the_environment_as_it_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    # read once per environment (issue 30): a key set, changed or removed after a first read is still seen
    monkeypatch.setenv("FIRST_API_KEY", "first-secret-0001")
    assert "first-secret-0001" in secret_values()
    monkeypatch.setenv("FIRST_API_KEY", "second-secret-0002")
    monkeypatch.setenv("OTHER_BASE_URL", "https://host/v1?api_key=in-a-url-0003")
    assert {"second-secret-0002", "in-a-url-0003"} <= set(secret_values())
    assert "first-secret-0001" not in secret_values()
    monkeypatch.delenv("FIRST_API_KEY")
    assert "second-secret-0002" not in secret_values()
    secret_values().clear()  # a caller's copy: clearing it loses nothing
    assert "in-a-url-0003" in secret_values()


def test_repeated_keys_are_classified_the_same_every_time() -> None:
    value = {"messages": [{"content": "abcdefgh12345"}], "Authorization": "x", "api-key": "", "n": [{"token": "t"}]}
    first = redact(value, ["abcdefgh12345"])
    assert first == redact(value, ["abcdefgh12345"]) == {
        "messages": [{"content": "abcdefgh12345"}], "Authorization": "[redacted]", "api-key": "",
        "n": [{"token": "[redacted]"}]}
    assert redact({1: "abcdefgh12345"}, ["abcdefgh12345"]) == {1: "[redacted]"}


@pytest.mark.parametrize(("url", "expected"), [
    ("http://user:password@host:8000/v1", "http://[redacted]@host:8000/v1"),
    ("https://token@host/v1", "https://[redacted]@host/v1"),
    ("https://host/v1?api_key=abc&model=x", "https://host/v1?api_key=[redacted]&model=x"),
    ("https://host/v1?key=abc", "https://host/v1?key=[redacted]"),
    ("https://host/v1?Key=abc&token=t", "https://host/v1?Key=[redacted]&token=[redacted]"),
    ("https://host/v1?model=x", "https://host/v1?model=x"),
    ("http://127.0.0.1:8000/v1", "http://127.0.0.1:8000/v1"),
])
def test_credentials_in_urls_are_redacted(url: str, expected: str) -> None:
    from stability.redaction import redact_url

    assert redact_url(url) == expected
    assert redact(f"error: cannot reach {url} (refused)") == f"error: cannot reach {expected} (refused)"
    assert redact({"subject": {"base_url": url}}) == {"subject": {"base_url": expected}}


def test_sdk_models_describe_their_base_url_without_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    from stability.models.openai import OpenAIModel

    monkeypatch.setenv("OPENAI_BASE_URL", "http://alice:hunter2@proxy.example/v1?api_key=sk-live-1")
    described = OpenAIModel("openai/gpt-4o").describe()
    assert described == {"name": "openai/gpt-4o", "base_url": "http://[redacted]@proxy.example/v1?api_key=[redacted]"}
