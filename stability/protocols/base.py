"""The one ``Protocol`` base class every protocol subclasses.

A protocol decides what to ask and when to stop. It never talks to a provider or the store directly: it asks
through :meth:`Protocol.call` (the call path: cache, retries, persistence) and records graph nodes through
:meth:`Protocol.record`. Protocols are deterministic given their calls' answers, which is what makes
``--resume`` a replay: every completed call is answered from the store, and recorded steps are kept.

Prompt templates are data, read from the top-level ``protocols/<name>/`` folder; their hash is stored on the run.
"""

from __future__ import annotations

import difflib
import hashlib
import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from stability.calls import CallPath
from stability.constitution import Constitution
from stability.errors import StabilityError
from stability.input_files import parse_yaml
from stability.models.base import GenerateConfig, Message, Model
from stability.store.records import CallRecord, Decision, EdgeKind, EdgeRecord, RevisionRecord
from stability.store.store import Store, now

PROTOCOLS_DIR_ENV = "STABILITY_PROTOCOLS_DIR"
EDGE_KIND: dict[str, EdgeKind] = {"changed": "edit", "declined": "decline", "parse_failure": "parse_failure",
                                  "error": "error", "authored": "author"}


def protocols_dir() -> Path:
    """``STABILITY_PROTOCOLS_DIR``, else the ``protocols/`` folder of this checkout, else ``./protocols``."""
    if os.environ.get(PROTOCOLS_DIR_ENV):
        return Path(os.environ[PROTOCOLS_DIR_ENV])
    beside = Path(__file__).resolve().parents[2] / "protocols"
    return beside if beside.is_dir() else Path("protocols")


class Templates:
    """The files of ``protocols/<name>/``, read once; ``hash`` covers every file's name and bytes."""

    def __init__(self, name: str) -> None:
        self.folder = protocols_dir() / name
        if not self.folder.is_dir():
            raise StabilityError(f"{self.folder}: prompt templates for protocol {name!r} not found "
                                 f"(set {PROTOCOLS_DIR_ENV} to the folder that holds protocols/)")
        # Ready specs (``specs/``) are data about runs, not prompts: editing one must not block a resume.
        files = sorted(p for p in self.folder.rglob("*")
                       if p.is_file() and "specs" not in p.relative_to(self.folder).parts)
        digest = hashlib.sha256()
        self.text: dict[str, str] = {}
        for path in files:
            relative = path.relative_to(self.folder).as_posix()
            data = path.read_bytes()
            digest.update(relative.encode() + b"\0" + data + b"\0")
            self.text[relative] = data.decode("utf-8")
        self.hash = "sha256:" + digest.hexdigest()

    def __getitem__(self, name: str) -> str:
        if name not in self.text:
            raise StabilityError(f"{self.folder / name}: template missing")
        return self.text[name]

    def yaml(self, name: str) -> Any:
        """A YAML template's data (a malformed one is a ``path:line`` error, like every YAML file)."""
        return parse_yaml(self[name], str(self.folder / name))


class AnswerOptions(BaseModel):
    """Options of every protocol that parses a constitution out of the model's answers."""

    model_config = ConfigDict(extra="forbid")

    max_principles: int = Field(100, ge=1, description="an answer with more principles is a parse failure")
    few_shot: bool | None = Field(None, description="add worked examples; default: only for base models")


