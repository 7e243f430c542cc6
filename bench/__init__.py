"""Benchmarks, run from the repository root: ``python -m bench`` (the suite, :mod:`vtgcore.apps.perf.suite`)
and the older single benchmarks ``python -m bench.decode`` and ``python -m bench.feature_cache``."""
