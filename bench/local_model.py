"""Tokens per second of ``local/gemma-3-270m`` against raw llama-cpp-python on the same prompt, in one run.

    python bench/local_model.py [--reps 7] [--max-tokens 128]

Both sides load the same GGUF, reset the KV cache before each generation, and sample with the same seed and
stop-free settings, so both generate exactly ``--max-tokens`` tokens. Reported: median wall time, median
generated tokens per second (generated tokens / wall time, prompt processing included), and the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time

from stability.models.local import N_CTX, gguf_path, render_prompt
from stability.models.registry import get_model
from stability.vocabulary import GenerateConfig, Message

MESSAGES = [
    Message(role="system", content="You are reviewing the constitution that guides your own behaviour."),
    Message(role="user", content="This is your constitution:\n\n- I am honest.\n- I avoid causing harm.\n"
                                 "- I am helpful.\n\nWrite an improved version with more principles."),
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--max-tokens", type=int, default=128)
    args = parser.parse_args()

    from llama_cpp import Llama

    raw = Llama(model_path=str(gguf_path()), n_ctx=N_CTX, verbose=False, seed=0)
    ours = get_model("local/gemma-3-270m")
    prompt = render_prompt(MESSAGES)
    config = GenerateConfig(temperature=0.7, max_tokens=args.max_tokens, seed=5, stop=("<never>",))
    results: dict[str, list[tuple[float, int]]] = {"raw": [], "stability": []}
    for _ in range(args.reps):  # interleaved, so drift on a noisy machine hits both sides alike
        raw.reset()
        start = time.perf_counter()
        out = raw.create_completion(prompt, max_tokens=args.max_tokens, temperature=0.7, top_p=0.95, seed=5,
                                    stop=["<never>"])
        results["raw"].append((time.perf_counter() - start, out["usage"]["completion_tokens"]))
        start = time.perf_counter()
        output = asyncio.run(ours.generate(MESSAGES, config))
        results["stability"].append((time.perf_counter() - start, output.usage.output_tokens))
    report = {}
    for side, samples in results.items():
        report[side] = {
            "median_s": round(statistics.median(s for s, _ in samples), 3),
            "median_tok_per_s": round(statistics.median(n / s for s, n in samples), 1),
            "tokens": samples[0][1],
            "prompt_tokens": output.usage.input_tokens,
        }
    report["ratio_stability_over_raw_time"] = round(report["stability"]["median_s"] / report["raw"]["median_s"], 3)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
