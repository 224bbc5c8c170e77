"""What every protocol is: :class:`ReflectionProtocol`, generic over its typed options, and the registry.

Contract: a protocol only decides: what to ask, how to read the answer, what to record, when to stop. It acts
only through the :class:`stability.engine.run.Run` it is handed (``ask``, ``record``, ``emit``, ``templates``) and
never imports the store or a provider. It declares what the other layers need to know, so that no code outside
``stability/protocols/`` tests a protocol's name:

- ``chain``: whether its runs are chains (analysis looks for fixed points and cycles only in chains);
- ``route``: which iteration route its runs take (fresh instances, in context, multi-agent), if any;
- :meth:`~ReflectionProtocol.estimate_calls` and :meth:`~ReflectionProtocol.estimate_input_tokens`, for
  ``--dry-run``;
- :meth:`~ReflectionProtocol.starts_blank`: whether a run starts from the empty constitution;
- ``cli_flags``: which ``stability iterate`` flags set which of its options;
- :meth:`~ReflectionProtocol.template_folders` and :meth:`~ReflectionProtocol.role_models`: what the engine
  must read and load before the run starts.

A protocol instance is its configuration (validated options); one instance runs one run.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar, cast

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from stability.answer import ANSWER_SCHEMA, Reading, example_constitutions, read_call
from stability.constitution import DEFAULT_MAX_PRINCIPLES, Constitution
from stability.errors import StabilityError
from stability.protocols.inputs import InputKind, Inputs
from stability.records import CallRecord
from stability.vocabulary import GenerateConfig, Message, ModelTraits
from stability.yaml_location import first_problem, where

if TYPE_CHECKING:
    from stability.engine.run import Run
    from stability.engine.templates import Templates

OptionsT = TypeVar("OptionsT", bound=BaseModel)


class FewShotOptions(BaseModel):
    """Options of every protocol whose prompts have worked examples (``examples.yaml``)."""

    model_config = ConfigDict(extra="forbid")

    few_shot: bool | None = Field(None, description="add worked examples; default: only for base models")


class AnswerOptions(FewShotOptions):
    """Options of every protocol that parses a constitution out of the model's answers."""

    max_principles: int = Field(DEFAULT_MAX_PRINCIPLES, ge=1,
                                description="an answer with more principles is a parse failure")


class Stop(BaseModel):
    """How a run ended, as its protocol says it."""

    model_config = ConfigDict(extra="forbid")

    #: declined | cycle | max_steps | parse_failures | error | context_budget | edited | authored | rated | budget
    reason: str
    status: str = "done"  # done | failed
    error: str | None = None


