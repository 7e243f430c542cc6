"""Small utilities every layer may use: atomic file output, progress reporting."""
