"""vtg-plugin-example: registers the ``strided_pool`` compressor with vtgcore.

vtgcore finds this module through the entry point in ``pyproject.toml`` and calls every hook
implemented here once, with a ``register`` function. Keep this module light: vtgcore imports it
whenever it lists or builds plugins.
"""

from vtgcore import hookimpl

from vtg_plugin_example.strided_pool import StridedPoolCompressor, StridedPoolConfig

__version__ = "0.1.0"


@hookimpl
def vtg_register_compressors(register):
    register("strided_pool", StridedPoolCompressor, config=StridedPoolConfig,
             description="average every `stride` frames, then pool each to P tokens (K = ceil(T/stride)*P)")


__all__ = ["StridedPoolCompressor", "StridedPoolConfig", "vtg_register_compressors"]
