"""Small benchmarks, run from the repository root: ``python -m bench.<name>``."""
