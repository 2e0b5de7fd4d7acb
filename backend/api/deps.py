"""FastAPI dependencies: database session, settings and the two kinds of authentication."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, NoReturn

from fastapi import Depends, HTTPException, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from backend.core.auth import Refusal, authenticator
from backend.core.db import get_session
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


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _raise(refusal: Refusal) -> NoReturn:
    raise HTTPException(
        status_code=refusal.status, detail=refusal.detail, headers=refusal.headers
    ) from None


async def require_api_token(request: Request, settings: SettingsDep, creds: BearerDep) -> str:
    presented = creds.credentials if creds else None
    try:
        authenticator(request.app).check_user(settings, _client(request), presented, "API token")
    except Refusal as refusal:
        _raise(refusal)
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
    what = "API token (header or ?token=)"
    try:
        authenticator(request.app).check_user(settings, _client(request), presented, what)
    except Refusal as refusal:
        _raise(refusal)
    return "api"


async def require_worker_token(
    request: Request,
    settings: SettingsDep,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_worker_bearer)],
) -> str:
    presented = creds.credentials if creds else None
    try:
        authenticator(request.app).check_worker(settings, _client(request), presented)
    except Refusal as refusal:
        _raise(refusal)
    return "worker"


CurrentUser = Annotated[str, Depends(require_api_token)]
StreamUser = Annotated[str, Depends(require_api_token_or_query)]
WorkerAuth = Annotated[str, Depends(require_worker_token)]
