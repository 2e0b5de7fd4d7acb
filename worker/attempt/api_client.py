"""The worker's HTTP client for ``/api/internal`` (worker token, retries on lost connections).

Every internal call is idempotent on the API side (claim is keyed by attempt, events by seq,
logs by byte offset), so retrying after a connection error or a 5xx never duplicates data.
That is what lets an API restart in the middle of a run lose nothing.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

import httpx
from pydantic import BaseModel

from cpt_contract.outcomes import FailureKind
from cpt_contract.protocol import (
    HEARTBEAT,
    LEASE_HEADER,
    AdoptIn,
    AdoptOut,
    CancelAnswer,
    ClaimIn,
    ClaimOut,
    EventsOut,
    HeartbeatIn,
    HeartbeatOut,
    JobClaimIn,
    JobClaimOut,
    JobLogIn,
    JobLogOut,
    JobStatusIn,
    LogsIn,
    LogsOut,
    StatusIn,
    adopt_path,
    claim_path,
    events_path,
    job_claim_path,
    job_log_path,
    job_status_path,
    logs_path,
    status_path,
)

log = logging.getLogger(__name__)


class ApiUnavailable(RuntimeError):
    """The API did not answer within the retry budget."""


class Conflict(RuntimeError):
    """The API answered 409: the transition is not allowed (e.g. the run was cancelled)."""


class WorkerApi:
    """Thin, thread-safe wrapper around the internal routes."""

    def __init__(self, base_url: str, token: str, *, timeout: float = 10.0) -> None:
        self._client = httpx.Client(
            base_url=base_url.rstrip("/") + "/api/internal",
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
        )
        # httpx.Client is thread-safe, but a closed flag lets shutdown stop long retry loops.
        self._closed = threading.Event()
        #: run id (or ``job:<id>``) -> the lease its claim answered (sent on its reports; never
        #: logged).
        self._leases: dict[str, str] = {}
        #: Since when no call got an answer (a 5xx such as 507 "disk full", or no connection),
        #: and the last problem: the run's watch loop stops training that cannot be recorded.
        self._failing_since: float | None = None
        self._problem: str | None = None

    def unrecorded(self) -> tuple[float, str | None]:
        """(seconds no call has been answered, the last problem); (0, None) when all is well."""
        since = self._failing_since
        return (0.0, None) if since is None else (time.monotonic() - since, self._problem)

    def lease(self, run_id: str) -> str | None:
        return self._leases.get(run_id)

    def use_lease(self, run_id: str, lease: str) -> None:
        """Report on ``run_id`` with a lease another client's claim answered."""
        self._leases[run_id] = lease

    def close(self) -> None:
        self._closed.set()
        self._client.close()

    def post(
        self,
        path: str,
        body: dict[str, Any],
        *,
        retry_for: float = 120.0,
        run_id: str | None = None,
    ) -> dict[str, Any]:
        """POST with exponential backoff on connection errors and 5xx for up to ``retry_for`` s.

        Raises ``Conflict`` on 409 and ``httpx.HTTPStatusError`` on other 4xx at once:
        those are answers, not outages.
        """
        deadline = time.monotonic() + retry_for
        delay = 0.05
        while True:
            try:
                lease = self._leases.get(run_id) if run_id else None
                headers = {LEASE_HEADER: lease} if lease else None
                response = self._client.post(path, json=body, headers=headers)
                if response.status_code < 500:
                    self._failing_since = None  # an answer, even a refusal: the API records
                if response.status_code == 409:
                    raise Conflict(_detail(response))
                if response.status_code < 500:
                    response.raise_for_status()
                    return dict(response.json()) if response.content else {}
                problem = f"HTTP {response.status_code}: {_detail(response)[:300]}"
            except httpx.TransportError as exc:
                if self._closed.is_set():
                    raise ApiUnavailable(f"client closed during POST {path}") from exc
                problem = f"{type(exc).__name__}: {exc}"
            if self._failing_since is None:
                self._failing_since = time.monotonic()
            self._problem = problem
            if time.monotonic() + delay > deadline:
                raise ApiUnavailable(f"POST {path} failed for {retry_for:.0f}s: {problem}")
            log.warning("POST %s: %s; retrying in %.2fs", path, problem, delay)
            time.sleep(delay)
            delay = min(delay * 2, 2.0)

    # --- the routes (bodies built and answers read through the shared protocol models) ----
    def heartbeat(self, body: HeartbeatIn) -> HeartbeatOut:
        # A heartbeat that cannot get through is simply skipped; the next one retries.
        return HeartbeatOut.model_validate(self.post(HEARTBEAT, _json(body), retry_for=0))

    def claim(
        self, run_id: str, attempt: int, worker: str, instance: str | None = None
    ) -> ClaimOut:
        body = ClaimIn(attempt=attempt, worker=worker, instance=instance)
        claim = ClaimOut.model_validate(self.post(claim_path(run_id), _json(body)))
        self._leases[run_id] = claim.lease
        return claim

    def adopt(self, run_id: str, attempt: int, worker: str, instance: str, job: str) -> AdoptOut:
        """Take back the attempt this worker (its name) was running before it restarted."""
        body = AdoptIn(attempt=attempt, worker=worker, instance=instance, job=job)
        answer = AdoptOut.model_validate(self.post(adopt_path(run_id), _json(body), retry_for=60))
        self._leases[run_id] = answer.lease
        return answer

    def status(
        self,
        run_id: str,
        attempt: int,
        status: str,
        *,
        reason: str | None = None,
        pid: int | None = None,
        argv: list[str] | None = None,
        retry_for: float = 600,
        kind: FailureKind | None = None,
    ) -> CancelAnswer:
        body = StatusIn.model_validate(
            {
                "attempt": attempt,
                "status": status,
                "reason": reason,
                "pid": pid,
                "kind": kind,
                "argv": argv,
            }
        )
        # Final states matter most: keep trying for a long while (an API restart takes seconds).
        answer = self.post(status_path(run_id), _json(body), retry_for=retry_for, run_id=run_id)
        return CancelAnswer.model_validate(answer)

    def events(
        self,
        run_id: str,
        attempt: int,
        events: list[dict[str, Any]],
        log: tuple[int, str] | None = None,
    ) -> EventsOut:
        """``log``: (offset, text) of log bytes to ship in the same request."""
        # Events pass as they are (extra keys are part of the protocol: ShippedEvent allows them).
        body: dict[str, Any] = {"attempt": attempt, "events": events}
        if log is not None:
            body["log"] = {"offset": log[0], "text": log[1]}
        answer = self.post(events_path(run_id), body, run_id=run_id)
        return EventsOut.model_validate(answer)

    def logs(self, run_id: str, attempt: int, offset: int, text: str) -> LogsOut:
        body = LogsIn(attempt=attempt, offset=offset, text=text)
        return LogsOut.model_validate(self.post(logs_path(run_id), _json(body), run_id=run_id))

    # --- jobs ---------------------------------------------------------------------------
    def job_claim(self, job_id: str, worker: str) -> JobClaimOut:
        body = JobClaimIn(worker=worker)
        claim = JobClaimOut.model_validate(self.post(job_claim_path(job_id), _json(body)))
        self._leases[f"job:{job_id}"] = claim.lease
        return claim

    def job_status(
        self, job_id: str, status: str, *, reason: str | None, result: dict[str, Any] | None
    ) -> CancelAnswer:
        body = JobStatusIn.model_validate({"status": status, "reason": reason, "result": result})
        answer = self.post(job_status_path(job_id), _json(body), run_id=f"job:{job_id}")
        return CancelAnswer.model_validate(answer)

    def job_log(self, job_id: str, offset: int, text: str, *, retry_for: float) -> JobLogOut:
        body = JobLogIn(offset=offset, text=text)
        answer = self.post(
            job_log_path(job_id), _json(body), retry_for=retry_for, run_id=f"job:{job_id}"
        )
        return JobLogOut.model_validate(answer)


def _json(body: BaseModel) -> dict[str, Any]:
    return body.model_dump(mode="json", exclude_none=True)


_shared: dict[tuple[int, str, str], WorkerApi] = {}


def shared_api(base_url: str, token: str) -> WorkerApi:
    """One client per process (building an httpx client costs ~0.2 s: its SSL context).

    Keyed by pid so a pool child never reuses a client created before the fork.
    """
    key = (os.getpid(), base_url, token)
    api = _shared.get(key)
    if api is None:
        api = _shared[key] = WorkerApi(base_url, token)
    return api


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
        detail = body.get("detail") if isinstance(body, dict) else None
    except ValueError:
        detail = None
    return str(detail or response.text or response.reason_phrase)
