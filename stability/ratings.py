"""Reading ratings out of model answers: structured JSON first, then tolerant line parsing.

An option whose rating cannot be read is *unscored* (``None``), never a low score. Where the provider returned
token log-probabilities, the probability of each rating 1-5 is read at the token where the model wrote that
option's rating, and the expected rating is the probability-weighted mean.
"""

from __future__ import annotations

import math
import re
from typing import Any

from pydantic import BaseModel, ConfigDict

from stability.json_text import json_object
from stability.vocabulary import TokenLogprob

RATINGS = ("1", "2", "3", "4", "5")


class ParsedRatings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ratings: dict[str, int | None]
    favourite: str | None
    probs: dict[str, dict[str, float] | None]
    structured: bool


def rating_schema(labels: list[str]) -> dict[str, Any]:
    """JSON schema for providers with structured output."""
    return {
        "type": "object",
        "properties": {
            "ratings": {"type": "object", "additionalProperties": False, "required": labels,
                        "properties": {label: {"type": "integer", "minimum": 1, "maximum": 5} for label in labels}},
            "favourite": {"type": "string", "enum": labels},
        },
        "required": ["ratings", "favourite"],
        "additionalProperties": False,
    }


def _valid(value: Any) -> int | None:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if 1 <= number <= 5 and str(value).strip() in RATINGS else None


def _from_json(text: str, labels: list[str]) -> tuple[dict[str, int | None], str | None] | None:
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        return None
    data = json_object(text[start:end + 1])
    if not isinstance(data, dict) or not isinstance(data.get("ratings"), dict):
        return None
    ratings = {label: _valid(data["ratings"].get(label)) for label in labels}
    favourite = data.get("favourite") if data.get("favourite") in labels else None
    return ratings, favourite


def _rating_pattern(label: str) -> re.Pattern[str]:
    return re.compile(rf"^[ \t>*_-]*(?:option\s+)?\**{re.escape(label)}\**\s*[:.)=-]\s*\**\s*(?P<r>\d+)\b",
                      re.IGNORECASE | re.MULTILINE)


def parse_ratings(text: str, labels: list[str], logprobs: list[TokenLogprob] | None = None) -> ParsedRatings:
    structured = _from_json(text, labels)
    if structured is not None:
        ratings, favourite = structured
        spans: dict[str, int] = {}
        for label in labels:
            match = re.search(rf'"{re.escape(label)}"\s*:\s*(?P<r>\d)', text)
            if match:
                spans[label] = match.start("r")
    else:
        ratings, spans = {}, {}
        for label in labels:
            match = _rating_pattern(label).search(text)
            ratings[label] = _valid(match.group("r")) if match else None
            if match:
                spans[label] = match.start("r")
        found = re.search(r"favou?rite\W*(?:option\s+)?\**(?P<f>[A-Z])\b", text, re.IGNORECASE)
        favourite = found.group("f").upper() if found and found.group("f").upper() in labels else None
    probs = {label: (rating_probs(logprobs, spans[label]) if logprobs and label in spans else None)
             for label in labels}
    return ParsedRatings(ratings=ratings, favourite=favourite, probs=probs, structured=structured is not None)


def rating_probs(logprobs: list[TokenLogprob], offset: int) -> dict[str, float] | None:
    """Normalised probabilities of "1".."5" at the token covering character ``offset`` of the generated text."""
    position = 0
    for token in logprobs:
        end = position + len(token.token)
        if position <= offset < end:
            if not token.top:  # only the sampled token's probability: no distribution to report
                return None
            totals: dict[str, float] = {}
            for candidate, logprob in token.top.items():
                key = candidate.strip()
                if key in RATINGS:
                    totals[key] = totals.get(key, 0.0) + math.exp(logprob)
            mass = sum(totals.values())
            if mass <= 0:
                return None
            return {r: totals.get(r, 0.0) / mass for r in RATINGS}
        position = end
    return None


def expected_rating(probs: dict[str, float] | None) -> float | None:
    return sum(int(r) * p for r, p in probs.items()) if probs else None
