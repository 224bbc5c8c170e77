"""The judge role: a model asked questions of meaning (clash status, equivalence of a rewording, new contradictions,
refusals) about the nodes and answers an experiment produced, stored as judgements apart from the runs.

:mod:`.judging` asks (``stability judge``), :mod:`.validation` measures a judge against the library's labels
(``stability judge --validate``); analysis reads the stored judgements (``analyze --judge``,
:mod:`stability.analysis.judged`). The package imports nothing itself, so analysis can read :mod:`.subjects`
without loading the call path.
"""
