"""Seconds per LoRA training step and per generation of ``hf/gemma-3-270m``, in one run.

    python bench/finetune.py [--steps 6] [--reps 3] [--max-tokens 48]

- Load: loading the converted HF folder (the GGUF is dequantised once beforehand, not timed here).
- Training: ``train_lora`` on the fine-tune-reflect training shapes: a recitation example (~40 tokens) and a
  reflection trace (the few-shot fresh-instance prompt, ~350 tokens), batch 1, one forward pass per step.
  Reported: median seconds per optimizer step (wall time / steps, including the before/after loss passes,
  divided out separately below).
- Generation: the fresh-instance reflection prompt, seeded, ``--max-tokens`` tokens forced (a stop string that
  never occurs), with and without an adapter. Reported: median wall seconds and tokens per second.

Prints one JSON object. The load average is printed too: on a shared machine, other processes slow every number.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from stability.constitution import Constitution
from stability.engine.templates import Templates
from stability.finetune import TrainerParams, TrainingExample
from stability.models.hf import HFModel
from stability.models.hf_training import train_lora
from stability.models.registry import get_model
from stability.protocols.fresh_instance import revision_messages
from stability.vocabulary import GenerateConfig, Message


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=48)
    args = parser.parse_args()

    started = time.perf_counter()
    model = get_model("hf/gemma-3-270m")
    assert isinstance(model, HFModel)
    load_s = time.perf_counter() - started

    constitution = Constitution.from_principles(["I am honest.", "I avoid causing harm.", "I am helpful."])
    reflect = revision_messages(Templates("fresh-instance"), constitution, few_shot=True)
    shapes = {
        "recitation": TrainingExample(messages=[Message(role="user", content="Recite your constitution.")],
                                      completion=constitution.text),
        "trace": TrainingExample(messages=reflect, completion="REVISED CONSTITUTION:\n" + constitution.text),
    }
    out: dict[str, object] = {"device": model.base.device, "dtype": model.base.dtype, "load_s": round(load_s, 2),
                              "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp:
        adapter = None
        for name, example in shapes.items():
            per_step = []
            for rep in range(args.reps):
                params = TrainerParams(steps=args.steps, grad_accum=1, learning_rate=1e-3, seed=rep)
                result = train_lora(model.base, [example], params, Path(tmp) / f"{name}-{rep}")
                per_step.append(result.seconds / args.steps)
                adapter = result.adapter
            out[f"train_{name}_s_per_step"] = round(statistics.median(per_step), 3)
            out[f"train_{name}_tokens"] = result.tokens // args.steps
        config = GenerateConfig(temperature=0.7, max_tokens=args.max_tokens, stop=("<never>",))
        for label, variant in (("base", model), ("adapter", model.with_adapter(adapter))):
            times, tokens = [], []
            for rep in range(args.reps):
                t0 = time.perf_counter()
                output = asyncio.run(variant.generate(reflect, config.model_copy(update={"seed": rep})))
                times.append(time.perf_counter() - t0)
                tokens.append(output.usage.output_tokens)
            out[f"generate_{label}_s"] = round(statistics.median(times), 2)
            out[f"generate_{label}_tok_per_s"] = round(statistics.median(n / t for n, t in zip(tokens, times,
                                                                                               strict=True)), 2)
            out["prompt_tokens"] = output.usage.input_tokens
    out["loadavg_1m_after"] = round(os.getloadavg()[0], 2)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
