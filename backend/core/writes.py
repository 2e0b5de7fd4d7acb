"""User writes are refused up front while the database cannot keep them (pure ASGI).

With the database's volume nearly full, ``/api/health`` said ``degraded`` and ``POST /api/runs``
still answered 201: the run was accepted, and its later writes were lost. While
``dbhealth.storage_problem`` holds, every user write (POST, PUT, PATCH, DELETE under ``/api``,
but a preview) is a 507 that says why and what to do, before a route runs. Worker reports are
not refused here: their own failures tell the worker to stop the training it cannot record.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Receive, Scope, Send

from backend.core import dbhealth
from backend.core.db import sqlite_dir

_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def refused(path: str, method: str) -> bool:
    """Whether this request is a user write the guard judges."""
    return (
        method in _WRITES
        and path.startswith("/api/")
        and not path.startswith("/api/internal/")
        and not path.endswith("/preview")
    )


class WritesGuard:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and refused(scope.get("path", ""), scope.get("method", "")):
            settings = getattr(getattr(scope.get("app"), "state", None), "settings", None)
            problem = dbhealth.storage_problem(sqlite_dir(settings)) if settings else None
            if problem:
                detail = (
                    f"the database cannot store anything now ({problem}); nothing was saved. "
                    "Free space where the database lives, then retry (GET /api/health says "
                    "when it is writable again)"
                )
                body = json.dumps({"detail": detail}).encode()
                await send(
                    {
                        "type": "http.response.start",
                        "status": 507,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
