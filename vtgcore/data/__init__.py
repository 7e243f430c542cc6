"""Data pipeline: video reading and sampling, preprocessing, annotation formats, prompts,
the VTG-Synth benchmark, the data doctor, datasets and collation."""
