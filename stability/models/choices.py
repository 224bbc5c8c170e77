"""The closed sets of values a run setting takes, as ``Literal`` types: a leaf module with no imports, so the CLI
can name the choices in its help without importing pydantic or a provider (issue 30, start-up).

:mod:`stability.models.base` re-exports them; this is where they are declared.
"""

from __future__ import annotations

from typing import Literal

ReasoningEffort = Literal["none", "minimal", "low", "medium", "high", "xhigh"]
AnswerFormat = Literal["auto", "structured", "text"]
