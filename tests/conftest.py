from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from stability.testing.wire_server import WireServer

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _offline_and_fast(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No retry back-off, no stray keys or base URLs from the developer's shell, an embedding cache per test."""
    monkeypatch.setenv("STABILITY_RETRY_INITIAL", "0")
    monkeypatch.setenv("STABILITY_EMBEDDING_CACHE", str(tmp_path / "embedding-cache.duckdb"))
    monkeypatch.setenv("STABILITY_RETRY_JITTER", "0")
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "STABILITY_DB",
                 "STABILITY_ALLOW_NETWORK"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "test.duckdb"


@pytest.fixture
def allow_network(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STABILITY_ALLOW_NETWORK", "1")


@pytest.fixture
def wire(allow_network: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[WireServer]:
    """A local OpenAI/Anthropic server with the SDKs pointed at it and a fake key set."""
    with WireServer() as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.url + "/v1")
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test-openai-key-000000")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
        monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-key-0000000")
        yield server


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def run_protocol(tmp_path: Path, db: Path, protocol: str, outputs: list | None = None, fn=None,  # type: ignore[no-untyped-def]
                 start: str | None = "- a\n- b\n", base: bool = False, roles: dict[str, str] | None = None,
                 seed: int = 0, **options: object):
    """Run ``protocol`` with a scripted subject; return (run id, scripted model)."""
    from stability.engine import IterateConfig, iterate
    from stability.models import scripted
    from stability.models.scripted import ScriptedModel

    model = ScriptedModel(outputs=outputs, fn=fn, name="scripted/test", base_model=base)
    scripted.register("test", lambda: model)
    constitution = str(write(tmp_path / "start.md", start)) if start is not None else None
    result = iterate(IterateConfig(protocol=protocol, model="scripted/test", constitution=constitution,
                                   options=options, roles=roles or {}, seed=seed), db)
    return result.run.id, model


def revised(*principles: str) -> str:
    return "Here is my revision.\n\nREVISED CONSTITUTION:\n" + "".join(f"- {p}\n" for p in principles)


def decisions(db: Path, run_id: str) -> list[str]:
    from stability.store import Store

    with Store.open(db) as store:
        return [r.decision for r in store.revisions(run_id)]


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str],
            monkeypatch: pytest.MonkeyPatch) -> tuple[int, str, str]:
    """Run the CLI in this process (quicker than a subprocess): (exit status, stdout, stderr)."""
    from stability.cli.app import main

    monkeypatch.setattr(sys, "argv", ["stability", *args])
    try:
        main()
        code = 0
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    out, err = capsys.readouterr()
    return code, out, err
