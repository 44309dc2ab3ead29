"""The project's one error type for mistakes a user can fix: :class:`UserError`.

The command line prints a ``UserError`` (and the ``ValueError``, ``OSError`` and
``RuntimeError`` that wrong input, a missing file or a failing tool raise) as one line and
exits 1; anything else, a ``TypeError`` above all, is a bug and keeps its traceback.
"""

__all__ = ["UserError"]


class UserError(ValueError):
    """A value, file or folder the user gave is wrong; the message says which and what to do.

    A ``ValueError``, so code that already catches or raises ``ValueError`` keeps working."""
