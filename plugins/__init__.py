"""First-party vtgcore plugins (import package ``vtgcore_plugins``, folder ``plugins/``).

Each module is one plugin with its ``@hookimpl`` at the bottom; they are registered from
:func:`vtgcore.plugin_loader.builtin_plugin_modules` (every module whose name does not start with
``_``), exactly as third-party packages are.
"""
