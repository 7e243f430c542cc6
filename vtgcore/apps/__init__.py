"""The applications: command line, main job, sweeps, plots, demo, pipeline, smoke, perf, weight conversion."""
