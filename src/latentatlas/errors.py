"""The one exception type users see.

Anything raised as :class:`LatentAtlasError` is a problem with the user's input or arguments; the command
line prints its message on one line and exits with status 2, without a traceback.
"""


class LatentAtlasError(ValueError):
    """Bad input or arguments, with a message that names the file, line, field or argument."""
