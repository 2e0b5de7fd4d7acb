"""FastAPI dependencies: database session, settings and the two kinds of authentication."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Query, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from backend.core.db import get_session
from backend.core.ratelimit import FailureLimiter
from backend.core.security import token_matches
from cpt_contract.settings import Settings, get_settings


async def app_settings() -> Settings:
    """The panel's settings. A coroutine, like the token checks below: FastAPI runs a plain
    function dependency on the thread pool, a hop to a thread and back on every request for a
    cached lookup (a measurable share of the API's CPU while a run reports)."""
    return get_settings()


SettingsDep = Annotated[Settings, Depends(app_settings)]


def _session(settings: SettingsDep) -> Iterator[Session]:
    # Through the settings dependency, so an app built with its own settings uses its own DB.
    yield from get_session(settings)


SessionDep = Annotated[Session, Depends(_session)]

# auto_error=False: we answer 401 (not 403) with our own message when the header is missing.
_bearer = HTTPBearer(auto_error=False, description="The API token (CPT_API_TOKEN).")
_worker_bearer = HTTPBearer(
    auto_error=False, scheme_name="WorkerToken", description="The worker token (CPT_WORKER_TOKEN)."
)
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def _unauthorized(what: str) -> HTTPException:
    return HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED,
        detail=f"missing or invalid {what}: send 'Authorization: Bearer <token>'",
        headers={"WWW-Authenticate": "Bearer"},
    )


def _limiter(request: Request) -> FailureLimiter:
    limiter = getattr(request.app.state, "auth_limiter", None)
    if limiter is None:  # an app built without create_app (tests of single routers)
        limiter = request.app.state.auth_limiter = FailureLimiter()
    return limiter


def _check(
    request: Request, settings: Settings, name: str, presented: str | None, what: str
) -> None:
    """401 for a missing or wrong token; 429 once a client sent too many wrong ones."""
    limiter = _limiter(request)
    client = request.client.host if request.client else "unknown"
    wait = limiter.retry_after(client)
    if wait is not None:
        raise HTTPException(
            status_code=status.HTTP_429_TOO_MANY_REQUESTS,
            detail=f"too many wrong tokens from {client}: try again in {wait} s",
            headers={"Retry-After": str(wait)},
        )
    if not token_matches(settings, name, presented):
        if presented:
            limiter.failed(client)
        raise _unauthorized(what)


async def require_api_token(request: Request, settings: SettingsDep, creds: BearerDep) -> str:
    _check(request, settings, "api_token", creds.credentials if creds else None, "API token")
    return "api"


async def require_api_token_or_query(
    request: Request,
    settings: SettingsDep,
    creds: BearerDep,
    token: Annotated[
        str | None,
        Query(max_length=512, description="API token, for EventSource (cannot send headers)."),
    ] = None,
) -> str:
    presented = creds.credentials if creds is not None else token
    _check(request, settings, "api_token", presented, "API token (header or ?token=)")
    return "api"


async def require_worker_token(
    request: Request,
    settings: SettingsDep,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_worker_bearer)],
) -> str:
    presented = creds.credentials if creds else None
    _check(request, settings, "worker_token", presented, "worker token")
    return "worker"


CurrentUser = Annotated[str, Depends(require_api_token)]
StreamUser = Annotated[str, Depends(require_api_token_or_query)]
WorkerAuth = Annotated[str, Depends(require_worker_token)]
