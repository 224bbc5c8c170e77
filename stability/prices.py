"""Prices in US dollars per million tokens, for cost records, ``--dry-run`` estimates and ``--max-cost`` budgets.

The built-in table is small and dated (``AS_OF``); override or extend it in an experiment spec (``prices:``) or
with a YAML file (``--prices FILE``) mapping a model id, or a glob such as ``openai/gpt-4o*``, to
``{input: USD_PER_MTOK, output: USD_PER_MTOK}``. A model with no entry has unknown cost (recorded as null);
``--max-cost`` then refuses to start rather than spend blind.

Batch prices (OpenAI's Batch API, Anthropic's Message Batches: ``--batch``) are half the ordinary ones unless an
entry gives its own ``batch_input`` / ``batch_output``; :meth:`PriceTable.cost` with ``batch=True`` uses them.
"""

from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SerializerFunctionWrapHandler,
    ValidationError,
    model_serializer,
)

from stability.errors import InputError
from stability.input_files import invalid, load_yaml

AS_OF = "2026-11"
#: a batch's price as a fraction of the ordinary price, where an entry gives none of its own
BATCH_DISCOUNT = 0.5


class Price(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input: float = Field(ge=0, allow_inf_nan=False, description="USD per million input tokens")
    output: float = Field(ge=0, allow_inf_nan=False, description="USD per million output tokens")
    batch_input: float | None = Field(default=None, ge=0, allow_inf_nan=False,
                                      description="USD per million input tokens in a batch (default: half)")
    batch_output: float | None = Field(default=None, ge=0, allow_inf_nan=False,
                                       description="USD per million output tokens in a batch (default: half)")

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """Batch prices are left out while unset, so specs hash (experiment ids) as before they existed."""
        return {k: v for k, v in handler(self).items() if not (k.startswith("batch_") and v is None)}

    def rates(self, batch: bool = False) -> tuple[float, float]:
        """(input, output) USD per million tokens, ordinary or in a batch."""
        if not batch:
            return self.input, self.output
        return (self.batch_input if self.batch_input is not None else self.input * BATCH_DISCOUNT,
                self.batch_output if self.batch_output is not None else self.output * BATCH_DISCOUNT)


DEFAULT_PRICES: dict[str, Price] = {
    "local/*": Price(input=0, output=0),
    "hf/*": Price(input=0, output=0),
    "scripted/*": Price(input=0, output=0),
    "anthropic/claude-opus-4*": Price(input=15, output=75),
    "anthropic/claude-sonnet-4*": Price(input=3, output=15),
    "anthropic/claude-haiku-4*": Price(input=1, output=5),
    "anthropic/claude-3-5-haiku*": Price(input=0.8, output=4),
    "openai/gpt-4o-mini*": Price(input=0.15, output=0.6),
    "openai/gpt-4o*": Price(input=2.5, output=10),
    "openai/gpt-4.1-mini*": Price(input=0.4, output=1.6),
    "openai/gpt-4.1*": Price(input=2, output=8),
    "openai/o3-mini*": Price(input=1.1, output=4.4),
}


class PriceTable(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prices: dict[str, Price] = Field(default_factory=lambda: dict(DEFAULT_PRICES))
    _matched: dict[str, Price | None] = PrivateAttr(default_factory=dict)  # model -> its price (None: none)

    def with_overrides(self, overrides: dict[str, Price]) -> PriceTable:
        """Overrides win; among globs, the most specific (longest) pattern that matches wins."""
        return PriceTable(prices={**self.prices, **overrides})

    def price(self, model: str) -> Price | None:
        # asked once per call: each model's price is found once (a private attribute is read through pydantic's
        # ``__getattr__``: 10 µs a call, so the table is read from ``__pydantic_private__`` directly)
        matched: dict[str, Price | None] = self.__pydantic_private__["_matched"]  # type: ignore[index]
        if model not in matched:
            prices = self.prices
            if model in prices:
                matched[model] = prices[model]
            else:
                matches = [p for p in prices if fnmatch.fnmatchcase(model, p)]
                matched[model] = prices[max(matches, key=len)] if matches else None
        return matched[model]

    def cost(self, model: str, input_tokens: int, output_tokens: int, batch: bool = False) -> float | None:
        price = self.price(model)
        if price is None:
            return None
        rate_in, rate_out = price.rates(batch)
        return (input_tokens * rate_in + output_tokens * rate_out) / 1_000_000


def load_prices(path: Path | str) -> dict[str, Price]:
    data, text = load_yaml(path, "a YAML file of prices")
    return parse_prices(data, str(path), text)


def parse_prices(data: object, source: str, text: str | None = None) -> dict[str, Price]:
    if not isinstance(data, dict):
        raise InputError(source, None, "prices must map model ids to {input, output} USD per million tokens")
    prices = {}
    for key, value in data.items():
        try:
            prices[str(key)] = Price.model_validate(value)
        except ValidationError as err:
            raise invalid(err, source, text, prefix=(key,)) from None
    return prices
