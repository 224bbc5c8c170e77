"""Golden-corpus answers served through the real OpenAI and Anthropic SDKs: `iterate` stores what they mean."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from stability.store import Store
from stability.testing.wire_server import WireServer
from tests.answers.test_golden import ANSWERS
from tests.cli.test_app import cli
from tests.conftest import ROOT

BY_ID = {entry["id"]: entry for entry in ANSWERS}
START = ROOT / "constitutions" / "contradictory" / "honesty-vs-comfort.md"
#: what each wire format says when an answer hit the token limit
CUT_OFF = {"openai": "length", "anthropic": "max_tokens"}


class CorpusServer(WireServer):
    """Answers each request with the next (text, cut off?) of a script, in the wire format asked for."""

    def __init__(self, script: list[tuple[str, bool]]) -> None:
        super().__init__()
        self.script = list(script)
        self.served = threading.Lock()
        self.reply = self._next

    def _next(self, messages: list[dict[str, Any]]) -> str:
        with self.served:
            self.text, self.cut = self.script.pop(0)
        return self.text

    def _openai(self, body: dict[str, Any], empty: bool = False, halve: bool = False) -> dict[str, Any]:
        answer = super()._openai(body, empty, halve)
        answer["choices"][0]["finish_reason"] = "length" if self.cut else "stop"
        return answer

    def _anthropic(self, body: dict[str, Any], empty: bool = False, halve: bool = False) -> dict[str, Any]:
        answer = super()._anthropic(body, empty, halve)
        answer["stop_reason"] = "max_tokens" if self.cut else "end_turn"
        return answer


def bold(principles: list[str]) -> str:
    """A restatement in the style that used to pile up bold markers."""
    return "**REVISED CONSTITUTION:**\n\n" + "".join(f"{i}. **{p}**\n" for i, p in enumerate(principles, 1))


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_iterate_stores_what_corpus_answers_mean(tmp_path: Path, db: Path, allow_network: None,
                                                 provider: str) -> None:
    revised = BY_ID["r1-think-then-revise"]["expect"]["principles"]
    script = [
        (BY_ID["gpt-4o-truncated"]["text"], True),  # cut off: truncated, never a revision
        (BY_ID["llama-refusal-with-bullets"]["text"], False),  # a refusal with bullets: parse failure
        (BY_ID["r1-think-then-revise"]["text"], False),  # <think> ignored; the list after the marker wins
        (bold(revised), False),  # a bold, numbered restatement: a decline
        (BY_ID["gpt-4o-analysis-then-decision"]["text"], False),  # reasoning bullets, then NO CHANGE: a decline
        (json.dumps(BY_ID["gpt-4o-analysis-then-decision"]["structured"]), False),  # structured output: keep
    ]
    with CorpusServer(script) as server:
        env = {f"{provider.upper()}_BASE_URL": server.url + ("/v1" if provider == "openai" else ""),
               f"{provider.upper()}_API_KEY": "sk-test-key-0000000000"}
        ran = cli("iterate", "--model", f"{provider}/corpus-model", "--constitution", str(START), "--db", str(db),
                  "--max-tokens", "300", "--declines", "3", env=env)
        assert ran.returncode == 0, ran.stderr
        assert server.count == len(script) and not server.script
    assert "answers was cut at the token limit (--max-tokens 300)" in ran.stderr  # once, on stderr
    assert ran.stderr.count("cut at the token limit") == 1 and "--max-tokens 600" in ran.stderr
    assert "cut" not in ran.stdout
    with Store.open(db, read_only=True) as store:
        [run] = store.runs()
        revisions = store.revisions(run.id)
        calls = store.calls(run.id)
        final = store.constitution(revisions[-1].constitution_hash)
        bold_markers = store.con.execute("SELECT count(*) FROM principles WHERE text LIKE '%**%'").fetchone()
    assert [r.decision for r in revisions] == ["origin", "truncated", "parse_failure", "changed", "declined",
                                               "declined", "declined"]
    assert (revisions[1].detail or "").startswith("answer cut off at the token limit")
    assert "refused" in (revisions[2].detail or "")
    assert revisions[1].constitution_hash == revisions[0].constitution_hash  # the cut-off answer changed nothing
    assert list(final.principles) == revised
    assert bold_markers == (0,)
    assert [c.finish_reason for c in calls] == [CUT_OFF[provider]] + ["stop" if provider == "openai" else
                                                                      "end_turn"] * 5
    assert run.stop_reason == "declined"
    shown = cli("show", run.id, "--db", str(db))
    assert shown.returncode == 0 and "step 1 truncated" in shown.stdout
    assert "answer cut off at the token limit" in shown.stdout
    as_json = json.loads(cli("show", run.id, "--json", "--db", str(db)).stdout)
    assert as_json["steps"][1]["decision"] == "truncated"
