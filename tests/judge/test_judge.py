"""``stability judge``: every question end to end with scripted judges, stored once, re-scored without re-running."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stability.cli.app import app
from stability.errors import StabilityError
from stability.judge.judging import judge
from stability.models import scripted
from stability.models.scripted import ScriptedModel
from stability.store import Store
from stability.store.judgements import judgements_of
from stability.testing.judges import as_json, garbage_judge, rule_judge
from stability.vocabulary import Message
from tests.analysis import experiment


def _judge(name: str, fn: object, structured: bool = False) -> ScriptedModel:
    model = ScriptedModel(fn=fn, name=f"scripted/{name}", structured=structured)  # type: ignore[arg-type]
    scripted.register(name, lambda: model)  # one instance: a scripted instance is its own cache identity
    return model


@pytest.fixture
def runs(tmp_path: Path, db: Path) -> list[str]:
    return experiment.build(db, tmp_path)


def _subjects_seen(model: ScriptedModel) -> int:
    return len(model.calls)


def test_every_question_end_to_end(runs: list[str], db: Path) -> None:
    judge_model = _judge("rule-judge", rule_judge)
    result = judge(runs, "scripted/rule-judge", db=db, embedder="hashing")
    tallies = result.questions
    # honesty-vs-comfort (resolver removes side 4: clash 1-4 resolved by removal, 2-5 still in place) and
    # brevity-vs-thoroughness (both sides reworded: the rule judge sees the sides gone word for word)
    assert tallies["clash"].subjects == 3 and tallies["clash"].verdicts == {"resolved": 2, "unresolved": 1}
    # the two rewordings of brevity-vs-thoroughness, found by the alignment and asked about
    assert tallies["equivalence"].subjects >= 2 and sum(tallies["equivalence"].verdicts.values()) == \
        tallies["equivalence"].subjects
    assert tallies["contradiction"].subjects == 2 and tallies["contradiction"].verdicts == {"consistent": 2}
    assert tallies["refusal"].subjects > 0 and set(tallies["refusal"].verdicts) == {"answer"}  # NO CHANGE answers
    assert result.sent == len(judge_model.calls) == sum(t.subjects for t in tallies.values())
    with Store.open(db, read_only=True) as store:
        stored = judgements_of(store, "scripted/rule-judge")
        assert len(stored) == result.sent
        clash = [j for j in stored if j.question == "clash"]
        removed = [j for j in clash if j.verdict == "resolved"]
        assert {j.how for j in removed} == {"removed"} and all(j.rationale for j in clash)
        assert all(j.raw_answer and j.call_id for j in stored)
        # judge calls are stored calls, yet in none of the experiment's runs
        judge_calls = store.calls(result.judge_key and f"judge-{result.judge_key.removeprefix('sha256:')[:16]}")
        assert {c.id for c in judge_calls} == {j.call_id for j in stored}
        assert all(not c.purpose.startswith("judge") for r in runs for c in store.calls(r))
        assert [r.id for r in store.runs()] == runs  # no run row for the judge


def test_a_repeated_judge_sends_nothing_and_a_second_judge_asks_no_experiment_model(runs: list[str],
                                                                                     db: Path) -> None:
    first = _judge("first-judge", rule_judge)
    with Store.open(db, read_only=True) as store:
        experiment_calls = sum(len(store.calls(r)) for r in runs)
    done = judge(runs, "scripted/first-judge", db=db, embedder="hashing")
    again = judge(runs, "scripted/first-judge", db=db, embedder="hashing")
    assert done.sent > 0 and again.sent == 0 and len(first.calls) == done.sent
    assert all(t.stored == t.subjects and t.asked == 0 for t in again.questions.values())
    # a second judge, answering with the schema: its own calls only; the experiment's models are asked nothing
    second = _judge("second-judge", lambda m: as_json(rule_judge(m)), structured=True)
    experiment.register()  # fresh experiment model instances, so any call to them would show
    other = judge(runs, "scripted/second-judge", ["clash", "contradiction"], db=db, embedder="hashing")
    assert other.sent == len(second.calls) == 5
    with Store.open(db, read_only=True) as store:
        assert sum(len(store.calls(r)) for r in runs) == experiment_calls
        structured = [j for j in judgements_of(store, "scripted/second-judge")]
        assert len(structured) == 5 and all(j.verdict for j in structured)


def test_the_cli_repeated_sends_zero_requests(runs: list[str], db: Path) -> None:
    _judge("cli-judge", rule_judge)
    args = ["judge", *runs, "--judge", "scripted/cli-judge", "--questions", "clash", "--embedder", "hashing",
            "--db", str(db), "--json"]
    dry = CliRunner().invoke(app, [*args, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.output)["sent"] == 0 and json.loads(dry.output)["questions"]["clash"]["subjects"] == 3
    with Store.open(db, read_only=True) as store:
        assert judgements_of(store) == []  # the dry run wrote nothing
    first = CliRunner().invoke(app, args)
    second = CliRunner().invoke(app, args)
    assert first.exit_code == second.exit_code == 0, first.output + second.output
    assert json.loads(first.output)["sent"] == 3 and json.loads(second.output)["sent"] == 0
    table = CliRunner().invoke(app, args[:-1])
    assert table.exit_code == 0 and "0 requests sent" in table.output and "resolved 2" in table.output


class Killed(BaseException):
    """Like SIGKILL in the middle of a call: nothing below catches it, nothing is stored for the call."""


def test_a_kill_during_judge_then_resume_pays_for_nothing_twice(runs: list[str], db: Path) -> None:
    answered: list[str] = []
    dead = {"now": False, "once": False}

    def dies_after_four(messages: list[Message]) -> str:
        if dead["now"] or (len(answered) == 4 and not dead["once"]):  # gone: no call in flight is answered either
            dead["now"] = dead["once"] = True
            raise Killed
        answered.append(messages[-1].content)
        return rule_judge(messages)

    _judge("mortal-judge", dies_after_four)
    with pytest.raises(Killed):
        judge(runs, "scripted/mortal-judge", db=db, embedder="hashing")
    dead["now"] = False
    resumed = judge(runs, "scripted/mortal-judge", db=db, embedder="hashing")
    total = sum(t.subjects for t in resumed.questions.values())
    with Store.open(db, read_only=True) as store:
        stored = judgements_of(store, "scripted/mortal-judge")
        calls = store.calls(f"judge-{resumed.judge_key.removeprefix('sha256:')[:16]}")
    assert len(stored) == total and all(j.verdict for j in stored)
    # every question was paid for once: the prompts the judge answered are distinct, one per stored call
    assert len(answered) == len(set(answered)) == len(calls) == total
    assert resumed.sent == total - 4  # the four answered before the kill were not sent again


def test_a_garbage_judge_stores_failures_and_no_judgement(runs: list[str], db: Path) -> None:
    garbage = _judge("garbage-judge", garbage_judge)
    result = judge(runs, "scripted/garbage-judge", db=db, embedder="hashing")
    assert all(t.verdicts == {} and t.no_judgement == t.subjects for t in result.questions.values())
    with Store.open(db, read_only=True) as store:
        stored = judgements_of(store, "scripted/garbage-judge")
    assert len(stored) == len(garbage.calls) > 0
    assert all(j.verdict is None and j.problem and "VERDICT" in j.problem for j in stored)
    assert judge(runs, "scripted/garbage-judge", db=db, embedder="hashing").sent == 0  # a failure is stored


def test_the_budget_stops_asking_and_bad_input_is_one_line(runs: list[str], db: Path) -> None:
    _judge("cheap-judge", rule_judge)
    stopped = judge(runs, "scripted/cheap-judge", db=db, embedder="hashing", max_cost=0.0)
    assert stopped.budget_reached and stopped.sent == 0
    # nothing was asked, so nothing is "asked now" or "no judgement": those questions are simply still open
    assert all(t.asked == 0 and t.no_judgement == 0 for t in stopped.questions.values())
    with pytest.raises(StabilityError, match="no question 'vibes'"):
        judge(runs, "scripted/cheap-judge", ["clash,vibes"], db=db)
    bad = CliRunner().invoke(app, ["judge", *runs, "--judge", "scripted/no-such-judge", "--db", str(db)])
    assert bad.exit_code != 0
    with pytest.raises(StabilityError, match="reasoning model accepts only the default temperature"):
        judge(runs, "openai/o3-mini", db=db)  # the judge's temperature 0: refused before anything is asked
    missing = db.parent / "no-such.duckdb"
    with pytest.raises(StabilityError, match="no such database"):
        judge(runs, "scripted/cheap-judge", db=missing)
    assert not missing.exists()  # nothing written


def test_a_judge_behind_the_wire_server(runs: list[str], db: Path, wire: object) -> None:
    from stability.testing.wire_server import WireServer

    assert isinstance(wire, WireServer)
    wire.reply = lambda messages: rule_judge([Message(role="user", content=messages[-1]["content"])])
    wire.structured_reply = lambda messages: json.loads(as_json(rule_judge(
        [Message(role="user", content=messages[-1]["content"])])))
    wire.fail_next(429, retry_after=0.01)
    result = judge(runs, "openai/gpt-4o-mini", ["clash", "contradiction"], db=db, embedder="hashing")
    assert result.questions["clash"].verdicts == {"resolved": 2, "unresolved": 1}
    assert wire.count == 5 + 1  # one retried 429
    again = judge(runs, "openai/gpt-4o-mini", ["clash", "contradiction"], db=db, embedder="hashing")
    assert again.sent == 0 and wire.count == 6
    with Store.open(db, read_only=True) as store:
        stored = judgements_of(store, "openai/gpt-4o-mini")
        assert all(j.verdict for j in stored) and len(stored) == 5
        assert "sk-test-openai-key" not in json.dumps([j.judge_params for j in stored])


def test_sigkill_during_judge_then_resume_pays_for_nothing_twice(runs: list[str], db: Path,
                                                                 allow_network: None) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    from stability.judge.judging import CONCURRENCY
    from stability.testing.wire_server import WireServer
    from tests.conftest import ROOT
    from tests.gates import Gate

    answered_first = 2  # answered before the kill; every later request is held until the process is dead
    gate = Gate(lambda messages: rule_judge([Message(role="user", content=messages[-1]["content"])]),
                allowed=answered_first)

    _judge("counting-judge", rule_judge)
    plan = judge(runs, "scripted/counting-judge", db=db, embedder="hashing", dry_run=True)
    total = sum(t.subjects for t in plan.questions.values())
    assert total > answered_first + CONCURRENCY

    with WireServer(reply=gate) as server:
        env = {**os.environ, "OPENAI_BASE_URL": server.url + "/v1", "OPENAI_API_KEY": "sk-judge-kill-key-0000",
               "STABILITY_ALLOW_NETWORK": "1"}
        args = [sys.executable, "-m", "stability", "judge", *runs, "--judge", "openai/gpt-4o-mini", "--embedder",
                "hashing", "--db", str(db)]
        process = subprocess.Popen(args, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # Every slot refilled with a held request: the first answers' judgements are stored (a slot is freed only
        # once its judgement is written), and CONCURRENCY requests are in flight. No clock decides this.
        deadline = time.monotonic() + 120
        while server.count < answered_first + CONCURRENCY and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.05)
        assert server.count == answered_first + CONCURRENCY, (server.count, process.poll())
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
        killed_at = server.count
        gate.open()
        with Store.open(db, read_only=True) as store:
            stored_before = len(judgements_of(store, "openai/gpt-4o-mini"))
        assert answered_first <= stored_before < total
        done = subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        bodies = server.bodies
    with Store.open(db, read_only=True) as store:
        stored = judgements_of(store, "openai/gpt-4o-mini")
    assert len(stored) == total and all(j.verdict for j in stored)
    # no request answered twice, except those in flight at the kill (at most the 4 asked at once)
    # (a request the kill cut off mid-send is counted, never answered, and has no body)
    assert sum(bodies.values()) == server.count - server.incomplete
    assert sum(n - 1 for n in bodies.values()) <= 4
    assert server.count - killed_at <= total - stored_before
    assert b"sk-judge-kill-key" not in db.read_bytes()



def test_cli_input_errors_are_one_line_exit_2_and_write_nothing(runs: list[str], db: Path) -> None:
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    before = db.read_bytes()
    cases = [(["--judge", "scripted/echo", "--max-cost", "-1"], "--max-cost -1.0"),
             (["--judge", "nosuch/model"], "unknown model 'nosuch/model'"),  # found inside judge(): no progress bar
             (["--judge", "scripted/echo", "r-no-such-run"], "no run 'r-no-such-run'")]
    for extra, message in cases:
        done = subprocess.run([sys.executable, "-m", "stability", "judge", *runs, *extra, "--embedder", "hashing",
                               "--db", str(db)], cwd=ROOT, capture_output=True, text=True, timeout=120,
                              env={**os.environ, "COLUMNS": "200"})
        assert done.returncode == 2, done.stderr
        assert done.stdout == "" and len(done.stderr.strip().splitlines()) == 1 and message in done.stderr
    assert db.read_bytes() == before


def test_sibling_trials_are_not_asked_what_analysis_measures_on_chains_only(runs: list[str], db: Path) -> None:
    from stability.engine import IterateConfig, iterate
    from tests.analysis.experiment import LIBRARY

    siblings = []
    for model, start in (("scripted/canon", "contradictory/honesty-vs-comfort.md"),  # new nodes: with clashes,
                         ("scripted/flip", "consistent/minimal.md")):  # and without
        sibling = iterate(IterateConfig(protocol="free-form-edit", model=model, constitution=str(LIBRARY / start)),
                          db)
        assert sibling.run.status == "done" and len({r.constitution_hash for r in sibling.revisions}) == 2
        siblings.append(sibling.run.id)
    _judge("chain-judge", rule_judge)
    plan = judge([*runs, *siblings], "scripted/chain-judge", ["clash", "contradiction"], db=db,
                 embedder="hashing", dry_run=True)
    assert len(plan.runs) == len(runs) + 2
    chains_only = judge(runs, "scripted/chain-judge", ["clash", "contradiction"], db=db, embedder="hashing",
                        dry_run=True)
    assert {q: t.subjects for q, t in plan.questions.items()} == \
        {q: t.subjects for q, t in chains_only.questions.items()} == {"clash": 3, "contradiction": 2}
