"""``--dry-run``: how many runs and calls an experiment makes, and roughly what it costs, before anything is spent.

Calls are an upper bound (every run going to its step cap). Tokens are estimated from text length (4 characters
a token): each call's prompt is the protocol's templates plus the constitution, its answer the constitution
again; in-context iteration re-sends the growing conversation, so its prompts grow with the step. Thinking counts
as output: an Anthropic ``thinking_budget`` in full, an OpenAI reasoning model's reasoning by its effort
(:data:`REASONING_TOKENS`), both within ``max_tokens``. Costs use the
price table (built in, overridden by the spec's ``prices:`` and ``--prices FILE``; at the batch rate for ``--batch``
calls to models with a batch API); a model with no price shows an unknown cost.

A model whose ``max_tokens`` is below the answer the largest constitution of its cells needs (the same
estimate: the list again, plus a fifth, plus 40 tokens) gets a warning: its answers would be cut off, and a
cut-off answer is read as ``truncated``, never as a revision.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from stability.constitution import Constitution
from stability.engine import IterateConfig, ReadOnce, validate
from stability.models.registry import canonical_name, has_batch_api
from stability.models.sampling import is_openai_reasoning_model
from stability.prices import PriceTable

CHARS_PER_TOKEN = 4
#: rough reasoning tokens per call of an OpenAI reasoning model, by reasoning_effort (medium when unset)
REASONING_TOKENS = {"none": 0, "minimal": 256, "low": 1024, "medium": 2048, "high": 8192, "xhigh": 16384}


class ModelEstimate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str
    runs: int
    calls: int
    input_tokens: int
    output_tokens: int
    cost_usd: float | None


class Estimate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    runs: int
    calls: int
    input_tokens: int
    output_tokens: int
    cost_usd: float | None
    by_model: list[ModelEstimate]
    warnings: list[str] = Field(default_factory=list, description="max_tokens below an expected answer's size")


def _tokens(text: str) -> int:
    return max(1, len(text) // CHARS_PER_TOKEN)


def thinking_tokens(config: IterateConfig) -> int:
    """Output tokens a call spends thinking before its answer: the thinking budget, or the reasoning effort's."""
    if config.thinking_budget is not None:
        return config.thinking_budget
    prefix, _, model_id = canonical_name(config.model).partition("/")
    if prefix in ("openai", "litellm") and is_openai_reasoning_model(model_id):
        return REASONING_TOKENS[config.reasoning_effort or "medium"]
    return 0


def cell_estimate(config: IterateConfig) -> tuple[int, int, int]:
    """(calls, input tokens, output tokens) upper bounds for one run."""
    calls, input_tokens, output_tokens, _ = _cell(config)
    return calls, input_tokens, output_tokens


def _cell(config: IterateConfig, files: ReadOnce | None = None) -> tuple[int, int, int, int]:
    """:func:`cell_estimate`, and the tokens one answer may need (thinking included), uncapped by max_tokens."""
    protocol, start, templates = validate(config, files)
    calls = protocol.estimate_calls(start)
    template_tokens = sum(_tokens(text) for folder in templates.folders.values() for text in folder.text.values())
    body = _tokens(start.text) if start.principles else _tokens(Constitution(principles=("x" * 80,) * 7).text)
    needed = int(body * 1.2) + 40
    answer = min(config.max_tokens, needed)
    output = min(config.max_tokens, answer + thinking_tokens(config))  # thinking is not re-sent in context
    input_tokens = protocol.estimate_input_tokens(calls, template_tokens + body, answer, body)
    return calls, input_tokens, calls * output, needed + thinking_tokens(config)


def estimate(cells: list[IterateConfig], prices: PriceTable, files: ReadOnce | None = None,
             batch: bool = False) -> Estimate:
    """The experiment's figures; ``files``: its template sets and starting files, read once for every cell;
    ``batch``: the calls of models with a batch API are priced at the batch rate (``--batch``)."""
    files = files or ReadOnce()
    per_model: dict[str, ModelEstimate] = {}
    short: dict[tuple[str, int], int] = {}  # (model, max_tokens) -> largest answer it may cut
    for config in cells:
        calls, input_tokens, output_tokens, needed = _cell(config, files)
        if needed > config.max_tokens:
            key = (config.model, config.max_tokens)
            short[key] = max(short.get(key, 0), needed)
        row = per_model.setdefault(config.model, ModelEstimate(model=config.model, runs=0, calls=0, input_tokens=0,
                                                               output_tokens=0, cost_usd=0.0))
        row.runs += 1
        row.calls += calls
        row.input_tokens += input_tokens
        row.output_tokens += output_tokens
    for row in per_model.values():
        row.cost_usd = prices.cost(row.model, row.input_tokens, row.output_tokens,
                                   batch=batch and has_batch_api(row.model))
    rows = list(per_model.values())
    costs = [r.cost_usd for r in rows]
    return Estimate(runs=len(cells), calls=sum(r.calls for r in rows), input_tokens=sum(r.input_tokens for r in rows),
                    output_tokens=sum(r.output_tokens for r in rows),
                    cost_usd=None if any(c is None for c in costs) else sum(c or 0.0 for c in costs), by_model=rows,
                    warnings=[f"{model}: max_tokens {limit} is below the ~{needed} tokens an answer (thinking "
                              "included) may need for the largest constitution; answers may be cut off (raise "
                              "max_tokens)" for (model, limit), needed in short.items()])
