"""The one exception type users see.

Anything raised as :class:`LatentAtlasError` is a problem with the user's input or arguments; the command
line prints its message on one line and exits with status 2, without a traceback.
"""


class LatentAtlasError(ValueError):
    """Bad input or arguments, with a message that names the file, line, field or argument."""


def not_fitted(what: str) -> "LatentAtlasError":
    """The error for a model used before ``fit``: a :class:`LatentAtlasError` that is also scikit-learn's
    ``NotFittedError``, so its tools recognise it."""
    from sklearn.exceptions import NotFittedError

    cls = type("NotFittedModelError", (LatentAtlasError, NotFittedError), {})
    return cls(f"this {what} is not fitted yet; call fit() or load() first")


def printable(text: str) -> str:
    """``text`` on one line with control characters escaped, safe to put in a message or a terminal
    (a file's bytes may hold escape sequences or newlines)."""
    return "".join(ch if ch.isprintable() or ch == " " else ascii(ch)[1:-1] for ch in str(text))
