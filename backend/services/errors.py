"""Service-level errors; ``backend.main`` maps them to HTTP answers (404, 409)."""

from __future__ import annotations


class NotFound(Exception):
    """404: the named thing does not exist."""


class Conflict(Exception):
    """409: the request does not fit the current state (message says what to do instead)."""
