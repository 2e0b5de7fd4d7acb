"""Passwords: Argon2id through argon2-cffi (its current RFC 9106 low-memory profile), verified
in constant time; a hash made under older parameters is re-made at the next sign-in."""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
#: Verified when the name is unknown, so a wrong name costs the same time as a wrong password.
_DUMMY = _hasher.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored or _DUMMY, password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    return _hasher.check_needs_rehash(stored)


def one_time_password() -> str:
    """A generated password (shown once, to a terminal or in one answer)."""
    return secrets.token_urlsafe(15)
