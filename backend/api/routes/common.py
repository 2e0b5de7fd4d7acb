"""Shapes and OpenAPI ``responses`` shared by the routers."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from pydantic import BaseModel


class ErrorDetail(BaseModel):
    detail: str


AUTH: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorDetail, "description": "No or bad token"},
    403: {"model": ErrorDetail, "description": "The caller's role may not (or not on this run)"},
    429: {
        "model": ErrorDetail,
        "description": "Too many wrong tokens from this client: wait Retry-After seconds",
        "headers": {"Retry-After": {"schema": {"type": "integer"}}},
    },
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorDetail, "description": "No such run"}
}
FORBIDDEN: dict[int | str, dict[str, Any]] = {
    403: {"model": ErrorDetail, "description": "No valid lease: this attempt is not yours"}
}
OVER_QUOTA: dict[int | str, dict[str, Any]] = {
    429: {
        "model": ErrorDetail,
        "description": "Over the user's quota: says the limit and what uses it",
    }
}
OWNER: dict[int | str, dict[str, Any]] = {
    403: {
        "model": ErrorDetail,
        "description": "Not the caller's role, or not its run: names the owner",
    }
}
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorDetail, "description": "Not allowed in the run's current status"}
}


def attachment(filename: str) -> str:
    """A ``Content-Disposition`` that no name can break: an ASCII fallback of safe characters
    only (no quote, backslash, CR/LF or ``;``) plus the exact name in RFC 5987 form."""
    fallback = re.sub(r"[^A-Za-z0-9._-]", "_", filename)[:200] or "download"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename[:200], safe='')}"
