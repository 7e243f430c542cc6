"""The shipped recipes (import package ``vtgcore_recipes``, folder ``recipes/``): YAML only, addressable
by name, e.g. ``vtg recipe show vtgllm/synth_tiny`` (see :func:`vtgcore.config.loader.resolve_recipe_path`)."""
