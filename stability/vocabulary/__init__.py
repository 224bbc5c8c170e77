"""The shared vocabulary: the words providers, the call path, the engine, protocols, the judge and analysis all use.

Contract: below every other layer (it imports only :mod:`stability.records` and :mod:`stability.tokens`): messages,
the generate config, outputs and usage, model traits (:mod:`.generation`), per-call seeds (:mod:`.seeds`), and call
failures (:mod:`.failures`). Import these names from here, never from a provider, the engine or the call path.
"""

from stability.vocabulary.failures import CallFailed, TransientError
from stability.vocabulary.generation import (
    TRUNCATED_FINISH_REASONS,
    AnswerFormat,
    GenerateConfig,
    Message,
    ModelTraits,
    Output,
    ReasoningEffort,
    TokenLogprob,
    Usage,
    is_truncated,
    omit_later_defaults,
)
from stability.vocabulary.seeds import derive_seed

__all__ = [
    "TRUNCATED_FINISH_REASONS",
    "AnswerFormat",
    "CallFailed",
    "GenerateConfig",
    "Message",
    "ModelTraits",
    "Output",
    "ReasoningEffort",
    "TokenLogprob",
    "TransientError",
    "Usage",
    "derive_seed",
    "is_truncated",
    "omit_later_defaults",
]
