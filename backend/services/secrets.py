"""The panel's secret store: values kept encrypted at rest, by name.

The whole API (what a service that needs a password or a key uses):

    put(settings, session, name, value, meta=None)   # store or replace (the caller commits)
    get(settings, session, name) -> str | None       # the value; None when not set
    delete(session, name) -> bool                    # whether there was one
    info(settings, session, name) -> SecretInfo | None   # what may be shown: never the value
    set_meta(session, name, meta)                    # update the public facts only

Rules for callers: a value goes from ``get`` straight to where it is used (an HTTP header, a
child's environment) and never into a log line, an exception message, an argv or an API answer;
routes answer ``info`` (set or not, when, ``meta``). ``meta`` is public (e.g. the result of the
last check of the Hub token): never put the value or part of it there.

Each value is sealed with the panel's key (``backend/core/crypto.py``) bound to its name. A value
sealed under another key (``CPT_SECRET_KEY`` changed, or a database restored on a panel with
another generated key) is reported by ``info`` as unreadable and ``get`` raises
``SecretUnreadable``: the fix is to set it again.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlmodel import Session

from backend.core import crypto
from backend.models import StoredSecret, UtcDatetime, utcnow
from cpt_contract.settings import Settings

#: Names are identifiers chosen by the code, never by a user: ``hub_token``, ``smtp.password``.
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_.:-]{0,63}$")
#: A stored value's longest form (tokens, passwords, API keys; not files).
MAX_VALUE_CHARS = 4096


class SecretUnreadable(Exception):
    """The stored value was sealed under another key (or altered): set it again."""


class SecretInfo(BaseModel):
    """What may be shown about a stored secret: never its value."""

    name: str
    updated_at: UtcDatetime
    #: False when it was sealed under a key other than the one in force.
    readable: bool
    meta: dict[str, Any] | None = None


def _check_name(name: str) -> None:
    if not NAME_PATTERN.match(name):
        raise ValueError(f"secret name {name!r} does not match {NAME_PATTERN.pattern}")


def put(
    settings: Settings,
    session: Session,
    name: str,
    value: str,
    meta: dict[str, Any] | None = None,
) -> None:
    """Store ``value`` under ``name`` (replacing any), sealed with the panel's key."""
    _check_name(name)
    if not value or len(value) > MAX_VALUE_CHARS:
        raise ValueError(f"a secret value has 1 to {MAX_VALUE_CHARS} characters")
    key = crypto.panel_key(settings)
    row = session.get(StoredSecret, name) or StoredSecret(name=name, sealed="", key_id="")
    row.sealed = crypto.seal(key, value, context=name)
    row.key_id = crypto.key_id(key)
    row.meta = meta
    row.updated_at = utcnow()
    session.add(row)


def get(settings: Settings, session: Session, name: str) -> str | None:
    _check_name(name)
    row = session.get(StoredSecret, name)
    if row is None:
        return None
    try:
        return crypto.unseal(crypto.panel_key(settings), row.sealed, context=name)
    except crypto.Undecryptable:
        raise SecretUnreadable(
            f"the stored {name} was encrypted under another key (CPT_SECRET_KEY changed?): "
            "set it again"
        ) from None


def delete(session: Session, name: str) -> bool:
    _check_name(name)
    row = session.get(StoredSecret, name)
    if row is None:
        return False
    session.delete(row)
    return True


def info(settings: Settings, session: Session, name: str) -> SecretInfo | None:
    _check_name(name)
    row = session.get(StoredSecret, name)
    if row is None:
        return None
    readable = row.key_id == crypto.key_id(crypto.panel_key(settings))
    return SecretInfo(name=name, updated_at=row.updated_at, readable=readable, meta=row.meta)


def set_meta(session: Session, name: str, meta: dict[str, Any] | None) -> datetime | None:
    """Replace the public facts of a stored secret (its value untouched); None if not set."""
    _check_name(name)
    row = session.get(StoredSecret, name)
    if row is None:
        return None
    row.meta = meta
    session.add(row)
    return row.updated_at
