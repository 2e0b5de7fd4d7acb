"""Bearer-token checks (constant-time) for the API token and the worker token."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from functools import lru_cache
from pathlib import Path

from cpt_contract.settings import Settings


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def token_matches(settings: Settings, name: str, presented: str | None) -> bool:
    """Whether ``presented`` equals the ``api_token`` / ``worker_token`` secret."""
    if not presented:
        return False
    return secrets.compare_digest(presented.encode(), settings.secret(name).encode())


# --- run leases ---------------------------------------------------------------------------------


@lru_cache(maxsize=8)
def _lease_key(data_dir: Path) -> bytes:
    """A key only the API knows (workers hold the worker token, never this), kept in the data
    dir so a restarted API still accepts the leases of running attempts."""
    path = data_dir / ".lease_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    return path.read_text().strip().encode()


def lease_for(settings: Settings, run_id: str, attempt: int) -> str:
    """The lease of one attempt of one run: handed out once, by its (one-shot) claim."""
    key = _lease_key(settings.resolved_data_dir)
    return hmac.new(key, f"{run_id}:{attempt}".encode(), hashlib.sha256).hexdigest()


def lease_matches(settings: Settings, run_id: str, attempt: int, presented: str | None) -> bool:
    if not presented:
        return False
    expected = lease_for(settings, run_id, attempt)
    return hmac.compare_digest(presented.encode("ascii", "replace"), expected.encode())
