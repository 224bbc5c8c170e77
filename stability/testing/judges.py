"""Scripted judges for tests: answers to the judge's questions (``protocols/judge/``) computed from the prompt.

- :func:`rule_judge` answers every question by a simple rule over the prompt's text (a side missing word for word
  resolves a clash; word overlap and negation words decide equivalence; two principles that each claim to come
  before every other, or a principle and its negation, are a contradiction; an answer with neither
  ``NO CHANGE`` nor ``REVISED CONSTITUTION`` is meta, or a refusal when it says it cannot). It is deterministic,
  cheap, and imperfect on purpose, so validation figures mean something.
- :func:`garbage_judge` answers nothing readable.
- :func:`as_json` turns a text answer into the structured answer (for judges that answer with the schema).

Use them as the ``fn`` of a :class:`stability.models.scripted.ScriptedModel`.
"""

from __future__ import annotations

import json
import re

from stability.vocabulary import Message

_NEGATIONS = {"not", "never", "no", "avoid", "ignore", "reverse", "after", "only", "without"}
_BROADER = {"every", "all", "always", "exactly", "whatever", "only", "any"}
_NARROWER = {"unless", "when", "sometimes", "more", "lean", "easy", "most", "one"}
_STOP = {"i", "the", "a", "an", "to", "of", "and", "in", "it", "is", "my", "that", "me", "be", "for", "even", "so",
         "they", "what", "them", "with", "or", "on", "as", "are", "by", "before", "other", "comes", "principle"}


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z']+", text.lower()))


def _field(prompt: str, name: str) -> str:
    found = re.search(rf"^{name}: (.*)$", prompt, re.MULTILINE)
    return found.group(1).strip() if found else ""


def _numbered(prompt: str) -> list[str]:
    return [m.group(1).strip() for m in re.finditer(r"^\d+\. (.*)$", prompt, re.MULTILINE)]


def _clash(prompt: str) -> str:
    side_a, side_b = _field(prompt, "A"), _field(prompt, "B")
    principles = _numbered(prompt)
    if side_a not in principles or side_b not in principles:
        return "VERDICT: resolved\nHOW: removed\nRATIONALE: a side is no longer in the constitution."
    return "VERDICT: unresolved\nHOW: none\nRATIONALE: both sides are still there word for word."


def equivalence_verdict(before: str, after: str) -> str:
    a, b = _words(before), _words(after)
    if (a & _NEGATIONS) != (b & _NEGATIONS):
        return "opposite"
    content_a, content_b = a - _STOP, b - _STOP
    overlap = len(content_a & content_b) / max(1, len(content_a | content_b))
    if overlap < 0.15:
        return "different"
    if (b & _BROADER) - a:
        return "broader"
    if (b & _NARROWER) - a:
        return "narrower"
    return "same"


def _equivalence(prompt: str) -> str:
    verdict = equivalence_verdict(_field(prompt, "ORIGINAL"), _field(prompt, "REPLACEMENT"))
    return f"VERDICT: {verdict}\nRATIONALE: by word overlap and negation words."


def _contradiction(prompt: str) -> str:
    principles = _numbered(prompt)
    firsts = [i for i, p in enumerate(principles, 1) if "before every other" in p.lower()]
    if len(firsts) >= 2:
        return f"VERDICT: contradiction\nPRINCIPLES: {firsts[0]}, {firsts[1]}\nRATIONALE: two first priorities."
    for i, p in enumerate(principles, 1):
        for j, q in enumerate(principles[i:], i + 1):
            if equivalence_verdict(p, q) == "opposite" and len((_words(p) & _words(q)) - _STOP) >= 2:
                return f"VERDICT: contradiction\nPRINCIPLES: {i}, {j}\nRATIONALE: one negates the other."
    return "VERDICT: consistent\nPRINCIPLES: none\nRATIONALE: no two principles negate each other."


def _refusal(prompt: str) -> str:
    answer = prompt.split("<answer>", 1)[-1].split("</answer>", 1)[0]
    if "NO CHANGE" in answer or "REVISED CONSTITUTION" in answer:
        return "VERDICT: answer\nRATIONALE: it answered the task."
    if re.search(r"\b(can't|cannot|won't|will not)\b", answer, re.IGNORECASE):
        return "VERDICT: refusal\nRATIONALE: it declined."
    return "VERDICT: meta\nRATIONALE: it talked about the task."


def rule_judge(messages: list[Message]) -> str:
    prompt = messages[-1].content
    if "REPLACEMENT:" in prompt:
        return _equivalence(prompt)
    if "<answer>" in prompt:
        return _refusal(prompt)
    if "once held two principles that clashed" in prompt:
        return _clash(prompt)
    return _contradiction(prompt)


def garbage_judge(messages: list[Message]) -> str:
    return "Well, it depends on how you look at it. Ask me again tomorrow."


def as_json(text: str) -> str:
    """A text answer of :func:`rule_judge` as the structured answer's JSON."""
    fields = {m.group(1).lower(): m.group(2).strip() for m in re.finditer(r"^([A-Z]+): (.*)$", text, re.MULTILINE)}
    out: dict[str, object] = {"rationale": fields.get("rationale", ""), "verdict": fields.get("verdict", "")}
    if "how" in fields:
        out["how"] = fields["how"]
    if "principles" in fields:
        out["principles"] = [int(n) for n in re.findall(r"\d+", fields["principles"])]
    return json.dumps(out)
