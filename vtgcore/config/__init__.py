"""Recipes: typed schema (:mod:`.schema`) and the YAML loader with defaults and overrides (:mod:`.loader`)."""
