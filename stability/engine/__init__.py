"""The run engine: it prepares a run, owns every side effect of it, and hands protocols a typed run object.

Layers: cli -> experiment -> engine -> protocols; engine -> call path -> models; engine -> store
(see docs/architecture.md).
"""

from stability.engine.batcher import Batcher, BatchEvent
from stability.engine.execute import RunOutcome, RunResult, create_run, execute, iterate, resume, start_or_resume
from stability.engine.prepare import (
    IterateConfig,
    ModelPool,
    Prepared,
    ReadOnce,
    load_run_spec,
    prepare,
    prepare_resume,
    validate,
)
from stability.engine.run import Run, StepEvent
from stability.engine.session import CallSession, command_budget, experiment_budget

__all__ = [
    "BatchEvent",
    "Batcher",
    "CallSession",
    "IterateConfig",
    "ModelPool",
    "Prepared",
    "ReadOnce",
    "Run",
    "RunOutcome",
    "RunResult",
    "StepEvent",
    "command_budget",
    "create_run",
    "execute",
    "experiment_budget",
    "iterate",
    "load_run_spec",
    "prepare",
    "prepare_resume",
    "resume",
    "start_or_resume",
    "validate",
]
