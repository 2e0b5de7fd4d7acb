"""``GET /api/health``: the only route without authentication."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import text

from backend import __version__
from backend.api.deps import SessionDep

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    version: str
    database: str


@router.get("/health", response_model=Health, responses={503: {"model": Health}})
def health(session: SessionDep) -> Health | JSONResponse:
    try:
        session.exec(text("SELECT 1"))  # type: ignore[call-overload]
    except Exception as exc:  # report, don't crash: this is what monitors poll
        body = Health(status="degraded", version=__version__, database=f"error: {exc}"[:300])
        return JSONResponse(body.model_dump(), status_code=503)
    return Health(status="ok", version=__version__, database="ok")
