"""The error raised when an external baseline cannot be installed or run."""

from __future__ import annotations


class ExternalBaselineError(RuntimeError):
    """Raised when an external baseline's venv cannot be created or its run fails.

    The message names the failing command, the end of its output and what to do about it.
    """
