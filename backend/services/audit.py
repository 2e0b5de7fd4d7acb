"""The audit log: one row per state-changing request, added to the change's own session so it
commits (or rolls back) with it. Rows are only ever appended: no route edits or deletes one.

``changes`` never holds a secret: keys naming a password, token, secret or key are masked.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlmodel import Session, col, or_, select

from backend.core.identity import Principal
from backend.models import AuditEntry

_SECRET_WORDS = ("password", "token", "secret", "key", "lease", "csrf")
_TEXT_MAX = 500


def _clean(value: Any, depth: int = 0) -> Any:
    if depth > 4:
        return "…"
    if isinstance(value, dict):
        return {
            str(k)[:100]: "***"
            if any(w in str(k).lower() for w in _SECRET_WORDS)
            else _clean(v, depth + 1)
            for k, v in list(value.items())[:100]
        }
    if isinstance(value, list | tuple):
        return [_clean(v, depth + 1) for v in list(value)[:100]]
    if isinstance(value, str):
        return value[:_TEXT_MAX]
    if value is None or isinstance(value, bool | int | float):
        return value
    return str(value)[:_TEXT_MAX]


def append(
    db: Session,
    *,
    actor: str,
    via: str,
    client: str,
    action: str,
    target: str = "",
    changes: dict[str, Any] | None = None,
) -> AuditEntry:
    entry = AuditEntry(
        actor=actor[:64],
        via=via[:16],
        client=client[:64],
        action=action[:48],
        target=target[:200],
        changes=_clean(changes or {}),
    )
    db.add(entry)
    return entry


def record(
    db: Session,
    principal: Principal,
    action: str,
    target: str = "",
    changes: dict[str, Any] | None = None,
) -> AuditEntry:
    """The request's row, in ``db``'s transaction: the caller commits it with the change."""
    principal.audited = True
    return append(
        db,
        actor=principal.name,
        via=principal.via,
        client=principal.client,
        action=action,
        target=target,
        changes=changes,
    )


def _utc(value: datetime) -> datetime:
    """Times are stored in UTC (SQLite keeps no offset): a filter's offset is applied first."""
    return value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)


def query(
    db: Session,
    *,
    actor: str | None = None,
    action: str | None = None,
    target: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before_id: int | None = None,
    limit: int | None = 200,
) -> list[AuditEntry]:
    """Newest first. ``action`` matches a prefix (``run.`` = every run action); ``target``
    matches exactly or as a prefix followed by ``/`` (a run and its checkpoints)."""
    stmt = select(AuditEntry)
    if actor:
        stmt = stmt.where(AuditEntry.actor == actor)
    if action:
        stmt = stmt.where(col(AuditEntry.action).startswith(action, autoescape=True))
    if target:
        stmt = stmt.where(
            or_(
                col(AuditEntry.target) == target,
                col(AuditEntry.target).startswith(target + "/", autoescape=True),
            )
        )
    if since is not None:
        stmt = stmt.where(col(AuditEntry.at) >= _utc(since))
    if until is not None:
        stmt = stmt.where(col(AuditEntry.at) < _utc(until))
    if before_id is not None:
        stmt = stmt.where(col(AuditEntry.id) < before_id)
    stmt = stmt.order_by(col(AuditEntry.id).desc())
    if limit is not None:
        stmt = stmt.limit(limit)
    return list(db.exec(stmt))


def as_dict(entry: AuditEntry) -> dict[str, Any]:
    at = entry.at.replace(tzinfo=UTC) if entry.at.tzinfo is None else entry.at
    return {
        "id": entry.id,
        "at": at.isoformat(),
        "actor": entry.actor,
        "via": entry.via,
        "client": entry.client,
        "action": entry.action,
        "target": entry.target,
        "changes": entry.changes,
    }


def json_lines(entries: list[AuditEntry]) -> Iterator[bytes]:
    for entry in entries:
        yield orjson.dumps(as_dict(entry)) + b"\n"
