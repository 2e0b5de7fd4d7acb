"""Users (``/api/users``, admins only): create, list, change role, quotas, password, disable.

Users are disabled, never deleted: their runs and audit rows keep naming them.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, status
from pydantic import BaseModel, Field
from sqlmodel import col, select

from backend.api.deps import Admin, SettingsDep, admin_role
from backend.api.routes.common import AUTH, CONFLICT, NOT_FOUND
from backend.core.db import write_session
from backend.core.passwords import hash_password, one_time_password
from backend.models import User, UtcDatetime
from backend.services import audit, users
from cpt_contract.limits import INT32
from cpt_contract.roles import PASSWORD_MAX, PASSWORD_MIN, USER_NAME_PATTERN, Role

router = APIRouter(
    tags=["users"], dependencies=[Depends(admin_role)], responses={**AUTH, **NOT_FOUND}
)
Quota = Annotated[int | None, Field(default=None, ge=0, le=INT32)]


class UserPublic(BaseModel):
    name: str
    role: Role
    active: bool
    max_live_runs: int | None
    max_queued_runs: int | None
    has_password: bool
    created_at: UtcDatetime


class UserCreate(BaseModel):
    name: str = Field(pattern=USER_NAME_PATTERN, description="lower-case letters, digits, . _ -")
    role: Role = Role.viewer
    #: None: a generated one, answered once.
    password: str | None = Field(default=None, min_length=PASSWORD_MIN, max_length=PASSWORD_MAX)
    max_live_runs: Quota = None
    max_queued_runs: Quota = None

    model_config = {"extra": "forbid"}


class UserCreated(UserPublic):
    #: The generated password, shown this once (None when one was given).
    password: str | None = None


class UserUpdate(BaseModel):
    role: Role | None = None
    active: bool | None = None
    max_live_runs: Quota = None
    max_queued_runs: Quota = None
    #: true: a new generated password, answered once (every session of the user ends).
    reset_password: bool = False

    model_config = {"extra": "forbid"}


@router.get("/users", response_model=list[UserPublic])
def list_users(settings: SettingsDep) -> list[dict[str, Any]]:
    with write_session(settings) as db:
        return [users.public(u) for u in db.exec(select(User).order_by(col(User.name)))]


@router.post(
    "/users", response_model=UserCreated, status_code=status.HTTP_201_CREATED, responses=CONFLICT
)
def create_user(me: Admin, body: UserCreate, settings: SettingsDep) -> dict[str, Any]:
    with write_session(settings) as db:
        user, password = users.create_user(db, body.name, body.role, body.password)
        user.max_live_runs, user.max_queued_runs = body.max_live_runs, body.max_queued_runs
        changes = body.model_dump(exclude={"password"}, exclude_none=True)
        audit.record(db, me, "user.create", f"user/{user.name}", changes)
        db.commit()
        return {**users.public(user), "password": None if body.password else password}


@router.patch("/users/{name}", response_model=UserCreated, responses=CONFLICT)
def update_user(me: Admin, name: str, body: UserUpdate, settings: SettingsDep) -> dict[str, Any]:
    """Only the fields sent change (``null`` quota: send it to lift the limit)."""
    sent = body.model_fields_set
    with write_session(settings) as db:
        user = users.get_user(db, name)
        losing_admin = (body.role is not None and body.role != Role.admin) or body.active is False
        if user.role == Role.admin and losing_admin and users.admins_left(db, user) == 0:
            raise HTTPException(409, f"{name} is the last active admin: make another admin first")
        changes: dict[str, Any] = {}
        for field in ("role", "active", "max_live_runs", "max_queued_runs"):
            if field in sent and (
                field in ("max_live_runs", "max_queued_runs") or getattr(body, field) is not None
            ):
                value = getattr(body, field)
                if getattr(user, field) != value:
                    changes[field] = {"from": getattr(user, field), "to": value}
                    setattr(user, field, value)
        password = None
        if body.reset_password:
            password = one_time_password()
            user.password_hash = hash_password(password)
            changes["password"] = "reset"
        if body.reset_password or body.active is False or "role" in changes:
            users.end_sessions(db, user)
        audit.record(db, me, "user.edit", f"user/{name}", changes)
        db.commit()
        return {**users.public(user), "password": password}