class ReflectionProtocol(ABC, Generic[OptionsT]):
    """A reflective-stability protocol over options of type ``OptionsT`` (its ``Options`` class)."""

    name: ClassVar[str]
    summary: ClassVar[str]
    Options: ClassVar[type[BaseModel]]
    #: runs are chains of revisions (fixed points and cycles mean something); rating trials are siblings
    chain: ClassVar[bool] = True
    #: runs are a null model (controls) for drift, like ``rephrase``; analysis keeps them out of the groups
    drift_null: ClassVar[bool] = False
    #: ``stability iterate`` flag (its parameter name) -> the option it sets, for this protocol
    cli_flags: ClassVar[dict[str, str]] = {}
    #: GPUs one run needs (a distributed run asks its scheduler for them: ``stability run --ray``)
    gpus: ClassVar[float] = 0
    #: what one recorded step of a run is (progress displays count these: ``generations 1/2``)
    step_unit: ClassVar[str] = "steps"
    #: the iteration route its runs take (``fresh-instances``, ``in-context``, ``multi-agent``), for the finding
    #: "does iteration converge, by route" (:mod:`stability.analysis.findings.routes`); None: not an iteration route
    route: ClassVar[str | None] = None

    def __init__(self, options: OptionsT) -> None:
        self.options = options
        #: the parsed contents of the files :meth:`input_files` declares, handed over by the engine at prepare
        self.inputs = Inputs()

    @classmethod
    def configure(cls, values: dict[str, Any]) -> ReflectionProtocol[Any]:
        """This protocol with ``values`` validated into its options; a bad value is a one-line error."""
        try:
            options = cls.Options(**values)
        except ValidationError as err:
            loc, message = first_problem(err)
            if err.errors()[0]["type"] == "extra_forbidden":
                message = "unknown option"
            raise StabilityError(f"protocol {cls.name}: " + (f"option {where(loc)}: " if loc else "") + message) \
                from None
        return cls(cast(Any, options))

    @classmethod
    def options_from_flags(cls, flags: dict[str, Any]) -> dict[str, Any]:
        """Options set by ``stability iterate`` flags (``None``: not given); a flag this protocol does not take is a
        one-line error."""
        options = {}
        for flag, value in flags.items():
            if value is None:
                continue
            if flag not in cls.cli_flags:
                raise StabilityError(f"--{flag.replace('_', '-')} does not apply to protocol {cls.name} "
                                     f"(see `stability iterate --help`)")
            options[cls.cli_flags[flag]] = value
        return options

    @classmethod
    def flag_kind(cls, flag: str) -> type | None:
        """The kind of value a flag takes when it is not its option's (``--agents 3``: text); None: the option's."""
        return None

    # -- declarations -------------------------------------------------------------------------------------------

    def template_folders(self) -> list[str]:
        """Template folders this run reads; the engine reads them once and records their combined hash."""
        return [self.name]

    def input_files(self) -> dict[str, InputKind]:
        """Options that name input files, and how each is read (options left unset are not listed). The engine
        reads them, records each file's sha256 with the run, and sets :attr:`inputs`; a protocol never opens a
        file."""
        return {}

    def estimate_calls(self, start: Constitution) -> int:
        """An upper bound on the calls one run makes (for ``--dry-run``)."""
        return 1

    def step_bound(self) -> int:
        """The highest step number a run records (its progress total, in :attr:`step_unit`)."""
        return 1

    def estimate_input_tokens(self, calls: int, prompt: int, answer: int, constitution: int) -> int:
        """Input tokens of ``calls`` calls: the first prompt is ``prompt`` tokens, each answer ``answer`` tokens and
        the constitution ``constitution`` tokens (default: every call sends the first prompt again)."""
        return calls * prompt

    def principle_limit(self) -> int:
        """The most principles a constitution may have, for the starting file too."""
        return self.options.max_principles if isinstance(self.options, AnswerOptions) else DEFAULT_MAX_PRINCIPLES

    def few_shot(self, subject: ModelTraits) -> bool:
        """Whether prompts carry the worked examples: as the options say, else only for base models."""
        chosen = self.options.few_shot if isinstance(self.options, FewShotOptions) else None
        return subject.base_model if chosen is None else chosen

    def starts_blank(self) -> bool:
        """True when a run starts from the empty constitution (no starting file is needed)."""
        return False

    def role_models(self) -> dict[str, str]:
        """Model ids for roles named in the options (e.g. each agent's model); resolved before the run starts."""
        return {}

    def check(self, start: Constitution) -> None:
        """Validate inputs the options name (files, indices) before anything is written; raise InputError."""
        return None

    def check_model(self, subject: ModelTraits) -> None:
        """Refuse a subject model this protocol cannot use, before anything is written (default: accept)."""
        return None

    # -- running ------------------------------------------------------------------------------------------------

    @abstractmethod
    async def run(self, run: Run, start: Constitution) -> Stop: ...

    def conversation(self, run: Run, user_template: str, constitution: Constitution, folder: str | None = None,
                     **fields: str) -> list[Message]:
        """This protocol's conversation (see :func:`conversation`); worked examples only for base models."""
        return conversation(run.templates(folder), user_template, constitution, self.few_shot(run.traits()),
                            **fields)


    # -- the answer contract (stability/answer.py) --------------------------------------------------------------

    def answer_config(self, run: Run, role: str = "subject") -> GenerateConfig | None:
        """The sampling config of a question answered with a constitution: the answer schema (reasoning first,
        then keep|revise and the list) for models that enforce structured output; ``None`` (the run's config) for
        the others, which answer in text. The model's ``answer_format`` decides, and falls back to text once."""
        if not run.traits(role).structured_output:
            return None
        return run.generate.model_copy(update={"json_schema": ANSWER_SCHEMA})

    def shown_examples(self, run: Run, folder: str | None = None) -> tuple[Constitution, ...]:
        """The constitutions the worked examples show, when they are shown: an answer repeating one is a copy."""
        templates = run.templates(folder)
        if not self.few_shot(run.traits()) or "examples.yaml" not in templates.text:
            return ()
        return example_constitutions(templates["examples.yaml"], str(templates.folder / "examples.yaml"))

    def read(self, run: Run, call: CallRecord, folder: str | None = None) -> Reading:
        """What a call's answer means (revised, declined, truncated or a parse failure), by the answer contract."""
        return read_call(call, max_principles=self.principle_limit(), examples=self.shown_examples(run, folder))


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


_REGISTRY: dict[str, type[ReflectionProtocol[Any]]] = {}

P = TypeVar("P", bound=type[ReflectionProtocol[Any]])


def register(cls: P) -> P:
    _REGISTRY[cls.name] = cls
    return cls
