"""Notification channels: create (the webhook URL into the secret store), list, delete, test."""

from __future__ import annotations

import secrets as pysecrets
from urllib.parse import urlsplit

from sqlmodel import Session, col, select

from backend.models import ChannelPublic, NotificationChannel, NotificationDelivery, Run
from backend.services import secrets
from backend.services.errors import NotFound
from backend.services.notifications import payloads
from backend.services.notifications.deliver import DeliveryFailed, send, target_of, url_secret
from cpt_contract.notifications import ChannelIn
from cpt_contract.settings import Settings


def public(channel: NotificationChannel) -> ChannelPublic:
    return ChannelPublic.model_validate(channel, from_attributes=True)


def create(settings: Settings, session: Session, body: ChannelIn) -> NotificationChannel:
    if body.run_id is not None and session.get(Run, body.run_id) is None:
        raise NotFound(f"run {body.run_id} not found")
    channel = NotificationChannel(
        id="n-" + pysecrets.token_hex(4),
        name=body.name,
        kind=body.kind,
        format=body.format if body.kind == "webhook" else "email",
        host=urlsplit(body.url).hostname if body.url else None,
        to=list(body.to) if body.kind == "email" else [],
        events=list(dict.fromkeys(body.events)),
        run_id=body.run_id,
    )
    session.add(channel)
    if body.kind == "webhook" and body.url:
        secrets.put(settings, session, url_secret(channel.id), body.url)
    return channel


def get(session: Session, channel_id: str) -> NotificationChannel:
    channel = session.get(NotificationChannel, channel_id)
    if channel is None:
        raise NotFound(f"notification channel {channel_id} not found")
    return channel


def list_channels(session: Session, run_id: str | None = None) -> list[NotificationChannel]:
    stmt = select(NotificationChannel).order_by(col(NotificationChannel.created_at))
    if run_id is not None:
        stmt = stmt.where(NotificationChannel.run_id == run_id)
    return list(session.exec(stmt))


def delete(session: Session, channel_id: str) -> None:
    channel = get(session, channel_id)
    for d in session.exec(
        select(NotificationDelivery).where(NotificationDelivery.channel_id == channel_id)
    ):
        session.delete(d)
    secrets.delete(session, url_secret(channel_id))
    session.delete(channel)


def test(settings: Settings, session: Session, channel_id: str) -> str | None:
    """Send a test message now (no retry): None when delivered, else why not."""
    channel = get(session, channel_id)
    try:
        target = target_of(settings, session, channel)
        send(settings, target, payloads.test_summary(settings, channel.name))
    except (DeliveryFailed, secrets.SecretUnreadable) as exc:
        return str(exc)
    return None
