"""Evaluation: run methods over datasets (or score prediction files) and report the published metrics.

- :mod:`~amodal.evaluation.methods`: the ``Clip -> Prediction`` method interface and its registry.
- :mod:`~amodal.evaluation.scoring`: per-frame scoring under each dataset's protocol, Top-k, summaries.
- :mod:`~amodal.evaluation.reference_formats`: prediction files in the reference formats.
- :mod:`~amodal.evaluation.shard`: sharing clips among ``accelerate launch`` processes.
- :mod:`~amodal.evaluation.report`: ``metrics.json``, ``report.md``, plots.
- :mod:`~amodal.evaluation.run`: :func:`run_evaluation`, what ``amodal eval`` calls.

Nothing here is imported with :mod:`amodal`; import the submodules.
"""
