"""Performance tools: the benchmark suite (``python -m bench``, ``vtg bench``), the FLOP and
memory-traffic arithmetic behind its floors, and the real-shape GPU run."""
