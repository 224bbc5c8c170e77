"""``--dry-run``: how many runs and calls an experiment makes, and roughly what it costs, before anything is spent.

Calls are an upper bound (every run going to its step cap). Tokens are estimated from text length (4 characters
a token): each call's prompt is the protocol's templates plus the constitution, its answer the constitution
again; in-context iteration re-sends the growing conversation, so its prompts grow with the step. Costs use the
price table (built in, overridden by the spec's ``prices:`` and ``--prices FILE``); a model with no price shows
an unknown cost.

A model whose ``max_tokens`` is below the answer the largest constitution of its cells needs (the same
estimate: the list again, plus a fifth, plus 40 tokens) gets a warning: its answers would be cut off, and a
cut-off answer is read as ``truncated``, never as a revision.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from stability.constitution import Constitution
from stability.iteration import IterateConfig, validate
from stability.prices import PriceTable
from stability.protocols.base import Templates

CHARS_PER_TOKEN = 4


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
    warnings: list[str] = []


def _tokens(text: str) -> int:
    return max(1, len(text) // CHARS_PER_TOKEN)


def answer_tokens(start: Constitution) -> int:
    """The tokens an answer that revises ``start`` is expected to need (a blank slate: seven long principles)."""
    body = _tokens(start.text) if start.principles else _tokens(Constitution(principles=("x" * 80,) * 7).text)
    return int(body * 1.2) + 40


def short_answers(cells: list[IterateConfig]) -> list[str]:
    """One warning per model whose ``max_tokens`` is below the answer its largest constitution needs."""
    needed: dict[str, tuple[int, int]] = {}  # model -> (tokens needed, smallest max_tokens)
    for config in cells:
        tokens = answer_tokens(validate(config)[2])
        most, limit = needed.get(config.model, (0, config.max_tokens))
        needed[config.model] = (max(most, tokens), min(limit, config.max_tokens))
    return [f"{model}: max_tokens {limit} is below the ~{tokens} tokens an answer for the largest constitution "
            f"needs; answers would be cut off (read as truncated, never as revisions): raise max_tokens"
            for model, (tokens, limit) in needed.items() if limit < tokens]


def cell_estimate(config: IterateConfig) -> tuple[int, int, int]:
    """(calls, input tokens, output tokens) upper bounds for one run."""
    cls, options, start, _ = validate(config)
    calls = cls.estimate_calls(options)
    templates = sum(_tokens(text) for name in cls.template_names(options)
                    for text in Templates(name).text.values())
    body = _tokens(start.text) if start.principles else _tokens(Constitution(principles=("x" * 80,) * 7).text)
    answer = min(config.max_tokens, answer_tokens(start))
    prompt = templates + body
    if cls.name == "in-context-iteration":
        input_tokens = sum(prompt + step * (answer + body) for step in range(calls))
    else:
        input_tokens = calls * prompt
    return calls, input_tokens, calls * answer


def estimate(cells: list[IterateConfig], prices: PriceTable) -> Estimate:
    per_model: dict[str, ModelEstimate] = {}
    for config in cells:
        calls, input_tokens, output_tokens = cell_estimate(config)
        row = per_model.setdefault(config.model, ModelEstimate(model=config.model, runs=0, calls=0, input_tokens=0,
                                                               output_tokens=0, cost_usd=0.0))
        row.runs += 1
        row.calls += calls
        row.input_tokens += input_tokens
        row.output_tokens += output_tokens
    for row in per_model.values():
        row.cost_usd = prices.cost(row.model, row.input_tokens, row.output_tokens)
    rows = list(per_model.values())
    costs = [r.cost_usd for r in rows]
    return Estimate(runs=len(cells), calls=sum(r.calls for r in rows), input_tokens=sum(r.input_tokens for r in rows),
                    output_tokens=sum(r.output_tokens for r in rows),
                    cost_usd=None if any(c is None for c in costs) else sum(c or 0.0 for c in costs), by_model=rows,
                    warnings=short_answers(cells))
