"""The audit log's safety net (pure ASGI): a person's write that succeeded and whose route did
not record it (a route added without a thought) still gets a row, ``request``, naming the method
and path. Routes that record their change do so in its own transaction (``services/audit.py``);
this row comes after the answer, so it is the fallback, not the rule.
"""

from __future__ import annotations

import logging

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.core.db import write_session
from backend.core.identity import Principal
from backend.services import audit

log = logging.getLogger("cpt_panel.audit")
_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _write(settings: object, principal: Principal, method: str, path: str) -> None:
    with write_session(settings) as db:  # type: ignore[arg-type]
        audit.record(db, principal, "request", path, {"method": method})
        db.commit()


class AuditFallback:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope.get("method", "")
        path = scope.get("path", "")
        if scope["type"] != "http" or method not in _WRITES or not path.startswith("/api/"):
            await self.app(scope, receive, send)
            return
        status = 0

        async def remember(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        await self.app(scope, receive, remember)
        principal = scope.get("state", {}).get("principal")
        if isinstance(principal, Principal) and not principal.audited and 200 <= status < 400:
            settings = getattr(getattr(scope.get("app"), "state", None), "settings", None)
            if settings is not None and not path.endswith("/preview"):
                try:
                    await anyio.to_thread.run_sync(_write, settings, principal, method, path)
                except Exception:  # the answer is sent; say it, never fail the request
                    log.exception("audit fallback row for %s %s not written", method, path)
