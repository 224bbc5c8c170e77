"""The shared vocabulary: the words providers, the call path, the engine, protocols, the judge and analysis all use.

Contract: below every other layer (it imports only the leaves :mod:`stability.records`, :mod:`stability.tokens`,
:mod:`stability.bounds` and :mod:`stability.errors`): messages, the generate config, outputs and usage, model traits
(:mod:`.generation`); a run's settings, each declared once (:mod:`.settings`); per-call seeds (:mod:`.seeds`); call
failures (:mod:`.failures`). Import these names from here, never from a provider, the engine or the call path.
"""

from stability.vocabulary.failures import CallFailed, TransientError
from stability.vocabulary.generation import (
    TRUNCATED_FINISH_REASONS,
    GenerateConfig,
    Message,
    ModelTraits,
    Output,
    TokenLogprob,
    Usage,
    is_truncated,
)
from stability.vocabulary.seeds import derive_seed
from stability.vocabulary.settings import (
    AnswerFormat,
    Declared,
    ReasoningEffort,
    RunSettings,
    SamplingSettings,
    omit_later_defaults,
)

__all__ = [
    "TRUNCATED_FINISH_REASONS",
    "AnswerFormat",
    "CallFailed",
    "Declared",
    "GenerateConfig",
    "Message",
    "ModelTraits",
    "Output",
    "ReasoningEffort",
    "RunSettings",
    "SamplingSettings",
    "TokenLogprob",
    "TransientError",
    "Usage",
    "derive_seed",
    "is_truncated",
    "omit_later_defaults",
]