class Stop(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: declined | cycle | max_steps | parse_failures | error | context_budget | edited | authored | rated | budget
    reason: str
    status: str = "done"  # done | failed
    error: str | None = None


@dataclass
class StepEvent:
    step: int
    decision: str
    constitution_hash: str
    n_principles: int
    detail: str | None = None


@dataclass
class RunContext:
    """What a protocol needs from the run: its id, seed, sampling config, store, call path and role models."""

    run_id: str
    seed: int
    generate: GenerateConfig
    store: Store
    calls: CallPath
    on_step: Callable[[StepEvent], None] = field(default=lambda event: None)
    #: models by role ("editor", "judge", an agent's name); the subject is ``calls.model``
    roles: dict[str, Model] = field(default_factory=dict)


class Protocol(ABC):
    name: ClassVar[str]
    summary: ClassVar[str]
    Options: ClassVar[type[BaseModel]]

    def __init__(self, context: RunContext, options: BaseModel) -> None:
        self.context = context
        self.options = options
        self.templates = Templates(self.name)

    @property
    def model(self) -> Model:
        """The subject model (the call path's; fine-tune-reflect swaps in each generation's adapter)."""
        return self.context.calls.model

    @classmethod
    def template_names(cls, options: BaseModel) -> list[str]:
        """Template folders this run reads; their combined hash is recorded on the run."""
        return [cls.name, "blank-slate"] if getattr(options, "from_blank", False) else [cls.name]

    @classmethod
    def estimate_calls(cls, options: BaseModel) -> int:
        """An upper bound on the calls one run makes (for ``--dry-run``)."""
        return 1 + (1 if getattr(options, "from_blank", False) else 0)

    @classmethod
    def check(cls, options: BaseModel, start: Constitution) -> None:
        """Validate inputs the options name (files, indices) before anything is written; raise InputError."""
        return None

    @classmethod
    def role_models(cls, options: BaseModel) -> dict[str, str]:
        """Model ids for roles named in the options (e.g. each agent's model); resolved before the run starts."""
        return {}

    def role(self, name: str) -> Model:
        """The model playing ``name``; the subject plays any role that was not given its own model."""
        return self.context.roles.get(name, self.model)

    # -- the two ways out ----------------------------------------------------------------------------------

    async def call(self, messages: list[Message], step: int, purpose: str, config: GenerateConfig | None = None,
                   role: str = "subject") -> CallRecord:
        """Ask a model (the subject, or the one playing ``role``) through the call path.

        The seed is derived from the run seed, the step and the purpose, so every question is its own sample.
        """
        base = config or self.context.generate
        seeded = base.model_copy(update={"seed": derive_seed(self.context.seed, step, purpose)})
        return await self.context.calls(messages, seeded, step=step, purpose=purpose, model=self.role(role))

    async def begin(self, start: Constitution) -> tuple[RevisionRecord, Constitution, int] | Stop:
        """Record the starting node and return (revision, constitution, next step).

        With the ``from_blank`` option the model first authors its own constitution (the blank-slate protocol's
        prompts): step 0 is the empty constitution and step 1 what it wrote. A failed authoring ends the run.
        """
        if not getattr(self.options, "from_blank", False):
            return self.record(0, start, "origin", None, []), start, 1
        from stability.protocols.blank_slate import author

        origin = self.record(0, Constitution(principles=()), "origin", None, [])
        authored = await author(self, step=1, parent=origin, size=getattr(self.options, "blank_size", None),
                                topic=getattr(self.options, "blank_topic", None))
        if isinstance(authored, Stop):
            return authored
        revision, constitution = authored
        return revision, constitution, revision.step + 1

    def record(self, step: int, constitution: Constitution, decision: Decision, parent: RevisionRecord | None,
               calls: list[CallRecord], cycle_to: str | None = None, detail: str | None = None) -> RevisionRecord:
        """Store the node visit for this step and the edge from its parent (idempotent on replay)."""
        store = self.context.store
        digest = store.put_constitution(constitution)
        run_id = self.context.run_id
        revision = RevisionRecord(id=f"{run_id}:{step}", run_id=run_id, step=step, constitution_hash=digest,
                                  parent_id=parent.id if parent else None, decision=decision, cycle_to=cycle_to,
                                  detail=detail, created_at=now())
        edge = None
        if parent is not None:
            edge = EdgeRecord(id=revision.id, run_id=run_id, source_id=parent.id, target_id=revision.id,
                              source_hash=parent.constitution_hash, target_hash=digest,
                              kind=EDGE_KIND[decision], protocol=self.name, call_ids=[c.id for c in calls])
        store.insert_revision(revision, edge)
        self.context.on_step(StepEvent(step, decision, digest, len(constitution.principles), detail))
        return revision

    def conversation(self, user_template: str, constitution: Constitution, **fields: str) -> list[Message]:
        """This protocol's conversation: see :func:`conversation`; worked examples only for base models."""
        few_shot = getattr(self.options, "few_shot", None)
        return conversation(self.templates, user_template, constitution,
                            few_shot if few_shot is not None else self.model.base_model, **fields)

    @classmethod
    def check_model(cls, model: Model, options: BaseModel) -> None:
        """Refuse a model or options this protocol cannot use, before anything is written (default: accept)."""
        return None

    @abstractmethod
    async def run(self, start: Constitution) -> Stop: ...


def conversation(templates: Templates, user_template: str, constitution: Constitution, few_shot: bool,
                 **fields: str) -> list[Message]:
    """System prompt, the worked examples of ``examples.yaml`` (if ``few_shot``), then the filled user template.

    Templates use ``{constitution}`` and any ``{field}`` given here; nothing else in them is touched.
    """
    user = templates[user_template]
    messages = [Message(role="system", content=templates["system.md"].strip())]
    if few_shot and "examples.yaml" in templates.text:
        for example in templates.yaml("examples.yaml"):
            extra = {k: str(v) for k, v in example.items() if k not in ("constitution", "answer")}
            messages.append(Message(role="user", content=fill(user, constitution=example["constitution"].strip(),
                                                              **extra)))
            messages.append(Message(role="assistant", content=example["answer"].strip()))
    messages.append(Message(role="user", content=fill(user, constitution=constitution.text.strip(), **fields)))
    return messages


def fill(template: str, **fields: str) -> str:
    """Replace ``{name}`` for each given field; other braces are left alone (constitutions may contain them)."""
    for key, value in fields.items():
        template = template.replace("{" + key + "}", value)
    return template.strip()


def derive_seed(seed: int, step: int, purpose: str) -> int:
    """A per-call seed: distinct per step, so repeated questions are independent samples, yet reproducible."""
    digest = hashlib.sha256(f"{seed}:{step}:{purpose}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


_REGISTRY: dict[str, type[Protocol]] = {}


def register(cls: type[Protocol]) -> type[Protocol]:
    _REGISTRY[cls.name] = cls
    return cls


def protocol_class(name: str) -> type[Protocol]:
    from stability import protocols  # noqa: F401  (registers the built-in protocols)

    if name not in _REGISTRY:
        guess = difflib.get_close_matches(name, list(_REGISTRY), n=1)
        hint = f"; did you mean {guess[0]!r}?" if guess else ""
        raise StabilityError(f"unknown protocol {name!r}: known are {', '.join(sorted(_REGISTRY))}{hint}")
    return _REGISTRY[name]


def all_protocols() -> dict[str, type[Protocol]]:
    from stability import protocols  # noqa: F401

    return dict(_REGISTRY)


