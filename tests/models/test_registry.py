"""The provider registry: names, the extras a missing SDK names, and providers added by an installed plugin."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from stability.calls import CallPath, RetryPolicy
from stability.errors import MissingDependency, ModelNotFound, StabilityError
from stability.models.registry import (
    ENTRY_POINT_GROUP,
    PROVIDERS,
    canonical_name,
    check_model_name,
    get_model,
    provider_status,
)
from stability.store import Store
from stability.vocabulary import GenerateConfig, Message
from tests.conftest import ROOT, write

PLUGIN = "stability_echo_plugin"

# A provider as an outside package writes it: a light Provider in the package, the model in a module of its own.
PLUGIN_INIT = """
from stability.models.registry import Provider

provider = Provider("echoplug", "stability_echo_plugin.model", "echoes the last message, upper-cased",
                    keys=("ECHOPLUG_TOKEN",))
"""
PLUGIN_MODEL = """
from stability.models.base import GenerateConfig, Message, Model, Output, TransientError


class Busy(Exception):
    '''The plugin's own "try again later" error, which only the plugin knows is transient.'''


class EchoModel(Model):
    def __init__(self, name):
        super().__init__(name)
        self.failures = 1 if name.endswith("-busy-once") else 0

    def transient(self, err):
        return TransientError(f"busy: {err}", status=503) if isinstance(err, Busy) else None

    async def _answer(self, messages):
        if self.failures:
            self.failures -= 1
            raise Busy("come back later")
        return Output(text="NO CHANGE" if self.name == "echoplug/decline" else messages[-1].content.upper())

    async def generate(self, messages: list[Message], config: GenerateConfig) -> Output:
        return await self.sending(self._answer(messages))


def create(full_name):
    return EchoModel(full_name)
