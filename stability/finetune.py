"""What LoRA fine-tuning is about, as data: training examples, trainer parameters, adapters and results.

Contract: pure data and hashing, no torch. The training itself belongs to the model that is trained
(:meth:`stability.models.base.Model.train`; for ``hf/`` models ``stability.models.hf_training``), and the engine
calls it on a protocol's behalf, so protocols can describe training without importing a provider.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from stability.errors import StabilityError
from stability.vocabulary import Message


class TrainingExample(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    messages: list[Message]
    completion: str
    source: str = Field(default="", description="where it came from, e.g. recitation, self-qa, trace")


class TrainerParams(BaseModel):
    """LoRA and optimiser settings; stored whole with every adapter."""

    model_config = ConfigDict(extra="forbid")

    rank: int = Field(default=8, ge=1)
    alpha: int = Field(default=16, ge=1)
    dropout: float = Field(default=0.0, ge=0, lt=1)
    target_modules: list[str] = Field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])
    learning_rate: float = Field(default=2e-4, gt=0)
    weight_decay: float = Field(default=0.0, ge=0)
    steps: int = Field(default=20, ge=1, description="optimizer steps")
    batch_size: int = Field(default=1, ge=1, description="examples per forward pass")
    grad_accum: int = Field(default=4, ge=1, description="forward passes per optimizer step")
    max_length: int = Field(default=384, ge=16, description="tokens per example; the prompt is cut from the left")
    seed: int = 0


class Adapter(BaseModel):
    """A LoRA adapter folder and the sha256 over its files (names and bytes)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str
    hash: str

    @classmethod
    def from_path(cls, path: Path | str) -> Adapter:
        folder = Path(path)
        if not (folder / "adapter_config.json").is_file():
            raise StabilityError(f"{folder}: not a LoRA adapter folder (no adapter_config.json)")
        return cls(path=str(folder.resolve()), hash=folder_hash(folder))


def folder_hash(folder: Path) -> str:
    """sha256 over every file's relative name and bytes, in sorted order."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        digest.update(b"\0")
    return "sha256:" + digest.hexdigest()


class TrainingResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    adapter: Adapter
    losses: list[float] = Field(description="mean loss of each optimizer step")
    loss_before: float = Field(description="mean loss over all the examples before training")
    loss_after: float = Field(description="mean loss over all the examples after training")
    seconds: float
    seconds_per_step: float
    tokens: int = Field(description="tokens seen, prompt and completion")


def data_hash(examples: list[TrainingExample]) -> str:
    canonical = json.dumps([e.model_dump() for e in examples], sort_keys=True, ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()
