"""A small experiment for the viewer's tests, run through the wire server with a fake key: merges, a cycle,
fixed points, a failed attempt that was retried."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from stability.experiment import run_experiment
from stability.testing.specs import write_spec
from stability.testing.wire_server import WireServer

KEY = "sk-viewer-test-key-7f3a9c21d4"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def answer(messages: list[dict[str, Any]]) -> str:
    """Swing between two texts (a cycle) from a start about swinging; otherwise converge on one shared text (a
    merge), then decline (a fixed point)."""
    text = messages[-1]["content"]
    if "swing" in text:
        return "REVISED CONSTITUTION:\n- swing " + ("left" if "- swing right" in text else "right") + "\n"
    if "- be honest about uncertainty" in text and "- be kind" in text:
        return "NO CHANGE"
    return "REVISED CONSTITUTION:\n- be honest about uncertainty\n- be kind\n"


def spec(folder: Path, name: str = "viewer-grid", replicates: int = 2, latency_note: str = "") -> Path:
    write(folder / "c" / "alpha.md", "- tell the truth\n- help people\n")
    write(folder / "c" / "beta.md", "- be kind\n- respect privacy\n")
    write(folder / "c" / "swing.md", "- swing left\n")
    return write_spec(folder / f"{name}.yaml", name=name, models=["openai/fake"],
                      constitutions=[f"{folder}/c/*.md"], protocol="fresh-instance",
                      options={"max_steps": 6, "max_parse_failures": 2}, replicates=replicates,
                      concurrency={"openai": 2}, max_parallel_runs=2)


def environment(server: WireServer) -> dict[str, str]:
    return {"OPENAI_BASE_URL": server.url + "/v1", "OPENAI_API_KEY": KEY, "STABILITY_ALLOW_NETWORK": "1"}


def build(folder: Path, db: Path) -> str:
    """Run the grid into ``db``; returns the experiment id."""
    saved = {k: os.environ.get(k) for k in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "STABILITY_ALLOW_NETWORK")}
    with WireServer(reply=answer) as server:
        server.fail_next(500)
        os.environ.update(environment(server))
        try:
            result = run_experiment(spec(folder), db)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
    return result.experiment_id
