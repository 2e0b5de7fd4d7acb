"""Users, their personal tokens and their quotas.

The first admin (``admin``) exists from the migration on; the API gives it a one-time password
at start while no admin can sign in (``ensure_first_admin``): written to ``<data>/.admin_password``
(0600, like the generated tokens) for ``cpt-panel up`` to print to a terminal, never to a log.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta
from typing import Any

from sqlmodel import Session, col, func, select

from backend.core import identity
from backend.core.db import write_session
from backend.core.passwords import hash_password, one_time_password
from backend.models import ApiToken, Run, User, UserSession, utcnow
from backend.services.errors import Conflict, NotFound
from cpt_contract.roles import Role
from cpt_contract.settings import Settings, write_private_once
from cpt_contract.statuses import ACTIVE_STATUSES, RunStatus

PASSWORD_FILE = ".admin_password"


def get_user(db: Session, name: str) -> User:
    user = db.exec(select(User).where(User.name == name)).first()
    if user is None:
        raise NotFound(f"user {name} not found")
    return user


def create_user(db: Session, name: str, role: Role, password: str | None) -> tuple[User, str]:
    """A new user; the password given, or a generated one (returned, to be shown once)."""
    if db.exec(select(User).where(User.name == name)).first() is not None:
        raise Conflict(f"user {name} exists already: pick another name")
    secret = password or one_time_password()
    user = User(name=name, role=role, password_hash=hash_password(secret))
    db.add(user)
    db.flush()
    return user, secret


def admins_left(db: Session, without: User) -> int:
    stmt = select(func.count()).where(
        User.role == Role.admin, col(User.active), User.id != without.id
    )
    return int(db.exec(stmt).one())


def end_sessions(db: Session, user: User) -> None:
    for row in db.exec(select(UserSession).where(UserSession.user_id == user.id)):
        db.delete(row)


def ensure_first_admin(settings: Settings) -> str | None:
    """While no active admin has a password, give the first admin a one-time one (written to
    the data dir's ``.admin_password``, 0600). Returns the file's path when it made one."""
    path = settings.resolved_data_dir / PASSWORD_FILE
    with write_session(settings) as db:
        admins = db.exec(select(User).where(User.role == Role.admin, col(User.active))).all()
        if not admins or any(a.password_hash for a in admins):
            return None
        first = min(admins, key=lambda a: a.id or 0)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # a stale file from a database made again
        password = write_private_once(path, one_time_password())
        first.password_hash = hash_password(password)
        db.commit()
    return str(path)


def forget_first_password(settings: Settings) -> None:
    with contextlib.suppress(FileNotFoundError):
        (settings.resolved_data_dir / PASSWORD_FILE).unlink()


# --- personal tokens ------------------------------------------------------------------------


def create_token(db: Session, user: User, name: str, days: int) -> tuple[ApiToken, str]:
    secret = identity.new_token()
    assert user.id is not None
    row = ApiToken(
        user_id=user.id,
        name=name,
        digest=identity.digest(secret),
        expires_at=utcnow() + timedelta(days=days),
    )
    db.add(row)
    db.flush()
    return row, secret


# --- quotas ---------------------------------------------------------------------------------

_LIVE = [s.value for s in ACTIVE_STATUSES]


class OverQuota(Exception):
    """A 429 saying the limit and what is using it."""


def check_quota(db: Session, owner: str | None, adding: int = 1) -> None:
    """Refuses ``adding`` more live (and queued) runs for ``owner`` over its admin-set quotas."""
    if owner is None:
        return
    user = db.exec(select(User).where(User.name == owner)).first()
    if user is None or (user.max_live_runs is None and user.max_queued_runs is None):
        return
    live = list(
        db.exec(
            select(Run.id, Run.status)
            .where(Run.owner == owner, col(Run.status).in_(_LIVE))
            .order_by(col(Run.created_at))
        )
    )
    queued = [rid for rid, status in live if status == RunStatus.queued]
    for limit, using, what in (
        (user.max_live_runs, [rid for rid, _ in live], "live (queued or running) runs"),
        (user.max_queued_runs, queued, "queued runs"),
    ):
        if limit is not None and len(using) + adding > limit:
            shown = ", ".join(using[:10]) + (" ..." if len(using) > 10 else "")
            asked = "" if adding == 1 else f" (this would add {adding})"
            raise OverQuota(
                f"{owner} may have {limit} {what} at once (quota set by an admin) and has "
                f"{len(using)}{asked}: {shown or 'none'}. Cancel or wait for one, or ask an "
                "admin to raise the quota"
            )


def public(user: User) -> dict[str, Any]:
    return {
        "name": user.name,
        "role": user.role,
        "active": user.active,
        "max_live_runs": user.max_live_runs,
        "max_queued_runs": user.max_queued_runs,
        "has_password": user.password_hash is not None,
        "created_at": user.created_at,
    }
