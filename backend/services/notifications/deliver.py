"""One attempt at one delivery: a webhook POST (2xx is delivered) or an SMTP message. Raises
``DeliveryFailed`` with a one-line reason (never the URL: it may carry a token)."""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlmodel import Session

from backend.models import NotificationChannel
from backend.services import secrets
from backend.services.notifications import payloads
from cpt_contract.settings import Settings

TIMEOUT_SECONDS = 10.0
SMTP_PASSWORD = "smtp.password"


class DeliveryFailed(Exception):
    """The receiver did not take it (refused, timed out, answered an error)."""


def url_secret(channel_id: str) -> str:
    return f"notify.{channel_id}.url"


def smtp_password(settings: Settings, session: Session) -> str | None:
    """The stored one (``PUT /api/settings/smtp/password``), else ``CPT_SMTP_PASSWORD``."""
    return secrets.get(settings, session, SMTP_PASSWORD) or settings.smtp_password


def post_webhook(url: str, body: dict[str, Any]) -> None:
    try:
        r = httpx.post(url, json=body, timeout=TIMEOUT_SECONDS, follow_redirects=False)
    except httpx.HTTPError as exc:
        raise DeliveryFailed(f"webhook not reached: {type(exc).__name__}") from None
    if not 200 <= r.status_code < 300:
        raise DeliveryFailed(f"webhook answered HTTP {r.status_code}")


def send_email(
    settings: Settings, password: str | None, to: list[str], summary: dict[str, Any]
) -> None:
    if not settings.smtp_host:
        raise DeliveryFailed("no SMTP server: set CPT_SMTP_HOST")
    sender = settings.smtp_from or f"cpt-panel@{settings.smtp_host}"
    msg = payloads.email_message(sender, to, summary)
    try:
        if settings.smtp_security == "tls":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                settings.smtp_host, settings.smtp_port, timeout=TIMEOUT_SECONDS,
                context=ssl.create_default_context(),
            )  # fmt: skip
        else:
            smtp = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=TIMEOUT_SECONDS)
        with smtp:
            if settings.smtp_security == "starttls":
                smtp.starttls(context=ssl.create_default_context())
            if settings.smtp_user and password:
                smtp.login(settings.smtp_user, password)
            smtp.send_message(msg)
    except (OSError, smtplib.SMTPException) as exc:
        raise DeliveryFailed(f"SMTP: {type(exc).__name__}: {str(exc)[:200]}") from None


@dataclass(frozen=True)
class Target:
    """A channel with its secrets read: what a send needs, with no database session open."""

    kind: str
    format: str
    name: str
    url: str | None = field(default=None, repr=False)
    to: tuple[str, ...] = ()
    password: str | None = field(default=None, repr=False)


def target_of(settings: Settings, session: Session, channel: NotificationChannel) -> Target:
    if channel.kind == "webhook":
        url = secrets.get(settings, session, url_secret(channel.id))
        return Target("webhook", channel.format, channel.name, url=url)
    password = smtp_password(settings, session)
    return Target("email", channel.format, channel.name, to=tuple(channel.to), password=password)


def send(settings: Settings, target: Target, summary: dict[str, Any]) -> None:
    """Send ``summary`` to ``target`` now (one try)."""
    if target.kind == "webhook":
        if not target.url:
            raise DeliveryFailed("the webhook URL is not stored: create the channel again")
        post_webhook(target.url, payloads.webhook_body(target.format, summary))
    else:
        send_email(settings, target.password, list(target.to), summary)
