"""Errors a user can act on. The CLIs print their message on one line and exit non-zero."""


class LreditError(Exception):
    """Base class: the message says what was wrong and what to do."""


class InputError(LreditError, ValueError):
    """A bad argument or input file (image, prompt, config value)."""


class ModelSourceError(LreditError):
    """Model weights or folders missing, incomplete or of the wrong layout."""


class BundleError(LreditError):
    """An exported bundle is missing files, corrupt, or of another format version."""


class NumericalError(LreditError):
    """A stage produced NaN or Inf (typically fp16 overflow)."""


class OutputError(LreditError):
    """The output location cannot be written."""
