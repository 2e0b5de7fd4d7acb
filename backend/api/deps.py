"""FastAPI dependencies: database session, settings and the two kinds of authentication."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Query, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from backend.core.db import get_session
from backend.core.security import token_matches
from cpt_contract.settings import Settings, get_settings

SettingsDep = Annotated[Settings, Depends(get_settings)]


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


def require_api_token(settings: SettingsDep, creds: BearerDep) -> str:
    if creds is None or not token_matches(settings, "api_token", creds.credentials):
        raise _unauthorized("API token")
    return "api"


def require_api_token_or_query(
    settings: SettingsDep,
    creds: BearerDep,
    token: Annotated[
        str | None, Query(description="API token, for EventSource (cannot send headers).")
    ] = None,
) -> str:
    presented = creds.credentials if creds is not None else token
    if not token_matches(settings, "api_token", presented):
        raise _unauthorized("API token (header or ?token=)")
    return "api"


def require_worker_token(
    settings: SettingsDep,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_worker_bearer)],
) -> str:
    if creds is None or not token_matches(settings, "worker_token", creds.credentials):
        raise _unauthorized("worker token")
    return "worker"


CurrentUser = Annotated[str, Depends(require_api_token)]
StreamUser = Annotated[str, Depends(require_api_token_or_query)]
WorkerAuth = Annotated[str, Depends(require_worker_token)]
