"""The provider SDK's import on a thread of its own at ``iterate``'s start (issue 30, start-up)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from stability.models.preload import KEYS, SDKS, preload
from stability.models.registry import PROVIDERS
from tests.conftest import ROOT


def test_each_preloaded_sdk_is_what_its_provider_requires() -> None:
    assert {prefix: PROVIDERS[prefix].requires[0] for prefix in SDKS} == SDKS
    assert {prefix: PROVIDERS[prefix].keys for prefix in SDKS} == KEYS


def test_a_provider_without_an_sdk_or_a_key_starts_no_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    assert preload("scripted/decline") is None
    assert preload(None) is None
    assert preload("gpt-4o") is None  # a bare name: the registry canonicalises it later; nothing preloaded
    for name in KEYS["anthropic"]:
        monkeypatch.delenv(name, raising=False)
    assert preload("anthropic/claude-x") is None  # the command stops at "set ANTHROPIC_API_KEY": no import


PROBE = """
import json, sys, threading
from stability.models.preload import SHARED, preload
before = "openai" in sys.modules
thread = preload("openai/m")
shared = all(name in sys.modules for name in SHARED)  # imported by this thread before the SDK's thread starts
again = preload("openai/m")
thread.join(120)
print(json.dumps({"before": before, "daemon": thread.daemon, "shared": shared, "again": again is None,
                  "loaded": "openai" in sys.modules and hasattr(sys.modules["openai"], "AsyncOpenAI")}))
"""


def test_the_sdk_is_imported_on_a_daemon_thread_once() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, cwd=ROOT, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "OPENAI_API_KEY": "sk-not-a-key"}, check=True)
    assert json.loads(done.stdout) == {"before": False, "daemon": True, "shared": True, "again": True,
                                       "loaded": True}
