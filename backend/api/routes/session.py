"""Signing in and out (``/api/session``), who am I (``/api/me``) and one's own password.

Sign-in sets a fresh server-side session (the cookie ``HttpOnly``, ``SameSite=Strict``,
``Secure`` over TLS) and ends any session the browser held before (no fixation); it answers the
CSRF token, also set as a cookie the page can read, which every write of the session echoes in
``X-CSRF-Token``. Wrong passwords are rate-limited per client and per name.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Request, Response, status
from pydantic import BaseModel, Field
from sqlmodel import select

from backend.api.deps import CookieDep, SettingsDep, Viewer, client_address
from backend.api.routes.common import AUTH
from backend.core import identity
from backend.core.auth import Refusal, authenticator
from backend.core.db import write_session
from backend.core.passwords import hash_password, needs_rehash, verify_password
from backend.models import User, UserSession
from backend.services import audit, users
from cpt_contract.roles import (
    CSRF_COOKIE,
    PASSWORD_MAX,
    PASSWORD_MIN,
    SESSION_COOKIE,
    SESSION_HOURS,
    Role,
)

router = APIRouter(tags=["session"])


class SignIn(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=PASSWORD_MAX)

    model_config = {"extra": "forbid"}


class Me(BaseModel):
    name: str
    role: Role
    #: ``session``, ``token`` or ``api-token`` (the panel's single token).
    via: str
    max_live_runs: int | None = None
    max_queued_runs: int | None = None


class SignedIn(Me):
    #: Echo it in ``X-CSRF-Token`` on every write of this session.
    csrf_token: str


class PasswordChange(BaseModel):
    current: str = Field(min_length=1, max_length=PASSWORD_MAX)
    new: str = Field(min_length=PASSWORD_MIN, max_length=PASSWORD_MAX)

    model_config = {"extra": "forbid"}


def _refuse(refusal: Refusal) -> Response:
    from fastapi.responses import JSONResponse

    return JSONResponse(
        {"detail": refusal.detail}, status_code=refusal.status, headers=refusal.headers
    )


@router.post(
    "/session",
    response_model=SignedIn,
    responses={
        401: {"description": "Wrong name or password"},
        429: {"description": "Too many failed sign-ins: wait Retry-After seconds"},
    },
)
def sign_in(
    request: Request,
    response: Response,
    settings: SettingsDep,
    old_cookie: CookieDep,
    body: Annotated[SignIn | None, Body()] = None,
) -> SignedIn | Response:
    """Sign in with a name and password (no token needed: this is how a browser gets one)."""
    client = client_address(request)
    if body is None:
        return _refuse(
            Refusal(
                401,
                "send {name, password} to sign in, or an 'Authorization: Bearer <token>' "
                "header to the other routes",
                {},
            )
        )
    auth = authenticator(request.app)
    name = body.name.strip().lower()
    try:
        auth.check_signin(client, name)
    except Refusal as refusal:
        return _refuse(refusal)
    with write_session(settings) as db:
        user = db.exec(select(User).where(User.name == name)).first()
        ok = verify_password(user.password_hash if user else None, body.password)
        if not ok or user is None or not user.active:
            auth.signin_failed(client, name)
            why = "inactive" if ok and user is not None else "wrong name or password"
            audit.append(
                db,
                actor=name,
                via="session",
                client=client,
                action="session.sign_in_failed",
                target=f"user/{name}",
                changes={"reason": why},
            )
            db.commit()
            return _refuse(Refusal(401, "wrong name or password (or the user is disabled)", {}))
        assert user.password_hash is not None
        if needs_rehash(user.password_hash):
            user.password_hash = hash_password(body.password)
        cookie, csrf = identity.new_session(db, user, old_cookie)
        audit.append(
            db,
            actor=user.name,
            via="session",
            client=client,
            action="session.sign_in",
            target=f"user/{user.name}",
        )
        db.commit()
    secure = request.url.scheme == "https"
    age = SESSION_HOURS * 3600
    response.set_cookie(
        SESSION_COOKIE, cookie, max_age=age, httponly=True, secure=secure, samesite="strict"
    )
    response.set_cookie(CSRF_COOKIE, csrf, max_age=age, secure=secure, samesite="strict")
    return SignedIn(
        name=user.name,
        role=Role(user.role),
        via="session",
        csrf_token=csrf,
        max_live_runs=user.max_live_runs,
        max_queued_runs=user.max_queued_runs,
    )


@router.delete("/session", status_code=status.HTTP_204_NO_CONTENT, responses=AUTH)
def sign_out(me: Viewer, settings: SettingsDep) -> Response:
    """End this browser's session (a token caller: nothing to end)."""
    with write_session(settings) as db:
        if me.session_id is not None and (row := db.get(UserSession, me.session_id)):
            db.delete(row)
        audit.record(db, me, "session.sign_out", f"user/{me.name}")
        db.commit()
    out = Response(status_code=status.HTTP_204_NO_CONTENT)
    out.delete_cookie(SESSION_COOKIE, httponly=True, samesite="strict")
    out.delete_cookie(CSRF_COOKIE, samesite="strict")
    return out


@router.get("/me", response_model=Me, responses=AUTH)
def who_am_i(me: Viewer, settings: SettingsDep) -> Me:
    with write_session(settings) as db:
        user = db.get(User, me.user_id) if me.user_id is not None else None
    return Me(
        name=me.name,
        role=me.role,
        via=me.via,
        max_live_runs=user.max_live_runs if user else None,
        max_queued_runs=user.max_queued_runs if user else None,
    )


@router.put("/me/password", status_code=status.HTTP_204_NO_CONTENT, responses=AUTH)
def change_password(me: Viewer, body: PasswordChange, settings: SettingsDep) -> Response:
    """One's own password; every other session of the user ends."""
    from fastapi import HTTPException

    with write_session(settings) as db:
        user = db.get(User, me.user_id) if me.user_id is not None else None
        if user is None:
            raise HTTPException(409, "this caller has no user to set a password for")
        if not verify_password(user.password_hash, body.current):
            msg = "is not your current password: type the one you sign in with"
            raise HTTPException(
                422, [{"loc": ["body", "current"], "msg": msg, "type": "value_error"}]
            )
        user.password_hash = hash_password(body.new)
        for row in db.exec(select(UserSession).where(UserSession.user_id == user.id)):
            if row.id != me.session_id:
                db.delete(row)
        audit.record(db, me, "user.password", f"user/{user.name}", {"password": "changed"})
        db.commit()
    users.forget_first_password(settings)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
