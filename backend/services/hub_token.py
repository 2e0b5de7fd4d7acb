"""The Hub token set once for the panel: stored encrypted (``secrets``), checked on save against
the Hub endpoint, never answered, and handed to the jobs that talk to the Hub in the claim their
worker makes (the worker puts it in the tool's environment only: ``worker/agent/jobs.py::tool_env``).

Which token: the one set in Settings (``secrets`` name ``hub_token``), else the API's
``CPT_HUB_TOKEN``; a worker whose claim carries none uses its own ``CPT_HUB_TOKEN``.
The check: ``GET {endpoint}/api/whoami-v2`` (200: valid as its ``name``; 401: invalid, refused
with a 422 and nothing stored; anything else: unchecked, stored, saying why), then for a named
repo ``GET {endpoint}/api/models/{repo}`` with the token (401/403/404: no access).
"""

from __future__ import annotations

import logging

import httpx
from pydantic import BaseModel
from sqlmodel import Session

from backend.models import UtcDatetime, utcnow
from backend.services import secrets
from backend.services.validation import ConfigInvalid, error
from cpt_contract.hub import DEFAULT_HUB_ENDPOINT, HubCheckResult, HubTokenSource
from cpt_contract.jobs import is_hub_id
from cpt_contract.settings import Settings

log = logging.getLogger(__name__)

NAME = "hub_token"
#: The job kinds whose tool talks to the Hub (the claim hands them the token).
HUB_JOB_KINDS = frozenset({"download", "evaluate", "publish"})
CHECK_TIMEOUT_SECONDS = 10.0
TOKEN_MAX_CHARS = 512


class HubCheck(BaseModel):
    at: UtcDatetime
    result: HubCheckResult
    #: The account the endpoint named for the token.
    user: str | None = None
    #: The repo checked for access, if one was named.
    repo: str | None = None
    #: One line for the page: "valid as user alice", "no access to org/x (HTTP 403: ...)".
    message: str


class HubTokenState(BaseModel):
    """``GET /api/settings/hub``: whether a token is set and what its last check said."""

    set: bool
    source: HubTokenSource | None = None
    #: False when the stored token was encrypted under another key (set it again).
    readable: bool = True
    updated_at: UtcDatetime | None = None
    endpoint: str
    check: HubCheck | None = None


def endpoint(settings: Settings) -> str:
    return (settings.hub_endpoint or DEFAULT_HUB_ENDPOINT).rstrip("/")


def _check(settings: Settings, token: str, repo: str | None) -> HubCheck:
    """Ask the endpoint about ``token`` (the token goes in a header, nowhere else)."""
    base, now = endpoint(settings), utcnow()
    headers = {"Authorization": f"Bearer {token}"}
    try:
        with httpx.Client(timeout=CHECK_TIMEOUT_SECONDS, follow_redirects=True) as client:
            who = client.get(f"{base}/api/whoami-v2", headers=headers)
            if who.status_code == 401:
                msg = f"{base} refused the token (HTTP 401): copy a valid one from the Hub"
                return HubCheck(at=now, result=HubCheckResult.invalid, message=msg)
            user: str | None = None
            if who.status_code == 200:
                body = who.json()
                user = str(body.get("name")) if isinstance(body, dict) else None
            if repo:
                r = client.get(f"{base}/api/models/{repo}", headers=headers)
                if r.status_code in (401, 403, 404):
                    why = {
                        401: "it is private or does not exist",
                        403: "it is gated: accept its terms on the Hub with this account",
                        404: "it does not exist",
                    }[r.status_code]
                    msg = f"no access to {repo} (HTTP {r.status_code}: {why})"
                    return HubCheck(
                        at=now, result=HubCheckResult.no_access, user=user, repo=repo, message=msg
                    )
    except (httpx.HTTPError, ValueError) as exc:
        msg = f"could not check at {base}: {type(exc).__name__}"
        return HubCheck(at=now, result=HubCheckResult.unchecked, repo=repo, message=msg)
    if user is None:
        msg = (
            f"{base} answered HTTP {who.status_code} to whoami (a mirror may not check "
            "tokens): stored unchecked"
        )
        return HubCheck(at=now, result=HubCheckResult.unchecked, repo=repo, message=msg)
    msg = f"valid as user {user}" + (f", with access to {repo}" if repo else "")
    return HubCheck(at=now, result=HubCheckResult.valid, user=user, repo=repo, message=msg)


