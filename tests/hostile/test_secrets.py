"""Secrets are redacted where they appear as secrets (URLs, headers, configs, errors), never inside content: an
Azure ``subscription-key`` in a base URL reaches no store, log, export or viewer page, and an answer that happens
to contain the key's value is stored byte-exact."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from stability.calls import call_record
from stability.prices import PriceTable
from stability.redaction import REDACTED, auth_key, redact, redact_url, secret_values
from stability.store import Store
from stability.testing.wire_server import WireServer
from stability.vocabulary import Output
from tests.conftest import run_cli, write

S = "AZsecretVALUE0123456789abcdefXYZ"  # an Azure-style subscription key
KEY = "sk-test-openai-key-000000"  # the wire fixture's key

URLS = [
    (f"https://res.openai.azure.com/openai/deployments/gpt?subscription-key={S}&api-version=2024-06-01", S),
    (f"https://gw.azure-api.net/v1?Subscription-Key={S}", S),
    (f"https://host/v1?api-key={S}", S),
    (f"https://host/v1?key={S}", S),
    (f"https://host/v1?token={S}", S),
    (f"https://host/v1?access_token={S}", S),
    (f"https://acct.blob.core.windows.net/c/f?sv=2022-11-02&se=2030-01-01&sig={S}", S),
    (f"https://fn.azurewebsites.net/api/chat?code={S}", S),
    (f"https://host/v1?x-goog-api-key={S}", S),
    (f"https://host/v1?client_secret={S}", S),
    (f"https://host/v1?refresh_token={S}", S),
    (f"https://host/v1?password={S}", S),
    (f"https://host/v1?model=a&apikey={S}&b=c", S),
    (f"https://host/v1#access_token={S}", S),
    (f"https://host/key/{S}/v1", S),
    (f"https://host/api-key={S}/v1", S),
    (f"https://host/v1;api_key={S}", S),
    (f"https://api.telegram.org/bot123456789:{S}/sendMessage", f"bot123456789:{S}"),
    (f"https://proxy.example/sk-proj-{S}/v1", f"sk-proj-{S}"),
    (f"https://{S}@host/v1", S),
    (f"https://user:{S}@host/v1", S),
]


@pytest.mark.parametrize(("url", "secret"), URLS)
def test_every_key_like_part_of_a_url_is_redacted(url: str, secret: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert secret not in redact_url(url) and REDACTED in redact_url(url)
    assert secret not in redact(f"error: cannot reach {url} (refused)", [])
    assert secret not in json.dumps(redact({"subject": {"base_url": url}}, []))
    monkeypatch.setenv("OPENAI_BASE_URL", url)  # set as a base URL: its credential is a secret value everywhere
    assert secret in secret_values()
    assert secret not in redact(f"server said: {secret} is not valid")


@pytest.mark.parametrize("url", ["https://host/v1?model=gpt&api-version=2024-06-01", "http://127.0.0.1:8000/v1",
                                 "https://host/v1/chat/completions", "https://host/tokens/count?max_tokens=5"])
def test_urls_without_credentials_are_left_as_they_are(url: str) -> None:
    assert redact_url(url) == url


@pytest.mark.parametrize("header", ["Ocp-Apim-Subscription-Key", "api-key", "Authorization", "Proxy-Authorization",
                                    "X-Api-Key", "x-goog-api-key", "Cookie", "client_secret",
                                    "aws_secret_access_key", "AZURE_OPENAI_API_KEY", "refresh_token", "password",
                                    "subscription_key"])
def test_credential_headers_and_config_keys_are_redacted(header: str) -> None:
    assert auth_key(header)
    redacted = redact({"headers": {header: S}, "models": [{"params": {header: f"Bearer {S}"}}]}, [])
    assert S not in json.dumps(redacted)


@pytest.mark.parametrize("name", ["cache_key", "judge_key", "subject_key", "max_tokens", "input_tokens", "model",
                                  "text_hash", "keyword"])
def test_ordinary_fields_named_like_keys_are_kept(name: str) -> None:
    assert not auth_key(name)
    assert redact({name: "sha256:abc"}, [S]) == {name: "sha256:abc"}


@pytest.mark.parametrize("field", ["text", "content", "messages", "thinking", "reasoning_content", "system",
                                   "option_text", "raw_answer", "principles"])
def test_content_holding_the_key_is_kept_byte_exact(field: str) -> None:
    answer = f"I never reveal {S}; see https://host/v1?key={S} (not a secret here: it is what was written)"
    assert redact({field: answer, "error": f"bad key {S}"}, [S]) == {field: answer, "error": f"bad key {REDACTED}"}


def test_a_stored_call_keeps_the_answer_and_redacts_the_error() -> None:
    answer = f"REVISED CONSTITUTION:\n- never reveal {S}\n"
    output = Output(text=answer, thinking=f"the key is {S}",
                    request={"model": "m", "messages": [{"role": "user", "content": f"keep {S} safe"}],
                             "api_key": S},
                    response={"id": "x", "choices": [{"message": {"role": "assistant", "content": answer}}],
                              "echo": f"key={S}"})
    record = call_record(run_id="r", step=1, purpose="revise", model="openai/x", key="k", index=0,
                         request=output.request, output=output, error=None, latency_ms=1.0, attempts=1, retries=[],
                         prices=PriceTable(), secrets=[S])
    assert record.text == answer and record.thinking == f"the key is {S}"
    assert record.response["choices"][0]["message"]["content"] == answer
    assert record.request["messages"][0]["content"] == f"keep {S} safe"
    assert record.request["api_key"] == REDACTED and S not in record.response["echo"]
    failed = call_record(run_id="r", step=1, purpose="revise", model="openai/x", key="k", index=0,
                         request=output.request, output=None, error=f"401: Incorrect API key provided: {S}",
                         latency_ms=1.0, attempts=1, retries=[], prices=PriceTable(), secrets=[S])
    assert failed.error is not None and S not in failed.error


def _spec(tmp_path: Path) -> Path:
    write(tmp_path / "c.md", "- principle 1\n")
    return write(tmp_path / "spec.yaml", f"name: azure\nmodels: [openai/fake]\nconstitutions: [{tmp_path}/c.md]\n"
                                         "protocols:\n  - name: fresh-instance\n    options: {max_steps: 3}\n"
                                         "cache: global\n")


@pytest.mark.parametrize(("form", "recorded", "status"), [
    # the SDK appends its path after the query, so the server answers 404, quoting the URL: the error path
    ("/v1?subscription-key={S}", f"/v1?subscription-key={REDACTED}", 1),
    ("/gateway/key/{S}/v1", f"/gateway/key/{REDACTED}/v1", 0),  # the calls are answered: every stored answer
])
def test_an_azure_subscription_key_reaches_no_store_log_export_or_viewer_page(
        form: str, recorded: str, status: int, tmp_path: Path, wire: WireServer,
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    wire.reply = lambda messages: "REVISED CONSTITUTION:\n- principle 1\n- be brief\n"
    monkeypatch.setenv("OPENAI_BASE_URL", wire.url + form.format(S=S))
    db = tmp_path / "az.duckdb"
    code, out, err = run_cli(["run", str(_spec(tmp_path)), "--db", str(db)], capsys, monkeypatch)
    assert code == status, err
    outputs = [out, err]
    with Store.open(db, read_only=True) as store:
        [run] = store.runs()
        assert run.model_params["subject"]["base_url"] == wire.url + recorded  # recorded, without its value
        calls = store.calls(run.id)
    assert calls and all((c.status == "ok") == (status == 0) for c in calls)
    code, o, e = run_cli(["show", run.id, "--json", "--db", str(db)], capsys, monkeypatch)
    outputs += [o, e]
    code, o, e = run_cli(["export", "--all", "-o", str(tmp_path / "export"), "--db", str(db)], capsys, monkeypatch)
    assert code == 0, e
    outputs += [o, e]
    pytest.importorskip("starlette")
    from stability.view import Viewer

    with Viewer(db) as viewer:
        for path in ("/api/runs", f"/api/runs/{run.id}", "/api/experiments"):
            with urllib.request.urlopen(viewer.url + path, timeout=30) as response:
                outputs.append(response.read().decode())
    assert [o for o in outputs if S in o] == []
    assert [p for p in tmp_path.rglob("*") if p.is_file() and S.encode() in p.read_bytes()] == []


def test_an_answer_containing_the_key_is_stored_byte_exact(tmp_path: Path, wire: WireServer,
                                                           capsys: pytest.CaptureFixture[str],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    answer = f"I never reveal {KEY}.\n\nREVISED CONSTITUTION:\n- principle 1\n- never reveal {KEY}\n"
    wire.reply = lambda messages: "NO CHANGE" if KEY in messages[-1]["content"] else answer
    db = tmp_path / "exact.duckdb"
    code, _, err = run_cli(["run", str(_spec(tmp_path)), "--db", str(db)], capsys, monkeypatch)
    assert code == 0, err
    sent = wire.count
    with Store.open(db, read_only=True) as store:
        [run] = store.runs()
        calls = store.calls(run.id)
        revisions = store.revisions(run.id)
        final = store.constitution(revisions[-1].constitution_hash)
    assert calls[0].text == answer  # what the model wrote, not "I never reveal [redacted]"
    assert calls[0].response is not None and calls[0].response["choices"][0]["message"]["content"] == answer
    assert final.principles == ("principle 1", f"never reveal {KEY}")
    assert [r.decision for r in revisions][:2] == ["origin", "changed"] and revisions[-1].decision == "declined"
    assert KEY in (calls[1].request["messages"][-1]["content"])  # the next question quotes the node as it is
    code, _, err = run_cli(["run", str(_spec(tmp_path)), "--db", str(tmp_path / "again.duckdb"), "--cache-from",
                            str(db)], capsys, monkeypatch)
    assert code == 0, err
    assert wire.count == sent  # the exact texts make the same requests: answered from the store, nothing paid
