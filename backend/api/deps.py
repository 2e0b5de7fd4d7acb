"""FastAPI dependencies: database session, settings, who calls (people and the worker) and the
role a route needs.

The role aliases (``Viewer``, ``Operator``, ``Admin``) declare a route's role when named as a
parameter or a router dependency; a route naming none gets the safe default of
``backend/core/permissions.py`` (reads: viewer; writes: operator). A browser session's writes
also need the CSRF header.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, NoReturn

from fastapi import Depends, HTTPException, Query, Request
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from backend.core import identity, permissions
from backend.core.auth import Refusal, authenticator
from backend.core.db import get_session
from backend.core.identity import Principal
from cpt_contract.roles import CSRF_HEADER, SESSION_COOKIE, Role
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
_bearer = HTTPBearer(
    auto_error=False,
    description="The panel's API token (CPT_API_TOKEN, acts as the first admin) or a personal "
    "token (POST /api/tokens).",
)
_cookie = APIKeyCookie(
    name=SESSION_COOKIE, auto_error=False, description="A browser's sign-in (POST /api/session)."
)
_worker_bearer = HTTPBearer(
    auto_error=False, scheme_name="WorkerToken", description="The worker token (CPT_WORKER_TOKEN)."
)
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
CookieDep = Annotated[str | None, Depends(_cookie)]
_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _raise(refusal: Refusal) -> NoReturn:
    raise HTTPException(
        status_code=refusal.status, detail=refusal.detail, headers=refusal.headers
    ) from None


def _authorize(request: Request, settings: Settings, principal: Principal) -> Principal:
    method = request.method.upper()
    if principal.via == "session" and method in _UNSAFE:
        assert principal.session_id is not None
        presented = request.headers.get(CSRF_HEADER)
        if not identity.csrf_matches(settings, principal.session_id, presented):
            raise HTTPException(
                403,
                f"missing or wrong {CSRF_HEADER} header: a signed-in browser's writes echo the "
                "CSRF token its sign-in answered (the cpt_csrf cookie); reload the page",
            )
    needed = permissions.required_role(request.scope.get("route"), method)
    permissions.forbid_unless(principal.role, needed, principal.name)
    request.state.principal = principal  # the audit fallback reads it (backend/core/audit.py)
    return principal


def _identify(
    request: Request, settings: Settings, presented: str | None, cookie: str | None, what: str
) -> Principal:
    try:
        principal = authenticator(request.app).identify(
            settings, client_address(request), presented, cookie, what
        )
    except Refusal as refusal:
        _raise(refusal)
    return _authorize(request, settings, principal)


async def require_api_token(
    request: Request, settings: SettingsDep, creds: BearerDep, cookie: CookieDep
) -> Principal:
    presented = creds.credentials if creds else None
    return _identify(request, settings, presented, cookie, "API token")


async def require_api_token_or_query(
    request: Request,
    settings: SettingsDep,
    creds: BearerDep,
    cookie: CookieDep,
    token: Annotated[
        str | None,
        Query(max_length=512, description="API token, for EventSource (cannot send headers)."),
    ] = None,
) -> Principal:
    presented = creds.credentials if creds is not None else token
    return _identify(request, settings, presented, cookie, "API token (header or ?token=)")


async def require_worker_token(
    request: Request,
    settings: SettingsDep,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_worker_bearer)],
) -> str:
    presented = creds.credentials if creds else None
    try:
        authenticator(request.app).check_worker(settings, client_address(request), presented)
    except Refusal as refusal:
        _raise(refusal)
    return "worker"


# --- the role a route declares (backend/core/permissions.py) -----------------------------------


async def viewer_role(p: Annotated[Principal, Depends(require_api_token)]) -> Principal:
    return p


async def operator_role(p: Annotated[Principal, Depends(require_api_token)]) -> Principal:
    return p


async def admin_role(p: Annotated[Principal, Depends(require_api_token)]) -> Principal:
    return p


async def viewer_role_or_query(
    p: Annotated[Principal, Depends(require_api_token_or_query)],
) -> Principal:
    return p


permissions.MARKERS.update(
    {
        viewer_role: Role.viewer,
        operator_role: Role.operator,
        admin_role: Role.admin,
        viewer_role_or_query: Role.viewer,
    }
)

#: Signed in, any role (e.g. a POST that only reads, like a preview, or one's own tokens).
Viewer = Annotated[Principal, Depends(viewer_role)]
Operator = Annotated[Principal, Depends(operator_role)]
Admin = Annotated[Principal, Depends(admin_role)]
#: A viewer through ``?token=`` too (downloads by link, EventSource).
ViewerOrQuery = Annotated[Principal, Depends(viewer_role_or_query)]
#: Whoever calls, with the route's default role.
CurrentUser = Annotated[Principal, Depends(require_api_token)]
StreamUser = Annotated[Principal, Depends(require_api_token_or_query)]
WorkerAuth = Annotated[str, Depends(require_worker_token)]
