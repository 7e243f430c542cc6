"""Exception classes of vtgcore.

Every error a user can cause derives from :class:`VTGError`, so the command line can print it as
one line (no traceback unless ``--debug``) and library users can catch one base class.
"""


class VTGError(Exception):
    """Base class of all errors raised by vtgcore for bad input or configuration."""


class PluginError(VTGError):
    """A plugin failed to load, declared an unknown hook or registered a duplicate name."""


class UnknownPluginError(PluginError, KeyError):
    """A recipe names a plugin that no loaded package registers."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class RecipeError(VTGError):
    """A recipe file or override is malformed, has an unknown key or a value of the wrong type."""


class ConfigValidationError(RecipeError):
    """A plugin's ``params`` do not match the plugin's config dataclass."""


class ShapeError(VTGError, ValueError):
    """Tensors handed between components do not have the shapes the contract requires."""


class PlaceholderMismatchError(ShapeError):
    """The number of video placeholder ids in the text differs from the number of video tokens."""


class TimeCodecError(VTGError, ValueError):
    """A time cannot be written by a time codec (negative, not finite, or out of its range)."""


class TimeRangeError(VTGError, ValueError):
    """A timestamp is outside what a time embedding table can represent."""


class DataError(VTGError):
    """A data file (video or annotation) cannot be used. Messages name the file."""


class VideoReadError(DataError):
    """A video is missing, empty, corrupt, has no video stream, or cannot be decoded."""


class AnnotationError(DataError):
    """An annotation file or item is malformed (messages name the file, the item index and the field)."""


class CheckpointError(VTGError):
    """A weight file is missing, refused (it would run code), unreadable, or its keys or shapes do
    not match the module. Messages name the file and the offending keys."""


class OutputError(VTGError, OSError):
    """A result, cache or checkpoint file cannot be written (disk full, permission denied, read-only
    file system). Messages name the path; the file's previous version, if any, is left as it was.
    It is also an :class:`OSError`, so code that handles I/O errors keeps working."""
