"""What storing a conversation's shared prefix once would save: a 20-step in-context run, measured.

    python bench/in_context_storage.py [--steps 20]

Runs ``in-context-iteration`` for ``--steps`` steps with a scripted model that revises every time (so the
conversation grows by two messages a step), then compares the stored calls' request JSON with what a
content-addressed message chain (each message stored once, keyed by its parent's hash and itself, the way
simonw/llm stores conversations) would hold. Prints one JSON object. Nothing here changes how calls are stored.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
from pathlib import Path

from stability.engine import IterateConfig, iterate
from stability.models import scripted
from stability.models.scripted import ScriptedModel
from stability.store import Store


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    asked = [0]

    def revise(_: object) -> str:
        asked[0] += 1
        return "Here is my revision.\n\nREVISED CONSTITUTION:\n" + "".join(
            f"- principle {i}, as of step {asked[0]}\n" for i in range(8))

    model = ScriptedModel(fn=revise, name="scripted/in-context-storage")
    scripted.register("in-context-storage", lambda: model)
    with tempfile.TemporaryDirectory() as folder:
        start = Path(folder) / "start.md"
        start.write_text("".join(f"- starting principle {i}\n" for i in range(8)), encoding="utf-8")
        db = Path(folder) / "in-context.duckdb"
        result = iterate(IterateConfig(protocol="in-context-iteration", model="scripted/in-context-storage",
                                       constitution=str(start), options={"max_steps": args.steps}), db)
        with Store.open(db, read_only=True) as store:
            calls = store.calls(result.run.id)
    requests = sum(len(json.dumps(c.request)) for c in calls)
    messages = sum(len(json.dumps(c.request["messages"])) for c in calls)
    seen: set[str] = set()
    distinct = 0
    for call in calls:
        parent = ""
        for message in call.request["messages"]:
            node = hashlib.sha256((parent + json.dumps(message, sort_keys=True)).encode()).hexdigest()
            if node not in seen:
                seen.add(node)
                distinct += len(json.dumps(message))
            parent = node
    chained = requests - messages + distinct + len(calls) * 71  # each call keeps one chain hash (sha256:...)
    print(json.dumps({
        "calls": len(calls), "messages_sent": sum(len(c.request["messages"]) for c in calls),
        "distinct_messages": len(seen), "request_json_bytes": requests,
        "response_json_bytes": sum(len(json.dumps(c.response)) for c in calls),
        "request_bytes_as_message_chains": chained, "request_bytes_saved": round(1 - chained / requests, 3),
    }, indent=2))


if __name__ == "__main__":
    main()
