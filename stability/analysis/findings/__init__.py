"""Findings: the methodology's questions, each answered with an estimate, an interval, n and clusters.

One module per question (``principles``, ``routes``, ``twins``, ``starts``, ``attractor_strength``, ``blank_slate``,
``generations``); each exposes ``answer(data)`` over :class:`~stability.analysis.findings.data.FindingsData`:
its findings, or an ``Unanswerable`` saying why (``principles`` answers two questions, each on its own), and the
command ``stability findings`` assembles them (:mod:`stability.analysis.findings.assemble`).
"""
