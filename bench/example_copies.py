"""How often the local base model copies a worked example instead of revising the constitution it was shown.

    python bench/example_copies.py [--seeds 20] [--examples protocols/fresh-instance/examples.yaml] [--out FILE]

For each run seed 0..N-1 it asks ``local/gemma-3-270m`` the first question of README command 1 exactly as
``stability iterate --protocol fresh-instance --constitution constitutions/contradictory/honesty-vs-comfort.md
--temperature 0.7 --max-tokens 256 --seed SEED`` asks it (same few-shot frame, same per-call seed), with the
worked examples read from ``--examples`` (an older examples file measures the old design). Each answer is read by
the answer contract with those examples; a copy is an answer whose principles repeat an example's. No database is
written. Prints, and writes to ``--out`` (after every answer; a rerun asks only the seeds it lacks), JSON: the
counts per outcome (copied, revised, restated, declined, parse_failure, truncated) and every answer.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import platform
import subprocess
import time
from collections import Counter
from importlib.metadata import version
from pathlib import Path

import yaml

from stability.answer import example_constitutions, read_answer
from stability.constitution import parse_file
from stability.engine.templates import Templates, conversation, derive_seed
from stability.models.base import GenerateConfig
from stability.models.registry import get_model

CONSTITUTION = "constitutions/contradictory/honesty-vs-comfort.md"


def commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def examples_digest(examples_text: str) -> str:
    """sha256 of the examples as the model sees them (parsed YAML, so comments do not count), 16 hex digits."""
    canonical = json.dumps(yaml.safe_load(examples_text), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--examples", default="protocols/fresh-instance/examples.yaml")
    parser.add_argument("--temperature", type=float, default=0.7)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    examples_text = Path(args.examples).read_text(encoding="utf-8")
    templates = Templates("fresh-instance")
    templates.text["examples.yaml"] = examples_text
    shown = example_constitutions(examples_text)
    start = parse_file(CONSTITUTION)
    model = get_model("local/gemma-3-270m")
    # --out is rewritten after every answer, and the seeds it already holds are not asked again (same examples,
    # same settings): a killed measurement resumes where it stopped.
    answers: list[dict[str, object]] = []
    if args.out and args.out.exists():
        kept = json.loads(args.out.read_text(encoding="utf-8"))
        if (kept["examples_sha256"], kept["temperature"], kept["max_tokens"]) == (
                examples_digest(examples_text), args.temperature, args.max_tokens):
            answers = [a for a in kept["answers"] if a["seed"] < args.seeds]
    done = {a["seed"] for a in answers}
    began = time.perf_counter()
    for seed in range(args.seeds):
        if seed in done:
            continue
        messages = conversation(templates, "user.md", start, few_shot=True)
        config = GenerateConfig(temperature=args.temperature, max_tokens=args.max_tokens,
                                seed=derive_seed(seed, 1, "revise"))
        output = asyncio.run(model.generate(messages, config))
        reading = read_answer(output.text, finish_reason=output.finish_reason, examples=shown)
        outcome: str = reading.kind
        if reading.kind == "revised" and reading.constitution is not None:
            outcome = "restated" if reading.constitution.hash == start.hash else "revised"
        if reading.problem and reading.problem.startswith("copied the example"):
            outcome = "copied"
        answers.append({"seed": seed, "outcome": outcome, "problem": reading.problem,
                        "finish_reason": output.finish_reason, "text": output.text})
        print(f"seed {seed:2d}: {outcome:14s} {' '.join(output.text.split())[:90]!r}", flush=True)
        report = summary(args, examples_text, answers, time.perf_counter() - began)
        if args.out:
            args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    report = summary(args, examples_text, answers, time.perf_counter() - began)
    print(json.dumps({k: v for k, v in report.items() if k != "answers"}, indent=2))


def summary(args: argparse.Namespace, examples_text: str, answers: list[dict[str, object]],
            seconds: float) -> dict[str, object]:
    answers = sorted(answers, key=lambda a: int(str(a["seed"])))
    counts = Counter(str(a["outcome"]) for a in answers)
    return {
        "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "commit": commit(), "examples": args.examples,
        "examples_sha256": examples_digest(examples_text),
        "model": "local/gemma-3-270m", "llama_cpp_python": version("llama-cpp-python"),
        "python": platform.python_version(), "constitution": CONSTITUTION, "temperature": args.temperature,
        "max_tokens": args.max_tokens, "seeds": len(answers), "seconds_this_session": round(seconds, 1),
        "copies": counts.get("copied", 0), "copy_rate": round(counts.get("copied", 0) / max(len(answers), 1), 3),
        "counts": dict(sorted(counts.items())), "answers": answers,
    }


if __name__ == "__main__":
    main()
