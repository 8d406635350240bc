"""The report's typed error (kept apart so that every report module can import it cheaply)."""

from __future__ import annotations

from ..errors import InputError

__all__ = ["ReportError"]


class ReportError(InputError):
    """Results (or plot data) are missing, malformed or too thin to report; the message names
    what is wrong. The CLI prints it in one line and exits with code 2."""
