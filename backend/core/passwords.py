"""Passwords: Argon2id through argon2-cffi, with OWASP's recommended parameters (19 MiB, two
passes, one lane: argon2-cffi's default of 64 MiB and four lanes took ~1 s of CPU per sign-in on
the loaded 2-core box), verified in constant time; a hash made under other parameters is re-made
at the next sign-in. At most ``CONCURRENT`` verifications run at once, so a burst of sign-ins
from many addresses costs bounded memory and CPU (the rate limits bound each address and name).
"""

from __future__ import annotations

import secrets
import threading

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1, type=Type.ID)
CONCURRENT = 2
_slots = threading.BoundedSemaphore(CONCURRENT)
#: Verified when the name is unknown, so a wrong name costs the same time as a wrong password.
_DUMMY = _hasher.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    with _slots:
        return _hasher.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    try:
        with _slots:
            return _hasher.verify(stored or _DUMMY, password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    return _hasher.check_needs_rehash(stored)


def one_time_password() -> str:
    """A generated password (shown once, to a terminal or in one answer)."""
    return secrets.token_urlsafe(15)