def _check_inputs(token: str | None, repo: str | None) -> None:
    problems = []
    if token is not None and (
        not token
        or len(token) > TOKEN_MAX_CHARS
        or any(not (0x21 <= ord(c) <= 0x7E) for c in token)
    ):
        problems.append(
            error(
                ["body", "token"],
                f"a Hub token is one word of 1 to {TOKEN_MAX_CHARS} printable ASCII characters "
                "(hf_...): paste it without spaces or line breaks",
            )
        )
    if repo is not None and not is_hub_id(repo):
        problems.append(
            error(["body", "repo"], "a repo id is org/name (e.g. meta-llama/Llama-3.2-1B)")
        )
    if problems:
        raise ConfigInvalid(problems)


def state(settings: Settings, session: Session) -> HubTokenState:
    stored = secrets.info(settings, session, NAME)
    if stored is not None:
        check = HubCheck.model_validate(stored.meta["check"]) if stored.meta else None
        return HubTokenState(
            set=True,
            source=HubTokenSource.panel,
            readable=stored.readable,
            updated_at=stored.updated_at,
            endpoint=endpoint(settings),
            check=check,
        )
    if settings.hub_token:
        return HubTokenState(set=True, source=HubTokenSource.env, endpoint=endpoint(settings))
    return HubTokenState(set=False, endpoint=endpoint(settings))


def save(settings: Settings, session: Session, token: str, repo: str | None) -> HubTokenState:
    """Check ``token`` and store it (the caller commits); an invalid one is a 422 at ``token``
    and nothing is stored."""
    token = token.strip()
    _check_inputs(token, repo)
    check = _check(settings, token, repo)
    if check.result == HubCheckResult.invalid:
        raise ConfigInvalid([error(["body", "token"], f"{check.message}; nothing was saved")])
    secrets.put(settings, session, NAME, token, meta={"check": check.model_dump(mode="json")})
    return state(settings, session)


def recheck(settings: Settings, session: Session, repo: str | None) -> HubTokenState:
    """Check the token in force again (optionally a repo's access); a stored token keeps the
    result, an invalid one included (it is not deleted: the user decides)."""
    _check_inputs(None, repo)
    token, source = current(settings, session)
    if token is None:
        raise ConfigInvalid([error(["body"], "no Hub token is set: set one first")])
    check = _check(settings, token, repo)
    if source == HubTokenSource.panel:
        secrets.set_meta(session, NAME, {"check": check.model_dump(mode="json")})
    answer = state(settings, session)
    return answer.model_copy(update={"check": check})


def delete(session: Session) -> bool:
    return secrets.delete(session, NAME)


def current(settings: Settings, session: Session) -> tuple[str | None, HubTokenSource | None]:
    """The token in force and where it comes from (a stored one that cannot be read: none, so
    the API's or the worker's own environment token is used)."""
    try:
        stored = secrets.get(settings, session, NAME)
    except secrets.SecretUnreadable as exc:
        log.warning("%s", exc)
        stored = None
    if stored:
        return stored, HubTokenSource.panel
    if settings.hub_token:
        return settings.hub_token, HubTokenSource.env
    return None, None


def for_job(settings: Settings, session: Session, kind: str) -> str | None:
    """What a claim of a job of ``kind`` carries for its tool's environment (None: nothing)."""
    if kind not in HUB_JOB_KINDS:
        return None
    return current(settings, session)[0]
