"""Notification channels (``/api/notifications``): a webhook or e-mail told when runs end, a
test button, and the outbox's recent deliveries. The SMTP password is set write-only."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, status
from pydantic import BaseModel, Field
from sqlmodel import col, select

from backend.api.deps import Admin, CurrentUser, SessionDep, SettingsDep, require_api_token
from backend.api.routes.common import AUTH, NOT_FOUND
from backend.core.db import write_session
from backend.core.identity import Principal
from backend.core.permissions import ensure_owner
from backend.models import ChannelPublic, DeliveryPublic, NotificationDelivery
from backend.services import audit, secrets
from backend.services.notifications import channels
from backend.services.notifications.deliver import SMTP_PASSWORD
from cpt_contract.notifications import ChannelIn
from cpt_contract.roles import Role

router = APIRouter(
    tags=["notifications"], dependencies=[Depends(require_api_token)], responses=AUTH
)


class TestResult(BaseModel):
    delivered: bool
    error: str | None = None


class SmtpPasswordIn(BaseModel):
    password: str = Field(min_length=1, max_length=1000, description="write-only")

    model_config = {"extra": "forbid"}


class SmtpState(BaseModel):
    host: str | None
    port: int
    user: str | None
    sender: str | None
    security: str
    password_set: bool


def _mine(me: Principal, owner: str | None) -> bool:
    return me.role == Role.admin or owner is None or owner == me.name


@router.get("/notifications/channels", response_model=list[ChannelPublic])
def list_channels(
    me: CurrentUser,
    session: SessionDep,
    run_id: Annotated[str | None, Query(max_length=32)] = None,
) -> list[ChannelPublic]:
    """One's own channels (an admin: everyone's)."""
    found = channels.list_channels(session, run_id)
    return [channels.public(c) for c in found if _mine(me, c.owner)]


@router.post(
    "/notifications/channels",
    response_model=ChannelPublic,
    status_code=status.HTTP_201_CREATED,
    responses=NOT_FOUND,
)
def create_channel(me: CurrentUser, body: ChannelIn, settings: SettingsDep) -> ChannelPublic:
    with write_session(settings) as session:
        channel = channels.create(settings, session, body)
        channel.owner = me.name
        fields = {"kind": body.kind, "events": body.events, "run_id": body.run_id}
        audit.record(session, me, "notification.channel.create", f"channel/{channel.id}", fields)
        session.commit()
        return channels.public(channel)


@router.delete(
    "/notifications/channels/{channel_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=NOT_FOUND,
)
def delete_channel(me: CurrentUser, channel_id: str, settings: SettingsDep) -> None:
    with write_session(settings) as session:
        ensure_owner(me, channels.get(session, channel_id).owner, f"channel {channel_id}")
        channels.delete(session, channel_id)
        audit.record(session, me, "notification.channel.delete", f"channel/{channel_id}")
        session.commit()


@router.post(
    "/notifications/channels/{channel_id}/test", response_model=TestResult, responses=NOT_FOUND
)
def test_channel(
    me: CurrentUser, channel_id: str, settings: SettingsDep, session: SessionDep
) -> TestResult:
    """Send a test message now, once; the answer says whether the receiver took it."""
    ensure_owner(me, channels.get(session, channel_id).owner, f"channel {channel_id}")
    error = channels.test(settings, session, channel_id)
    return TestResult(delivered=error is None, error=error)


@router.get("/notifications/deliveries", response_model=list[DeliveryPublic])
def list_deliveries(
    session: SessionDep,
    run_id: Annotated[str | None, Query(max_length=32)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[DeliveryPublic]:
    stmt = select(NotificationDelivery).order_by(col(NotificationDelivery.id).desc()).limit(limit)
    if run_id is not None:
        stmt = stmt.where(NotificationDelivery.run_id == run_id)
    return [DeliveryPublic.model_validate(d, from_attributes=True) for d in session.exec(stmt)]


def _smtp_state(settings: SettingsDep, session: SessionDep) -> SmtpState:
    stored = secrets.info(settings, session, SMTP_PASSWORD)
    return SmtpState(
        host=settings.smtp_host,
        port=settings.smtp_port,
        user=settings.smtp_user,
        sender=settings.smtp_from,
        security=settings.smtp_security,
        password_set=bool(stored or settings.smtp_password),
    )


@router.get("/settings/smtp", response_model=SmtpState)
def smtp_state(settings: SettingsDep, session: SessionDep) -> SmtpState:
    return _smtp_state(settings, session)


@router.put("/settings/smtp/password", response_model=SmtpState)
def set_smtp_password(me: Admin, body: SmtpPasswordIn, settings: SettingsDep) -> SmtpState:
    """Stored encrypted; never answered (an admin's)."""
    with write_session(settings) as session:
        secrets.put(settings, session, SMTP_PASSWORD, body.password)
        audit.record(session, me, "settings.smtp_password.set", "settings/smtp")
        session.commit()
        return _smtp_state(settings, session)
