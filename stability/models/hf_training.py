"""LoRA supervised fine-tuning of an ``hf/`` model: examples in, an adapter folder (content-hashed) out.

Contract: an example is the chat messages a model would see plus the completion it should give. The prompt is
rendered exactly as :class:`stability.models.hf.HFModel` renders it for generation, and the loss covers the
completion tokens only. Training is a plain torch loop (AdamW over the LoRA weights), seeded: adapter
initialisation, example order and dropout all derive from ``TrainerParams.seed``.

A training run can start from an earlier adapter (``init``), which is how generation g+1 continues from
generation g. The adapter is written to ``out`` through a temporary folder and a rename, so a kill leaves either
no folder or a complete one.
"""

from __future__ import annotations

import random
import shutil
import threading
import time
from pathlib import Path
from typing import Any, Protocol

from stability.finetune import Adapter, TrainerParams, TrainingExample, TrainingResult
from stability.vocabulary import Message


class LoadedBase(Protocol):
    """What training needs of the loaded base weights (:class:`stability.models.hf.LoadedBase`, which imports this
    module to train, so this module does not import it back)."""

    tokenizer: Any
    device: str
    peft: Any

    @property
    def lock(self) -> threading.RLock: ...

    def render(self, messages: list[Message]) -> str: ...

    def completion_suffix(self) -> str: ...

    def attach(self, path: Path, name: str, trainable: bool) -> None: ...

    def add_new(self, name: str, config: Any) -> None: ...

    def detach(self, name: str) -> None: ...


def _torch() -> Any:
    """torch, already imported by the loaded model this module trains (hf.py checked it and peft are installed)."""
    import torch

    return torch


def _encode(base: LoadedBase, example: TrainingExample, max_length: int) -> tuple[list[int], list[int]]:
    tokenizer = base.tokenizer
    prompt = tokenizer(base.render(example.messages))["input_ids"]
    target = tokenizer(example.completion.strip() + base.completion_suffix(), add_special_tokens=False)["input_ids"]
    target = target[:max_length - 1]
    prompt = prompt[-(max_length - len(target)):]
    return prompt + target, [-100] * len(prompt) + target


def train_lora(base: LoadedBase, examples: list[TrainingExample], params: TrainerParams, out: Path,
               init: Adapter | None = None) -> TrainingResult:
    """Train a LoRA adapter (new, or continuing ``init``) on ``examples`` and save it to ``out``."""
    if not examples:
        raise ValueError("train_lora: no examples")
    torch = _torch()
    from peft import LoraConfig

    encoded = [_encode(base, e, params.max_length) for e in examples]
    pad = base.tokenizer.pad_token_id or 0
    name = "tuning"
    started = time.perf_counter()
    with base.lock:
        torch.manual_seed(params.seed)
        if init is not None:
            base.attach(Path(init.path), name, trainable=True)
        else:
            base.add_new(name, LoraConfig(r=params.rank, lora_alpha=params.alpha, lora_dropout=params.dropout,
                                          target_modules=params.target_modules, task_type="CAUSAL_LM"))
        try:
            model = base.peft
            model.set_adapter(name)
            trainable = [p for n, p in model.named_parameters() if f".{name}." in n]
            for n, p in model.named_parameters():
                p.requires_grad = f".{name}." in n
            optimizer = torch.optim.AdamW(trainable, lr=params.learning_rate, weight_decay=params.weight_decay)
            loss_before = _mean_loss(model, encoded, pad, base.device)
            model.train()
            order = _Order(len(encoded), params.seed)
            losses: list[float] = []
            tokens = 0
            for _ in range(params.steps):
                optimizer.zero_grad()
                total = 0.0
                for _ in range(params.grad_accum):
                    batch = [encoded[i] for i in order.take(params.batch_size)]
                    ids, labels, mask = _pad(batch, pad)
                    tokens += int(mask.sum())
                    output = model(input_ids=ids.to(base.device), attention_mask=mask.to(base.device),
                                   labels=labels.to(base.device))
                    (output.loss / params.grad_accum).backward()
                    total += float(output.loss.detach()) / params.grad_accum
                optimizer.step()
                losses.append(round(total, 6))
            model.eval()
            seconds = time.perf_counter() - started
            loss_after = _mean_loss(model, encoded, pad, base.device)
            adapter = _save(model, name, out)
        finally:
            base.detach(name)
    return TrainingResult(adapter=adapter, losses=losses, loss_before=loss_before, loss_after=loss_after,
                          seconds=round(seconds, 3),
                          seconds_per_step=round(seconds / params.steps, 3), tokens=tokens)


def _mean_loss(model: Any, encoded: list[tuple[list[int], list[int]]], pad: int, device: str) -> float:
    """The mean per-example loss over every example, without gradients (dropout off)."""
    torch = _torch()
    model.eval()
    total = 0.0
    with torch.no_grad():
        for example in encoded:
            ids, labels, mask = _pad([example], pad)
            total += float(model(input_ids=ids.to(device), attention_mask=mask.to(device),
                                 labels=labels.to(device)).loss)
    return round(total / len(encoded), 6)


class _Order:
    """Seeded epochs over the examples: shuffle, walk through, reshuffle."""

    def __init__(self, n: int, seed: int) -> None:
        self.n = n
        self.rng = random.Random(seed)
        self.queue: list[int] = []

    def take(self, k: int) -> list[int]:
        picked = []
        for _ in range(k):
            if not self.queue:
                self.queue = list(range(self.n))
                self.rng.shuffle(self.queue)
            picked.append(self.queue.pop())
        return picked


def _pad(batch: list[tuple[list[int], list[int]]], pad: int) -> tuple[Any, Any, Any]:
    torch = _torch()
    width = max(len(ids) for ids, _ in batch)
    ids = torch.full((len(batch), width), pad, dtype=torch.long)
    labels = torch.full((len(batch), width), -100, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, (tokens, targets) in enumerate(batch):
        ids[row, : len(tokens)] = torch.tensor(tokens)
        labels[row, : len(targets)] = torch.tensor(targets)
        mask[row, : len(tokens)] = 1
    return ids, labels, mask


def _save(model: Any, name: str, out: Path) -> Adapter:
    """Save the adapter through a temporary folder and a rename; peft nests non-default adapters by name."""
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    model.save_pretrained(str(partial), selected_adapters=[name])
    nested = partial / name
    if nested.is_dir():
        for item in nested.iterdir():
            item.replace(partial / item.name)
        nested.rmdir()
    shutil.rmtree(out, ignore_errors=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial.replace(out)
    return Adapter.from_path(out)
