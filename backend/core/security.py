"""Bearer-token checks (constant-time) for the API token and the worker token."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from functools import lru_cache
from pathlib import Path

from cpt_contract.settings import Settings, token_digest, write_private_once


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def token_matches(settings: Settings, name: str, presented: str | None) -> bool:
    """Whether ``presented`` is the ``api_token`` / ``worker_token``: hashes compared in
    constant time (the setting may hold only the hash, ``sha256:<hex>``)."""
    if not presented:
        return False
    return hmac.compare_digest(token_digest(presented), settings.secret_digest(name))


# --- run leases ---------------------------------------------------------------------------------


@lru_cache(maxsize=8)
def _lease_key(data_dir: Path) -> bytes:
    """A key only the API knows (workers hold the worker token, never this), kept in the data
    dir so a restarted API still accepts the leases of running attempts."""
    path = data_dir / ".lease_key"
    if path.exists():
        return path.read_text().strip().encode()
    return write_private_once(path, secrets.token_hex(32)).encode()


def lease_for(settings: Settings, run_id: str, attempt: int) -> str:
    """The lease of one attempt of one run: handed out once, by its (one-shot) claim."""
    return _lease(settings, f"run:{run_id}:{attempt}")


def job_lease_for(settings: Settings, job_id: str, attempt: int = 1) -> str:
    """A job's lease, per attempt: a lost worker that comes back holds a stale one."""
    return _lease(settings, f"job:{job_id}" if attempt == 1 else f"job:{job_id}:{attempt}")


def _lease(settings: Settings, subject: str) -> str:
    key = _lease_key(settings.resolved_data_dir)
    return hmac.new(key, subject.encode(), hashlib.sha256).hexdigest()


def _same(presented: str | None, expected: str) -> bool:
    return bool(presented) and hmac.compare_digest(
        str(presented).encode("ascii", "replace"), expected.encode()
    )


def lease_matches(settings: Settings, run_id: str, attempt: int, presented: str | None) -> bool:
    return _same(presented, lease_for(settings, run_id, attempt))


def job_lease_matches(
    settings: Settings, job_id: str, presented: str | None, attempt: int = 1
) -> bool:
    return _same(presented, job_lease_for(settings, job_id, attempt))
