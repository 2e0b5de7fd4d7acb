"""The FastAPI app: routers under /api, error mapping, lifespan, and the built frontend at /."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.routing import APIRoute
from sqlalchemy.exc import DataError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from backend import __version__
from backend.api.routes import (
    audit,
    checkpoints,
    experiments,
    health,
    internal,
    internal_jobs,
    jobs,
    meta,
    metrics,
    models,
    notifications,
    panel_settings,
    runs,
    scores,
    session,
    stream,
    tokens,
    users,
    workers,
)
from backend.core import dbhealth
from backend.core.auditguard import AuditFallback
from backend.core.auth import Authenticator
from backend.core.db import init_db
from backend.core.headers import SecurityHeaders
from backend.core.limits import RequestLimits
from backend.core.writes import WritesGuard
from backend.services.bus import bus
from backend.services.errors import Conflict, NotFound
from backend.services.notifications import outbox  # noqa: F401  (the ORM hooks that queue them)
from backend.services.notifications.drain import drain_loop
from backend.services.recovery import loop_interval, recovery_loop
from backend.services.users import OverQuota, ensure_first_admin
from backend.services.validation import ConfigInvalid, friendlier, safe_errors
from cpt_contract.settings import Settings, get_settings

ROOT = Path(__file__).resolve().parents[1]
log = logging.getLogger("cpt_panel.api")
#: Routes whose bodies carry secrets: their 422s echo nothing of the input.
SECRET_BODY_PATHS = ("/api/settings/",)


def _operation_id(route: APIRoute) -> str:
    """Readable, unique ids for generated clients: ``runs-create_run``."""
    return f"{route.tags[0]}-{route.name}" if route.tags else route.name


class _RedactTokens(logging.Filter):
    """Access logs show request paths; ``?token=`` (EventSource, download links) must not leak,
    however its name is spelled (``%74oken``, ``TOKEN``, ``token[]``): a parameter is judged by
    its decoded name, as a server would read it."""

    _param = re.compile(r"([?&;])([^=&;\s]*)=([^&;\s]*)")

    @classmethod
    def _hide(cls, match: re.Match[str]) -> str:
        name = unquote_plus(match.group(2)).strip().lower()
        if "token" in name or "secret" in name or "password" in name:
            return f"{match.group(1)}{match.group(2)}=***"
        return match.group(0)

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and len(record.args) >= 3:
            args = list(record.args)
            args[2] = self._param.sub(self._hide, str(args[2]))
            record.args = tuple(args)
        return True


class _QuietWorkerProtocol(logging.Filter):
    """A training run's worker reports several times a second (events, log bytes, heartbeats):
    its accepted reports are left out of the access log, which otherwise filled with them (and
    formatting them was a few percent of the API's CPU during a run). Refusals stay."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 5 and isinstance(args[4], int):
            return not (str(args[2]).startswith("/api/internal/") and args[4] < 400)
        return True


def _redact_access_log() -> None:
    access = logging.getLogger("uvicorn.access")
    for kind in (_QuietWorkerProtocol, _RedactTokens):
        if not any(isinstance(f, kind) for f in access.filters):
            access.addFilter(kind())


def _ensure_dirs(settings: Settings) -> None:
    """The data dir holds the database, the tokens and every run: the panel's user only."""
    for path in (
        settings.resolved_data_dir,
        settings.runs_dir,
        settings.jobs_dir,
        settings.resolved_data_dir / "cache",
    ):
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        if path.stat().st_mode & 0o077:
            path.chmod(0o700)


def _private_database(settings: Settings) -> None:
    """SQLite's file (and its WAL and shared-memory files) readable by the panel's user only."""
    if settings.database_url is not None:
        return
    db = settings.resolved_data_dir / "cpt-panel.db"
    for path in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        with contextlib.suppress(FileNotFoundError):
            path.chmod(0o600)


def _ensure_first_admin(settings: Settings) -> None:
    """A one-time password for the first admin while no admin can sign in: in a 0600 file
    for ``cpt-panel up`` to print to a terminal; the log names the file only."""
    path = ensure_first_admin(settings)
    if path is not None:
        log.info("first admin 'admin': one-time password kept in %s", path)


def _ensure_tokens(settings: Settings) -> None:
    """Generate missing tokens now (not on the first request), so workers and people find them.
    Only the file's path is logged, never a token."""
    for name in ("api_token", "worker_token"):
        settings.secret_digest(name)
        if getattr(settings, name) is None:
            log.info("%s: kept in %s", name, settings.resolved_data_dir / f".{name}")


def _freeze_startup_objects() -> None:
    """The ~120k objects of the loaded modules live as long as the process: frozen out of the
    collector, a full collection no longer scans them (it took 70-80 ms, a chart read's p95
    outlier), and requests' short-lived objects are collected as before. Once per process: an
    app started again in the same process (tests) must not freeze the last one's garbage."""
    if gc.get_freeze_count() == 0:
        gc.collect()
        gc.freeze()


def _lifespan(
    settings: Settings,
) -> Callable[[FastAPI], contextlib.AbstractAsyncContextManager[None]]:
    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        _ensure_dirs(settings)
        _ensure_tokens(settings)
        await asyncio.to_thread(init_db, settings)
        await asyncio.to_thread(_ensure_first_admin, settings)
        _private_database(settings)
        bus.attach(asyncio.get_running_loop())
        task = asyncio.create_task(recovery_loop(settings, loop_interval(settings)))
        drain = asyncio.create_task(drain_loop(settings))  # notifications' outbox
        _freeze_startup_objects()
        try:
            yield
        finally:
            for t in (task, drain):
                t.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await t

    return lifespan


SPA_PATH = "/{path:path}"
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def allowed_methods(app: FastAPI, scope: Any) -> list[str]:
    """Every method some route answers on this path, found by asking the routes as the router
    does (the SPA's catch-all only outside /api, where it answers 404)."""
    api = str(scope.get("path", "")).startswith("/api/")
    routes = [r for r in app.router.routes if not (api and getattr(r, "path", "") == SPA_PATH)]
    return [
        method
        for method in _METHODS
        if any(r.matches({**scope, "method": method})[0] is Match.FULL for r in routes)
    ]


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(NotFound)
    async def not_found(_req: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(OverQuota)
    async def over_quota(_req: Request, exc: OverQuota) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=429)

    @app.exception_handler(Conflict)
    async def conflict(_req: Request, exc: Conflict) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=409)

    @app.exception_handler(RequestValidationError)
    async def request_invalid(req: Request, exc: RequestValidationError) -> JSONResponse:
        # Whatever the request held (bytes that are not UTF-8, lone surrogates, huge inputs),
        # the echo is made safe first: a 422 must never turn into a 500. A body that carries a
        # secret (the settings routes) is never echoed at all.
        echo = not req.url.path.startswith(SECRET_BODY_PATHS)
        detail = safe_errors(friendlier(exc.errors()), echo=echo)
        return JSONResponse({"detail": detail}, status_code=422)

    @app.exception_handler(DataError)
    async def unstorable(_req: Request, exc: DataError) -> JSONResponse:
        # The database refused a value (a NUL in text, a number out of range): the input's fault.
        reason = str(exc.orig).splitlines()[0] if exc.orig else "invalid value"
        msg = f"a value cannot be stored ({reason}): fix the input"
        # FastAPI's 422 shape; the database does not say which field, so loc is the request.
        body = {"detail": [{"loc": ["body"], "msg": msg, "type": "unstorable_value"}]}
        return JSONResponse(body, status_code=422)

    @app.exception_handler(OperationalError)
    async def unwritable(_req: Request, exc: OperationalError) -> JSONResponse:
        # The database, not the request, is at fault: say so instead of a bare 500.
        if dbhealth.is_storage_error(exc):
            msg = (
                f"the database cannot store anything: {dbhealth.describe(exc)}; nothing was "
                "saved. Free space where the database lives, then retry (GET /api/health "
                "says when it is writable again)"
            )
            return JSONResponse({"detail": msg}, status_code=507)
        msg = f"the database is unavailable ({dbhealth.describe(exc)}); retry shortly"
        return JSONResponse({"detail": msg}, status_code=503, headers={"Retry-After": "5"})

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 405:
            # Starlette names the methods of the first route whose path matched; a path
            # served by several routes (GET and POST /api/runs) allows all of theirs.
            allow = ", ".join(allowed_methods(request.app, request.scope))
            return JSONResponse({"detail": exc.detail}, status_code=405, headers={"Allow": allow})
        return await http_exception_handler(request, exc)

    @app.exception_handler(ConfigInvalid)
    async def invalid(_req: Request, exc: ConfigInvalid) -> JSONResponse:
        return JSONResponse({"detail": exc.errors}, status_code=422)


