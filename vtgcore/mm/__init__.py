"""mmengine integration: registries, the BaseModel wrapper, data preprocessor, datasets, hooks and
the runner builder. Importing this package registers everything under the scope ``vtgcore``."""

from vtgcore.mm import datasets, hooks, metrics, mixing, model  # noqa: F401  (registration side effects)
