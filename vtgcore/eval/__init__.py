"""Evaluation: generation, metrics for moment retrieval, highlight detection, dense captioning and
summarization.

* :mod:`vtgcore.eval.generate`: batched generation, generated ids to text with times in seconds.
* :mod:`vtgcore.eval.evaluation`: the evaluation runner (generate, parse, score, write).
* :mod:`vtgcore.eval.metrics`: plain metric functions (``grounding_metrics``, ``highlight_metrics``,
  ``dvc_metrics``, ``summary_f1``), every aggregate returned in percent.
* :mod:`vtgcore.eval.captioning`: CIDEr, METEOR, the PTB tokenizer (pycocoevalcap, Java) and
  SODA_c, with Java detection.
* :mod:`vtgcore.eval.score_files`: prediction files in the original VTG-LLM formats scored against
  ground-truth files, and a text table of the results.
* :mod:`vtgcore.eval.mm_metrics`: mmengine ``BaseMetric`` wrappers of the plain functions.
"""