def _mount_frontend(app: FastAPI, dist: Path) -> None:
    """Serve the built SPA: real files as they are, any other non-/api path gets index.html."""
    index = dist / "index.html"
    root = dist.resolve()

    @app.get(SPA_PATH, include_in_schema=False)
    async def spa(path: str) -> Response:
        if path == "api" or path.startswith("api/"):
            return JSONResponse({"detail": "Not Found"}, status_code=404)
        target = (root / path).resolve()
        if path and target.is_file() and target.is_relative_to(root):
            return FileResponse(target)
        return FileResponse(index)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    _redact_access_log()
    app = FastAPI(
        title="cpt-panel",
        version=__version__,
        description="Control panel for continual pretraining of LLMs.",
        lifespan=_lifespan(settings),
        generate_unique_id_function=_operation_id,
    )
    _add_error_handlers(app)
    app.state.settings = settings  # the body limits check tokens before the routes do
    app.state.auth = Authenticator()
    app.add_middleware(AuditFallback)  # innermost: sees who the routes found and the status
    app.add_middleware(WritesGuard)  # inside the limits (health tells anyone the same)
    app.add_middleware(RequestLimits)
    app.add_middleware(SecurityHeaders)  # outermost: the limits' own 413/422 get them too
    # stream before runs: /runs/stream must not be taken for /runs/{run_id}.
    routers = (
        *(health, session, users, tokens, audit, stream, runs, experiments, metrics),
        *(checkpoints, jobs, scores, workers, meta, models, panel_settings, notifications),
        internal,
    )
    for module in (*routers, internal_jobs):
        app.include_router(module.router, prefix="/api")
    dist = settings.frontend_dist or ROOT / "frontend" / "dist"
    if (dist / "index.html").is_file():
        _mount_frontend(app, dist)
    return app


app = create_app()
