"""The one exception type users see: a one-line message that says what to do."""

__all__ = ["HdrkitError"]


class HdrkitError(ValueError):
    """A user-facing error (bad input, missing information). The CLI prints it as one line."""
