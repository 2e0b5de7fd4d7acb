"""The one error the data engine raises for bad input."""

from __future__ import annotations


class DataError(ValueError):
    """Bad data or a bad data option. The message names the file (and line) or the flag."""
