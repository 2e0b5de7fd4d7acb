"""Personal API tokens (``/api/tokens``): each user's own, for the CLI and scripts. Named, with
an expiry, shown once (only a hash is kept), revocable. An admin sees and revokes anyone's."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, status
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlmodel import col, select

from backend.api.deps import SettingsDep, Viewer
from backend.api.routes.common import AUTH, NOT_FOUND
from backend.core.db import write_session
from backend.models import ApiToken, User, UtcDatetime, utcnow
from backend.services import audit, users
from cpt_contract.limits import INT32
from cpt_contract.roles import TOKEN_MAX_DAYS, Role

router = APIRouter(tags=["tokens"], responses=AUTH)


class TokenCreate(BaseModel):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f]+$")
    expires_in_days: int = Field(default=90, ge=1, le=TOKEN_MAX_DAYS)

    model_config = {"extra": "forbid"}


class TokenPublic(BaseModel):
    id: int
    name: str
    user: str
    created_at: UtcDatetime
    expires_at: UtcDatetime
    revoked_at: UtcDatetime | None = None


class TokenCreated(TokenPublic):
    #: The token itself: shown this once, only its hash is kept.
    token: str


def _public(row: ApiToken, owner: str) -> dict[str, Any]:
    assert row.id is not None
    return {
        "id": row.id,
        "name": row.name,
        "user": owner,
        "created_at": row.created_at,
        "expires_at": row.expires_at,
        "revoked_at": row.revoked_at,
    }


def _user_of(db: Any, me: Viewer) -> User:
    user = db.get(User, me.user_id) if me.user_id is not None else None
    if user is None:
        raise HTTPException(409, "this caller has no user: sign in as a user first")
    return user


@router.get("/tokens", response_model=list[TokenPublic])
def list_tokens(me: Viewer, settings: SettingsDep) -> list[dict[str, Any]]:
    """One's own tokens (an admin: everyone's)."""
    with write_session(settings) as db:
        stmt = select(ApiToken, User).where(ApiToken.user_id == User.id)
        if me.role != Role.admin:
            stmt = stmt.where(ApiToken.user_id == me.user_id)
        rows = db.exec(stmt.order_by(col(ApiToken.id).desc())).all()
        return [_public(t, u.name) for t, u in rows]


@router.post("/tokens", response_model=TokenCreated, status_code=status.HTTP_201_CREATED)
def create_token(me: Viewer, body: TokenCreate, settings: SettingsDep) -> dict[str, Any]:
    with write_session(settings) as db:
        user = _user_of(db, me)
        row, secret = users.create_token(db, user, body.name, body.expires_in_days)
        audit.record(db, me, "token.create", f"token/{row.id}", body.model_dump(mode="json"))
        db.commit()
        return {**_public(row, user.name), "token": secret}


@router.delete(
    "/tokens/{token_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=NOT_FOUND,
)
def revoke_token(
    me: Viewer, token_id: Annotated[int, Path(ge=1, le=INT32)], settings: SettingsDep
) -> Response:
    with write_session(settings) as db:
        row = db.get(ApiToken, token_id)
        if row is None or (me.role != Role.admin and row.user_id != me.user_id):
            raise HTTPException(404, f"token {token_id} not found among yours")
        if row.revoked_at is None:
            row.revoked_at = utcnow()
        audit.record(db, me, "token.revoke", f"token/{token_id}", {"name": row.name})
        db.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
