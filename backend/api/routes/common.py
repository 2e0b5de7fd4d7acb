"""Shapes and OpenAPI ``responses`` shared by the routers."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class ErrorDetail(BaseModel):
    detail: str


AUTH: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorDetail, "description": "No or bad token"}
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorDetail, "description": "No such run"}
}
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorDetail, "description": "Not allowed in the run's current status"}
}
