"""Bearer-token checks (constant-time) for the API token and the worker token."""

from __future__ import annotations

import secrets

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
