"""Who may call: the API token (browser, CLI) and the worker token (``/api/internal``), each with
its own limiter, so that one kind of caller can never lock out the other.

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

from backend.core.ratelimit import FailureLimiter
from backend.core.security import token_digest, token_matches
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
        f"missing or invalid {what}: send 'Authorization: Bearer <token>'",
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

    def check_user(self, settings: Settings, client: str, presented: str | None, what: str) -> None:
        """Raises ``Refusal`` unless ``presented`` is the API token and ``client`` may try."""
        if (wait := self.user_failures.retry_after(client)) is not None:
            raise _too_many(wait, f"wrong tokens from {client}")
        if not token_matches(settings, "api_token", presented):
            if presented:  # a missing token is not a guess (a browser that lost it)
                self.user_failures.failed(client)
            raise _unauthorized(what)

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
