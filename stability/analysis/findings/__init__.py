"""Findings: the methodology's questions, each answered with an estimate, an interval, n and clusters.

One module per question (``principles``, ``routes``, ``twins``, ``starts``, ``attractor_strength``, ``blank_slate``,
``generations``); each exposes ``answer(data) -> list[Finding] | Unanswerable`` and the command
``stability findings`` assembles them (:mod:`stability.analysis.findings.assemble`).
"""