"""
BROKEN_INIT = "provider = 'not a Provider'\n"


def install_plugin(site: Path, entry_points: str, init: str = PLUGIN_INIT) -> Path:
    """Install the plugin into ``site`` as pip would: the package, and a dist-info carrying entry_points.txt."""
    write(site / PLUGIN / "__init__.py", textwrap.dedent(init))
    write(site / PLUGIN / "model.py", textwrap.dedent(PLUGIN_MODEL))
    info = site / "stability_echo_plugin-0.1.dist-info"
    write(info / "METADATA", "Metadata-Version: 2.1\nName: stability-echo-plugin\nVersion: 0.1\n")
    write(info / "entry_points.txt", f"[{ENTRY_POINT_GROUP}]\n{textwrap.dedent(entry_points)}")
    return site


@pytest.fixture
def forget_plugin() -> Iterator[None]:
    yield
    for name in [m for m in sys.modules if m == PLUGIN or m.startswith(PLUGIN + ".")]:
        del sys.modules[name]


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, forget_plugin: None) -> Path:
    site = install_plugin(tmp_path / "site", f"echoplug = {PLUGIN}:provider\n")
    monkeypatch.syspath_prepend(str(site))
    return site


def test_bare_names_map_to_providers() -> None:
    assert canonical_name("claude-sonnet-4") == "anthropic/claude-sonnet-4"
    assert canonical_name("gpt-4o") == "openai/gpt-4o"
    assert canonical_name("o3-mini") == "openai/o3-mini"
    assert canonical_name("o1") == "openai/o1"
    assert canonical_name("litellm/mistral/small") == "litellm/mistral/small"


def test_unknown_names_get_did_you_mean() -> None:
    with pytest.raises(ModelNotFound, match="did you mean 'openai/'"):
        get_model("opnai/gpt-4o")
    with pytest.raises(ModelNotFound, match="did you mean 'local/gemma-3-270m'"):
        get_model("local/gemma-270m")
    with pytest.raises(ModelNotFound, match="expected PROVIDER/NAME"):
        get_model("mystery")


def test_provider_status_lists_every_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    statuses = {s.prefix: s for s in provider_status()}
    assert set(statuses) == {"anthropic", "openai", "litellm", "local", "hf", "scripted"}
    assert not statuses["openai"].usable and "OPENAI_API_KEY" in statuses["openai"].reason
    assert statuses["scripted"].usable
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:1/v1")
    assert {s.prefix: s for s in provider_status()}["openai"].usable


def test_a_missing_sdk_names_its_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-whatever-123")
    monkeypatch.setitem(sys.modules, "openai", None)  # as if the openai SDK were not installed
    with pytest.raises(MissingDependency) as caught:
        get_model("openai/gpt-4o")
    assert str(caught.value) == "openai/: openai not installed; pip install 'stability[openai]'"
    status = {s.prefix: s for s in provider_status()}["openai"]
    assert not status.usable and "pip install 'stability[openai]'" in status.reason


def test_every_extra_a_provider_names_is_in_pyproject() -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    named = {p.extra for p in PROVIDERS.values() if p.extra}
    assert named == {"openai", "anthropic", "litellm", "hf"}
    for extra in named:
        installs = " ".join(extras[extra]).replace("-", "_")
        assert all(module in installs for module in PROVIDERS[extra].requires if module != "torch"), extra
    [everything] = extras["all"]
    assert set(everything.removeprefix("stability[").removesuffix("]").split(",")) == named
    assert "stability[all]" in extras["dev"]  # the README's test command installs every provider


def test_a_plugin_provider_resolves_lazily(plugin: Path) -> None:
    assert check_model_name("echoplug/anything") == "echoplug/anything"
    assert PLUGIN not in sys.modules  # found from the installed metadata alone
    statuses = {s.prefix: s for s in provider_status()}
    assert statuses["echoplug"].plugin == "stability-echo-plugin"
    assert statuses["echoplug"].summary == "echoes the last message, upper-cased"
    assert not statuses["echoplug"].usable and statuses["echoplug"].reason == "set ECHOPLUG_TOKEN"
    assert f"{PLUGIN}.model" not in sys.modules  # listing it loaded the Provider, not the model
    model = get_model("echoplug/shout")
    assert type(model).__module__ == f"{PLUGIN}.model" and model.name == "echoplug/shout"
    output = asyncio.run(model.generate([Message(role="user", content="hello")], GenerateConfig()))
    assert output.text == "HELLO"
    with pytest.raises(ModelNotFound, match="one of anthropic, .*, echoplug; did you mean 'echoplug/'"):
        get_model("echoplugg/x")


def test_a_plugins_own_retry_classification_drives_the_call_path(plugin: Path, db: Path) -> None:
    model = get_model("echoplug/x-busy-once")
    with Store.open(db) as store:
        path = CallPath(store, model, "r-1", policy=RetryPolicy(initial=0, jitter=0, max_attempts=3))
        record = asyncio.run(path([Message(role="user", content="hi")], GenerateConfig(), step=1, purpose="revise"))
    assert record.text == "HI" and record.attempts == 2
    assert [r["status"] for r in record.retries] == [503]
    assert "busy: come back later" in record.retries[0]["error"]


def test_broken_plugins_are_one_line_and_cannot_take_a_built_in_prefix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                        forget_plugin: None) -> None:
    site = install_plugin(tmp_path / "site", f"echoplug = {PLUGIN}:provider\nopenai = {PLUGIN}:provider\n",
                          init=BROKEN_INIT)
    monkeypatch.syspath_prepend(str(site))
    statuses = [s for s in provider_status() if s.prefix in ("echoplug", "openai")]
    assert [(s.prefix, s.plugin) for s in statuses] == [("openai", None), ("echoplug", "stability-echo-plugin")]
    assert "is a str, expected a stability Provider" in statuses[1].reason and not statuses[1].usable
    with pytest.raises(StabilityError, match=r"^plugin 'stability_echo_plugin:provider' \(entry point 'echoplug'"):
        get_model("echoplug/x")


def test_the_cli_lists_and_runs_a_plugin_provider(plugin: Path, tmp_path: Path, db: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(plugin), str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "ECHOPLUG_TOKEN": "t"}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "stability", *args], capture_output=True, text=True, env=env,
                              timeout=120, cwd=tmp_path)

    listed = cli("models", "--json")
    assert listed.returncode == 0, listed.stderr
    row = {m["prefix"]: m for m in json.loads(listed.stdout)}["echoplug"]
    assert row["usable"] and row["plugin"] == "stability-echo-plugin"
    start = write(tmp_path / "c.md", "- no change\n")
    done = cli("iterate", "--model", "echoplug/decline", "--constitution", str(start), "--db", str(db))
    assert done.returncode == 0, done.stderr
    assert "stop: declined" in done.stdout


def test_without_any_extra_the_cli_runs_and_names_the_missing_one(tmp_path: Path, db: Path) -> None:
    blocked = ("openai", "anthropic", "litellm", "peft", "gguf", "accelerate")  # what the extras install
    prelude = (f"import sys; sys.modules.update(dict.fromkeys({blocked!r})); from stability.cli.app import main; "
               "sys.argv[0] = 'stability'; main()")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", prelude, *args], capture_output=True, text=True, timeout=120,
                              cwd=ROOT, env={**os.environ, "OPENAI_API_KEY": "sk-whatever-123"})

    start = write(tmp_path / "c.md", "- a\n")
    done = cli("iterate", "--model", "scripted/decline", "--constitution", str(start), "--db", str(db))
    assert done.returncode == 0, done.stderr
    statuses = {m["prefix"]: m for m in json.loads(cli("models", "--json").stdout)}
    assert statuses["anthropic"]["reason"] == "missing package: anthropic (pip install 'stability[anthropic]')"
    assert statuses["hf"]["reason"] == "missing package: peft (pip install 'stability[hf]')"
    refused = cli("iterate", "--model", "openai/gpt-4o", "--constitution", str(start), "--db", str(db))
    assert refused.returncode == 2
    assert refused.stderr == "error: openai/: openai not installed; pip install 'stability[openai]'\n"
