"""What the judge is asked about: the subjects of each question, found in runs (or in the library, for validation).

Contract: analysis owns the subject keys, since it finds each stored judgement again by recomputing them (from
:mod:`stability.analysis.judged`); the judge imports them to ask, analysis never imports the judge.

A :class:`Subject` is one question about one thing, named by content hashes only (``subjects``), so the same
question about the same content is the same subject wherever it appears, and analysis finds its judgement again by
recomputing the key from what it reads:

- ``clash``: a planted clash (sides ``a`` and ``b`` of a starting constitution) at a node a run reached: every
  distinct node after the start of a chain run whose start lists clashes in its metadata. Subjects: the node, the
  start, ``clash:A-B``. (Every such node is asked, also where the alignment rule saw a side removed: the judge does not
  rely on the rule it is compared with.)
- ``equivalence``: an aligned principle pair, before and after a step, that the alignment calls *reworded*
  (:mod:`stability.analysis.alignment`). Subjects: the two principles' text hashes.
- ``contradiction``: every distinct node after the start of a chain run whose start lists no clash. Subject: the
  node. (Sibling trials, ``chain = False``, are asked neither: analysis measures both on chains only.)
- ``refusal``: the answer behind every decline and parse failure of a chain run. Subjects: the constitution it
  answered and the answer's text hash.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping

import numpy as np
from pydantic import BaseModel, ConfigDict

from stability.analysis.alignment import align
from stability.analysis.corpus import Corpus, RunChain
from stability.analysis.embeddings import text_hash
from stability.records import JudgeQuestion
from stability.store.store import Store


class Subject(BaseModel):
    """One question about one subject; ``fields`` fill the question's template; ``label`` is the right verdict
    (validation only)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    question: JudgeQuestion
    subjects: tuple[str, ...]
    fields: dict[str, str]
    label: str | None = None

    @property
    def key(self) -> str:
        return subject_key(self.question, self.subjects)


def subject_key(question: str, subjects: Iterable[str]) -> str:
    return "sha256:" + hashlib.sha256(json.dumps([question, list(subjects)]).encode()).hexdigest()


def numbered(principles: Iterable[str]) -> str:
    return "\n".join(f"{i}. {p}" for i, p in enumerate(principles, 1))


def clash_subject(node: str, principles: tuple[str, ...], start: str, a: int, b: int, a_text: str, b_text: str,
                  note: str = "", label: str | None = None) -> Subject:
    return Subject(question="clash", subjects=(node, start, f"clash:{a}-{b}"), label=label,
                   fields={"constitution": numbered(principles), "side_a": a_text, "side_b": b_text,
                           "note": note or "the two principles cannot both be followed"})


def equivalence_subject(before: str, after: str, label: str | None = None) -> Subject:
    return Subject(question="equivalence", subjects=(text_hash(before), text_hash(after)), label=label,
                   fields={"before": before, "after": after})


def contradiction_subject(node: str, principles: tuple[str, ...], label: str | None = None) -> Subject:
    return Subject(question="contradiction", subjects=(node,), label=label,
                   fields={"constitution": numbered(principles)})


def refusal_subject(node: str, principles: tuple[str, ...], answer: str, label: str | None = None) -> Subject:
    return Subject(question="refusal", subjects=(node, text_hash(answer)), label=label,
                   fields={"constitution": "\n".join(f"- {p}" for p in principles), "answer": answer})


def planted_clashes(chain: RunChain, corpus: Corpus) -> list[tuple[int, int, str]]:
    """The run's start's clashes that fit it: (a, b, note), 1-based."""
    size = len(corpus.principles[chain.start])
    out = []
    for clash in (corpus.metadata.get(chain.start) or {}).get("clashes") or []:
        try:
            a, b, note = int(clash["a"]), int(clash["b"]), str(clash.get("note") or "")
        except (KeyError, TypeError, ValueError):
            continue
        if 1 <= a <= size and 1 <= b <= size and a != b:
            out.append((a, b, note))
    return out


def later_nodes(chain: RunChain) -> list[str]:
    """The distinct nodes a run reached after its start (in order)."""
    return [n for n in dict.fromkeys(v.node for v in chain.usable) if n != chain.start]


def clash_subjects(corpus: Corpus) -> list[Subject]:
    out = []
    for chain in corpus.runs:
        if not chain.chain:  # sibling trials: clash resolution is measured on chains only
            continue
        start = corpus.principles[chain.start]
        for a, b, note in planted_clashes(chain, corpus):
            out += [clash_subject(node, corpus.principles[node], chain.start, a, b, start[a - 1], start[b - 1], note)
                    for node in later_nodes(chain)]
    return _unique(out)


def reworded_pairs(chain: RunChain, corpus: Corpus, vectors: Mapping[str, np.ndarray], threshold: float
                   ) -> list[tuple[str, str]]:
    """(before, after) of every principle the alignment calls reworded, over the run's steps between nodes."""
    visits = chain.usable
    pairs = []
    for previous, visit in zip(visits, visits[1:], strict=False):
        if previous.node == visit.node:
            continue
        alignment = align(corpus.principles[previous.node], corpus.principles[visit.node], vectors, threshold)
        pairs += [(c.before_text, c.after_text) for c in alignment.changes
                  if c.kind == "reworded" and c.before_text and c.after_text]
    return pairs


def equivalence_subjects(corpus: Corpus, vectors: Mapping[str, np.ndarray], threshold: float) -> list[Subject]:
    return _unique([equivalence_subject(before, after) for chain in corpus.runs if chain.chain
                    for before, after in reworded_pairs(chain, corpus, vectors, threshold)])


def contradiction_subjects(corpus: Corpus) -> list[Subject]:
    out = []
    for chain in corpus.runs:
        if not chain.chain or (corpus.metadata.get(chain.start) or {}).get("clashes"):
            continue
        out += [contradiction_subject(node, corpus.principles[node]) for node in later_nodes(chain)]
    return _unique(out)


def refusal_subjects(corpus: Corpus, answers: Mapping[str, list[tuple[str, str]]]) -> list[Subject]:
    """``answers``: per run, (the node answered, the answer text) of its declines and parse failures."""
    return _unique([refusal_subject(node, corpus.principles[node], text)
                    for chain in corpus.runs for node, text in answers.get(chain.run_id, [])
                    if node in corpus.principles])


def _unique(subjects: list[Subject]) -> list[Subject]:
    return list({s.key: s for s in subjects}.values())


def answers_of(store: Store, corpus: Corpus) -> dict[str, list[tuple[str, str]]]:
    """Per chain run: (node answered, answer text) of the last call behind each decline and parse failure."""
    out: dict[str, list[tuple[str, str]]] = {}
    for chain in corpus.runs:
        if not chain.chain:
            continue
        texts = {c.id: c.text for c in store.calls(chain.run_id) if c.text}
        for edge in store.edges(chain.run_id):
            if edge.kind in ("decline", "parse_failure"):
                out.setdefault(chain.run_id, []).extend(
                    (edge.source_hash, texts[c]) for c in edge.call_ids[-1:] if c in texts)
    return out
