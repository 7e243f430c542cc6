"""First-party vtgcore plugins (import package ``vtgcore_plugins``, folder ``plugins/``).

Each module is one plugin with its ``@hookimpl`` at the bottom; they are registered from
:data:`vtgcore.plugin_loader.BUILTIN_PLUGINS`, exactly as third-party packages are.
"""
