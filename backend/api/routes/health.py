"""``GET /api/health``: the only route without authentication."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import text

from backend import __version__
from backend.api.deps import SessionDep, SettingsDep
from backend.core import dbhealth
from backend.core.db import sqlite_dir
from backend.services import disks

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    version: str
    #: ``ok``, or why the database cannot be read or written (disk full, a failed write).
    database: str
    #: The live workers' volumes below ``CPT_LOW_DISK_GB``, in words (empty: all have room).
    disks: list[str] = []


@router.get("/health", response_model=Health, responses={503: {"model": Health}})
def health(session: SessionDep, settings: SettingsDep) -> Health | JSONResponse:
    try:
        session.exec(text("SELECT 1"))  # type: ignore[call-overload]
        # Reads may work while writes fail: a full disk is only seen by the writes.
        problem = dbhealth.storage_problem(sqlite_dir(settings))
    except Exception as exc:  # report, don't crash: this is what monitors poll
        problem = f"error: {exc}"
    try:
        low = disks.low_volumes(session, settings)
    except Exception:  # the database already said what it could
        low = []
    if problem or low:
        body = Health(
            status="degraded", version=__version__, database=(problem or "ok")[:300], disks=low
        )
        return JSONResponse(body.model_dump(), status_code=503)
    return Health(status="ok", version=__version__, database="ok")
