"""Who may call: people (the panel's single API token, personal tokens, browser sessions; see
``backend/core/identity.py``) and the worker token (``/api/internal``), each with its own
limiter, so that one kind of caller can never lock out the other.

- **Sign-in** with a name and password: wrong ones fill a bucket per client address and one
  per user name (a guesser spreading over many addresses still stops at the name's bucket).

- **User tokens**: wrong ones fill a leaky bucket per client address (``FailureLimiter``); a full
  bucket answers 429 to that address, the right token too (a guesser learns nothing).
- **Worker tokens**: wrong ones fill a bucket of their own, per address, which never blocks the
  right token: the worker's reports are limited by a bucket keyed on the token itself
  (generous: a run reports a few times a second, an ingest benchmark ~1,000 requests a second).
  A user guessing from the worker's box cannot stop its reports.
- The client address is the connection's, or the ``X-Forwarded-For`` of a proxy named in
  ``CPT_TRUSTED_PROXIES`` (applied by uvicorn before the app; none by default).

The same checks run twice: in ``RequestLimits`` before a body is read (a wrong token never
costs a parse) and in the routes' dependencies (``backend/api/deps.py``), which also take the
``?token=`` of EventSource streams.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from backend.core import identity
from backend.core.identity import Principal
from backend.core.ratelimit import FailureLimiter
from backend.core.security import token_digest, token_matches
from cpt_contract.roles import TOKEN_PREFIX
from cpt_contract.settings import Settings


@dataclass
class Refusal(Exception):
    """A 401 or 429, with what the client must do."""

    status: int
    detail: str
    headers: dict[str, str]


def _unauthorized(what: str) -> Refusal:
    return Refusal(
        401,
        f"missing or invalid {what}: send 'Authorization: Bearer <token>' or sign in",
        {"WWW-Authenticate": "Bearer"},
    )


def _too_many(wait: int, whose: str) -> Refusal:
    return Refusal(429, f"too many {whose}: try again in {wait} s", {"Retry-After": str(wait)})


@dataclass
class Authenticator:
    user_failures: FailureLimiter = field(default_factory=FailureLimiter)
    worker_failures: FailureLimiter = field(default_factory=FailureLimiter)
    worker_requests: FailureLimiter = field(
        default_factory=lambda: FailureLimiter(burst=20_000, rate=5_000.0, max_clients=64)
    )
    #: Wrong passwords: 10 at once per address then one per 6 s; 5 per name then one per 30 s.
    signin_clients: FailureLimiter = field(
        default_factory=lambda: FailureLimiter(burst=10, rate=1 / 6)
    )
    signin_names: FailureLimiter = field(
        default_factory=lambda: FailureLimiter(burst=5, rate=1 / 30)
    )

    def identify(
        self,
        settings: Settings,
        client: str,
        presented: str | None,
        cookie: str | None,
        what: str,
    ) -> Principal:
        """Who presents this token (or, without one, this session cookie); raises ``Refusal``
        (401, or 429 while ``client`` has guessed too often)."""
        if (wait := self.user_failures.retry_after(client)) is not None:
            raise _too_many(wait, f"wrong tokens from {client}")
        try:
            if presented:
                if token_matches(settings, "api_token", presented):
                    return identity.legacy_principal(settings, client)
                if presented.startswith(TOKEN_PREFIX):
                    return identity.token_principal(settings, presented, client)
                raise identity.Unknown("token")
            if cookie:
                return identity.session_principal(settings, cookie, client)
        except identity.Unknown:
            self.user_failures.failed(client)
            raise _unauthorized(what if presented else "session (sign in again)") from None
        raise _unauthorized(what)

    def check_signin(self, client: str, name: str) -> None:
        """Raises a 429 while this address or this name has failed too often."""
        if (wait := self.signin_clients.retry_after(client)) is not None:
            raise _too_many(wait, f"failed sign-ins from {client}")
        if (wait := self.signin_names.retry_after(name)) is not None:
            raise _too_many(wait, f"failed sign-ins as {name}")

    def signin_failed(self, client: str, name: str) -> None:
        self.signin_clients.failed(client)
        self.signin_names.failed(name)

    def check_worker(self, settings: Settings, client: str, presented: str | None) -> None:
        """Raises ``Refusal`` unless ``presented`` is the worker token and within its rate."""
        if token_matches(settings, "worker_token", presented):
            key = token_digest(presented or "").hex()
            if (wait := self.worker_requests.retry_after(key)) is not None:
                raise _too_many(wait, "reports with this worker token")
            self.worker_requests.failed(key)
            return
        if (wait := self.worker_failures.retry_after(client)) is not None:
            raise _too_many(wait, f"wrong worker tokens from {client}")
        if presented:
            self.worker_failures.failed(client)
        raise _unauthorized("worker token")


def authenticator(app: object) -> Authenticator:
    """The app's one ``Authenticator`` (made on first use by an app built without create_app)."""
    state = app.state  # type: ignore[attr-defined]
    auth = getattr(state, "auth", None)
    if auth is None:
        auth = state.auth = Authenticator()
    return auth
