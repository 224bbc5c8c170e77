"""The judge role: a model asked questions of meaning (clash status, equivalence of a rewording, new contradictions,
refusals) about the nodes and answers an experiment produced, stored as judgements apart from the runs.

``judge`` asks (:mod:`.judging`), ``validate`` measures a judge against the library's labels (:mod:`.validation`);
analysis reads the stored judgements (``analyze --judge``, :mod:`stability.analysis.judged`).
"""

from stability.judge.judging import JudgeResult, judge, parse_questions
from stability.judge.questions import QUESTIONS

__all__ = ["QUESTIONS", "JudgeResult", "judge", "parse_questions"]
