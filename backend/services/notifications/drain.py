"""The API's background task that delivers the outbox: due rows are claimed (their next try
pushed out, so a second API process leaves them alone), sent outside any transaction, then
marked delivered, or retried after ``backoff * 2^(tries-1)`` seconds, or failed after
``CPT_NOTIFY_ATTEMPTS`` tries. Sends run in a thread: the event loop (and ingest) never waits."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

from sqlmodel import col, select

from backend.core.db import write_session
from backend.models import NotificationChannel, NotificationDelivery, utcnow
from backend.services.notifications.deliver import DeliveryFailed, Target, send, target_of
from backend.services.secrets import SecretUnreadable
from cpt_contract.limits import REASON_MAX
from cpt_contract.settings import Settings

log = logging.getLogger(__name__)

#: How long a claimed delivery is left to its sender before another drain may take it.
CLAIM_SECONDS = 120
BATCH = 20


def backoff(settings: Settings, attempts: int) -> float:
    """Seconds before try ``attempts + 1`` (``attempts`` ≥ 1 tries have failed)."""
    return float(settings.notify_backoff_seconds * 2 ** (attempts - 1))


def _claim(settings: Settings) -> list[tuple[int, Target | str, dict[str, Any]]]:
    now = utcnow()
    out: list[tuple[int, Target | str, dict[str, Any]]] = []
    with write_session(settings) as session:
        rows = session.exec(
            select(NotificationDelivery)
            .where(
                NotificationDelivery.status == "pending",
                col(NotificationDelivery.next_attempt_at) <= now,
            )
            .order_by(col(NotificationDelivery.id))
            .limit(BATCH)
        ).all()
        for row in rows:
            channel = session.get(NotificationChannel, row.channel_id)
            if channel is None:
                continue
            try:
                target: Target | str = target_of(settings, session, channel)
            except SecretUnreadable as exc:
                target = str(exc)
            row.next_attempt_at = now + timedelta(seconds=CLAIM_SECONDS)
            session.add(row)
            assert row.id is not None
            out.append((row.id, target, dict(row.payload)))
        session.commit()
    return out


def _finish(settings: Settings, delivery_id: int, error: str | None) -> None:
    now = utcnow()
    with write_session(settings) as session:
        row = session.get(NotificationDelivery, delivery_id)
        if row is None:
            return
        row.attempts += 1
        if error is None:
            row.status, row.delivered_at, row.last_error = "delivered", now, None
        elif row.attempts >= settings.notify_attempts:
            row.status, row.last_error = "failed", error[:REASON_MAX]
        else:
            row.last_error = error[:REASON_MAX]
            row.next_attempt_at = now + timedelta(seconds=backoff(settings, row.attempts))
        session.add(row)
        session.commit()


def drain_once(settings: Settings) -> int:
    """Try every due delivery once; how many were tried."""
    claimed = _claim(settings)
    for delivery_id, target, payload in claimed:
        error: str | None
        if isinstance(target, str):
            error = target
        else:
            try:
                send(settings, target, payload)
                error = None
            except DeliveryFailed as exc:
                error = str(exc)
        if error:
            log.warning(
                "notification %s to %s not delivered: %s",
                delivery_id,
                getattr(target, "name", "?"),
                error,
            )
        _finish(settings, delivery_id, error)
    return len(claimed)


def interval(settings: Settings) -> float:
    return max(0.2, min(2.0, settings.notify_backoff_seconds / 2))


async def drain_loop(settings: Settings) -> None:
    while True:
        try:
            await asyncio.to_thread(drain_once, settings)
        except Exception:  # a database hiccup: try again next round
            log.exception("notification drain failed")
        await asyncio.sleep(interval(settings))
