"""Who is calling: a ``Principal`` from a bearer token (the panel's single API token, which acts
as the first admin, or a personal token) or a browser's session cookie. Only hashes are kept:
sha256 for tokens and session ids (random, 256 bits), Argon2id for passwords.

Unknown credentials fill the caller's failure bucket (``backend/core/auth.py``), as wrong
tokens always did. The permission and CSRF checks are the routes' (``backend/api/deps.py``).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlmodel import Session, col, select

from backend.core.db import get_engine
from backend.models import ApiToken, User, UserSession, utcnow
from cpt_contract.roles import SESSION_HOURS, TOKEN_PREFIX, Role
from cpt_contract.settings import Settings


@dataclass
class Principal:
    name: str
    role: Role
    #: ``api-token`` (the panel's single token), ``token`` (personal), ``session`` (browser).
    via: str
    client: str
    user_id: int | None = None
    session_id: str | None = None
    #: Set once the request's audit row is written (the fallback then writes none).
    audited: bool = False


class Unknown(Exception):
    """The credential names nobody (or somebody no longer allowed in): a 401."""


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "replace")).hexdigest()


def _aware(value: datetime) -> datetime:
    from datetime import UTC

    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def first_admin(db: Session) -> User | None:
    """The oldest active admin: who the panel's single API token acts as."""
    stmt = select(User).where(User.role == Role.admin, col(User.active)).order_by(col(User.id))
    return db.exec(stmt).first()


def legacy_principal(settings: Settings, client: str) -> Principal:
    with Session(get_engine(settings)) as db:
        admin = first_admin(db)
        if admin is None:  # every admin deactivated: the token still acts as the panel's admin
            return Principal("admin", Role.admin, "api-token", client)
        return Principal(admin.name, Role.admin, "api-token", client, admin.id)


def token_principal(settings: Settings, token: str, client: str) -> Principal:
    now = utcnow()
    with Session(get_engine(settings)) as db:
        row = db.exec(select(ApiToken).where(ApiToken.digest == digest(token))).first()
        if row is None or row.revoked_at is not None or _aware(row.expires_at) <= now:
            raise Unknown("token")
        user = db.get(User, row.user_id)
        if user is None or not user.active:
            raise Unknown("token")
        return Principal(user.name, Role(user.role), "token", client, user.id)


def session_principal(settings: Settings, cookie: str, client: str) -> Principal:
    now = utcnow()
    with Session(get_engine(settings)) as db:
        row = db.get(UserSession, digest(cookie))
        if row is None or _aware(row.expires_at) <= now:
            raise Unknown("session")
        user = db.get(User, row.user_id)
        if user is None or not user.active:
            raise Unknown("session")
        return Principal(user.name, Role(user.role), "session", client, user.id, row.id)


def csrf_matches(settings: Settings, session_id: str, presented: str | None) -> bool:
    if not presented:
        return False
    with Session(get_engine(settings)) as db:
        row = db.get(UserSession, session_id)
        return row is not None and hmac.compare_digest(row.csrf_digest, digest(presented))


def new_session(db: Session, user: User, old_cookie: str | None) -> tuple[str, str]:
    """A fresh session for ``user`` (cookie, CSRF token); whatever session the browser held
    before is ended, so an id planted before the sign-in never becomes a signed-in one."""
    if old_cookie and (old := db.get(UserSession, digest(old_cookie))) is not None:
        db.delete(old)
    # Sessions that ran out are of no use: gone at the next sign-in, whoever's.
    db.execute(delete(UserSession).where(col(UserSession.expires_at) < utcnow()))
    cookie, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    assert user.id is not None
    db.add(
        UserSession(
            id=digest(cookie),
            user_id=user.id,
            csrf_digest=digest(csrf),
            expires_at=utcnow() + timedelta(hours=SESSION_HOURS),
        )
    )
    return cookie, csrf


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)
