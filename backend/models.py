"""Database tables and API shapes (layered like full-stack-fastapi-template).

``RunBase`` holds what a user sets; ``RunCreate`` is the request body, ``RunPublic`` the answer,
``Run`` the table. Events, log chunks, checkpoints and worker heartbeats are plain tables.
Timestamps are stored as UTC; SQLite returns them naive, so ``RunPublic`` re-attaches UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator
from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    Text,
    UniqueConstraint,
)
from sqlmodel import Field, SQLModel

from cpt_contract.limits import DEFAULT_QUEUE, QUEUE_MAX, REASON_MAX
from cpt_contract.outcomes import FailureKind
from cpt_contract.statuses import RunStatus


def utcnow() -> datetime:
    return datetime.now(UTC)


def _as_utc(value: datetime) -> datetime:
    # SQLite hands back naive datetimes (stored as UTC): an API answer always carries the offset.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


#: A datetime in an API answer: always with its UTC offset (an OpenAPI ``date-time``).
UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]


def _tz() -> Any:
    return DateTime(timezone=True)


# --- runs ---------------------------------------------------------------------------------


class RunBase(SQLModel):
    name: str = Field(default="", max_length=200)
    preset: str | None = Field(default=None, max_length=64)


class RunCreate(SQLModel):
    """Body of ``POST /api/runs`` and ``POST /api/runs/preview``."""

    name: str | None = Field(default=None, max_length=200)
    preset: str | None = Field(default=None, max_length=64)
    config: dict[str, Any] = Field(default_factory=dict)

    model_config = {"extra": "forbid"}  # type: ignore[assignment]


class RunClone(SQLModel):
    name: str | None = Field(default=None, max_length=200)
    config: dict[str, Any] = Field(default_factory=dict)

    model_config = {"extra": "forbid"}  # type: ignore[assignment]


class RunResume(SQLModel):
    checkpoint: str = Field(default="last", max_length=200, description='"last" or "checkpoint-N"')

    model_config = {"extra": "forbid"}  # type: ignore[assignment]


#: A tag: a short word users filter by (letters, digits, ``-_.:/+``, no spaces).
TAG_PATTERN = r"^[\w.:/+-]{1,40}$"


class RunUpdate(SQLModel):
    """Body of ``PATCH /api/runs/{id}``: what a user may change on a run at any time."""

    name: str | None = Field(default=None, max_length=200)
    tags: list[str] | None = Field(default=None, max_length=20)
    note: str | None = Field(default=None, max_length=20_000)

    model_config = {"extra": "forbid"}  # type: ignore[assignment]


class _RunProgress(SQLModel):
    step: int | None = None
    max_steps: int | None = None
    epoch: float | None = None
    tokens_seen: int | None = Field(default=None, sa_type=BigInteger)
    tokens_per_second: float | None = None
    loss: float | None = None
    eval_loss: float | None = None
    perplexity: float | None = None


class AttemptEntry(SQLModel):
    """One ended attempt of ``RunPublic.attempt_log`` (``backend/services/autoresume.py`` writes it)."""

    attempt: int
    status: str
    kind: FailureKind | None = None
    reason: str = ""
    step: int | None = None
    #: Whether the panel restarted the run automatically after this attempt.
    restarted: bool = False


class RunPublic(RunBase, _RunProgress):
    id: str
    status: RunStatus
    status_reason: str | None = None
    config: dict[str, Any]
    method: str
    model: str
    queue: str
    attempt: int
    worker: str | None = None
    resume_from: str | None = None
    created_at: UtcDatetime
    started_at: UtcDatetime | None = None
    finished_at: UtcDatetime | None = None
    updated_at: UtcDatetime | None = None
    eta_seconds: float | None = None
    output_dir: str
    #: Why each earlier attempt ended, and whether it was restarted automatically.
    attempt_log: list[AttemptEntry] | None = None
    #: The last attempt's failure kind (``FailureKind``): what the UI compares, never the reason.
    failure_kind: FailureKind | None = None
    #: The last time the worker said anything about this run (its reports, its keep-alive every
    #: second): the page says "no word for N s" when it grows, before the run is judged lost.
    last_seen_at: UtcDatetime | None = None
    #: After this many seconds of silence the run is judged lost (``CPT_WORKER_LOST_SECONDS``).
    lost_after_seconds: float | None = None
    #: A queued run: why it waits (queue, position, what the queue's workers are busy with).
    waiting_reason: str | None = None
    #: A checkpoint of the run is on disk (the checkpoint list's ``exists``), looked at for runs
    #: that stopped unfinished (``RESUME_LAST_STATUSES``), where "Resume" (from the last
    #: checkpoint) needs one; None: not looked at (other statuses, or an answer that does not).
    has_checkpoint: bool | None = None
    tags: list[str] = []
    note: str = ""
    #: The experiment this run belongs to, and its values of the experiment's axes.
    experiment_id: str | None = None
    experiment_values: dict[str, Any] | None = None
    #: What the training script said it is doing (its last ``phase`` event) and since when.
    phase: str | None = None
    phase_since: UtcDatetime | None = None
    #: When the first attempt started; ``started_at`` is the current attempt's start.
    first_started_at: UtcDatetime | None = None
    #: Seconds of all attempts together (the running one up to now).
    duration_seconds: float | None = None
    #: Seconds of the attempts that ended (a client adds the running attempt's own clock).
    attempts_seconds: float = 0.0
    #: When the ETA runs out (``now + eta_seconds``): a client counts down to it between
    #: updates, so a long evaluation never freezes the estimate.
    eta_until: UtcDatetime | None = None
    #: Per metric key: ``{"last", "best", "best_step"}`` over the run's log/eval events
    #: (``best`` only where lower or higher is known to be better).
    metrics_summary: dict[str, dict[str, float | int | None]] = {}
    #: The user who launched it: an operator changes only its own runs.
    owner: str | None = None


class RunList(SQLModel):
    items: list[RunPublic]
    total: int


class Run(RunBase, _RunProgress, table=True):
    __tablename__ = "runs"

    id: str = Field(primary_key=True, max_length=32)
    status: str = Field(default=RunStatus.queued, max_length=16, index=True)
    status_reason: str | None = Field(default=None, max_length=REASON_MAX)
    config: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    method: str = Field(default="lora", max_length=16)
    model: str = Field(default="scratch", max_length=200)
    queue: str = Field(default=DEFAULT_QUEUE, max_length=QUEUE_MAX)
    attempt: int = Field(default=1)
    worker: str | None = Field(default=None, max_length=200)
    pid: int | None = None
    resume_from: str | None = Field(default=None, max_length=200)
    output_dir: str = Field(default="", max_length=1000)
    created_at: datetime = Field(default_factory=utcnow, sa_type=_tz())
    started_at: datetime | None = Field(default=None, sa_type=_tz())
    finished_at: datetime | None = Field(default=None, sa_type=_tz())
    updated_at: datetime | None = Field(default_factory=utcnow, sa_type=_tz())
    #: Last time the worker said anything about this run (claim, status, events, logs).
    last_seen_at: datetime | None = Field(default=None, sa_type=_tz())
    #: When the Celery message was sent for the current attempt (None: to be (re)sent).
    enqueued_at: datetime | None = Field(default=None, sa_type=_tz())
    #: Remembered from the ``end`` event; the final status comes from the worker's status call.
    end_status: str | None = Field(default=None, max_length=32)
    end_reason: str | None = Field(default=None, max_length=REASON_MAX)
    #: Why the last attempt failed (``cpt_contract.outcomes.FailureKind``), as its worker (or the
    #: recovery loop) decided it; None while it runs and after a success.
    failure_kind: str | None = Field(default=None, max_length=32)
    #: ETA as computed at ``eta_at`` (at ingest); RunPublic subtracts the time since.
    eta_seconds: float | None = None
    eta_at: datetime | None = Field(default=None, sa_type=_tz())
    tokens_per_step: int | None = Field(default=None, sa_type=BigInteger)
    #: The worker *instance* that claimed the current attempt (a restarted worker is another).
    worker_instance: str | None = Field(default=None, max_length=64)
    #: One entry per ended attempt: {attempt, status, kind, reason, step, restarted}.
    attempt_log: list[dict[str, Any]] | None = Field(default=None, sa_column=Column(JSON))
    tags: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    note: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    metrics_summary: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False)
    )
    phase: str | None = Field(default=None, max_length=32)
    phase_since: datetime | None = Field(default=None, sa_type=_tz())
    #: The user who launched it (runs made before users existed: the first admin).
    owner: str | None = Field(default=None, max_length=32, index=True)
    first_started_at: datetime | None = Field(default=None, sa_type=_tz())
    #: Seconds of the attempts that ended (the running one is added by ``to_public``).
    attempts_seconds: float = Field(default=0.0)
    #: Measured seconds of one evaluation / one checkpoint save (mean of the recent ones).
    eval_seconds: float | None = None
    save_seconds: float | None = None
    #: Per attempt (``"1"``, ``"2"``…): the argv the worker launched, as it launched it.
    attempt_argv: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False)
    )
    #: The experiment this run belongs to (``experiments.id``), and its values of the axes.
    experiment_id: str | None = Field(default=None, max_length=32, index=True)
    experiment_values: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    #: Why the server asked this run to stop (early stopping): the reason it ends with.
    stop_reason: str | None = Field(default=None, max_length=REASON_MAX)


# --- experiments (backend/services/experiments/) ------------------------------------------


class Experiment(SQLModel, table=True):
    """A question asked once: ``spec`` (``cpt_contract.experiments.ExperimentSpec``) expanded
    into runs that point back here (``runs.experiment_id``). Its status is its runs'."""

    __tablename__ = "experiments"

    id: str = Field(primary_key=True, max_length=32)
    name: str = Field(default="", max_length=200)
    spec: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=_tz())
    updated_at: datetime | None = Field(default_factory=utcnow, sa_type=_tz())
    launched_at: datetime | None = Field(default=None, sa_type=_tz())
    #: Successive halving: per rung (``"1"``…) per run id the target bits/char and step, and
    #: per stopped run its rung, value and cut-off (``backend/services/experiments/halving.py``).
    rungs: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    #: Who made it (its runs are the launcher's).
    owner: str | None = Field(default=None, max_length=32)


# --- events, logs, checkpoints -------------------------------------------------------------


class RunEvent(SQLModel, table=True):
    """One line of events.jsonl, stored whole in ``data``."""

    __tablename__ = "run_events"
    __table_args__ = (
        UniqueConstraint("run_id", "attempt", "seq", name="uq_run_events_run_attempt_seq"),
        Index("ix_run_events_run_seq", "run_id", "seq"),
    )

    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(foreign_key="runs.id", ondelete="CASCADE", max_length=32)
    attempt: int
    seq: int
    kind: str = Field(max_length=32)
    step: int | None = None
    time: float | None = None
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class EventPublic(SQLModel):
    seq: int
    time: float | None
    kind: str
    step: int | None
    attempt: int
    data: dict[str, Any]


class LogChunk(SQLModel, table=True):
    """A piece of ``logs/attempt-N.log`` starting at byte ``offset``; ``length`` is in bytes."""

    __tablename__ = "log_chunks"
    __table_args__ = (
        UniqueConstraint("run_id", "attempt", "offset", name="uq_log_chunks_run_attempt_offset"),
    )

    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(foreign_key="runs.id", ondelete="CASCADE", max_length=32)
    attempt: int
    offset: int = Field(sa_type=BigInteger)
    length: int
    text: str = Field(sa_type=Text)


class Checkpoint(SQLModel, table=True):
    __tablename__ = "checkpoints"
    __table_args__ = (UniqueConstraint("run_id", "name", name="uq_checkpoints_run_name"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(foreign_key="runs.id", ondelete="CASCADE", max_length=32, index=True)
    attempt: int
    name: str = Field(max_length=200)
    step: int | None = None
    path: str = Field(max_length=1000)
    created_at: datetime = Field(default_factory=utcnow, sa_type=_tz())
    #: Computed from disk on first listing, then cached (a checkpoint is written once).
    size_bytes: int | None = Field(default=None, sa_type=BigInteger)


class CheckpointPublic(SQLModel):
    name: str
    step: int | None
    created_at: UtcDatetime
    size_bytes: int | None
    eval_perplexity: float | None = None
    eval_loss: float | None = None
    attempt: int
    path: str
    exists: bool


class Worker(SQLModel, table=True):
    __tablename__ = "workers"

    name: str = Field(primary_key=True, max_length=200)
    host: str = Field(default="", max_length=200)
    queue: str = Field(default=DEFAULT_QUEUE, max_length=QUEUE_MAX)
    concurrency: int = 1
    cpu_only: bool = False
    gpus: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    current_runs: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    #: ``local`` or ``slurm`` (cpt_contract.settings.Settings.executor).
    executor: str = Field(default="local", max_length=16)
    #: A Slurm worker's ``sinfo`` report (cpt_contract.slurm.ClusterReport as JSON).
    cluster: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    instance: str | None = Field(default=None, max_length=64)
    #: Free space of the worker's volumes (``cpt_contract.protocol.Volume``) at its last beat.
    volumes: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=True)
    )
    first_seen: datetime = Field(default_factory=utcnow, sa_type=_tz())
    last_heartbeat: datetime = Field(default_factory=utcnow, sa_type=_tz())


# --- jobs (merge, tokenizer, scan: cpt_contract/jobs.py) -------------------------------------


class Job(SQLModel, table=True):
    __tablename__ = "jobs"

    id: str = Field(primary_key=True, max_length=32)
    kind: str = Field(max_length=32, index=True)
    status: str = Field(default=RunStatus.queued, max_length=16, index=True)
    status_reason: str | None = Field(default=None, max_length=REASON_MAX)
    params: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    result: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    queue: str = Field(default=DEFAULT_QUEUE, max_length=QUEUE_MAX)
    worker: str | None = Field(default=None, max_length=200)
    #: For a merge: the run it belongs to (listed on that run's page).
    run_id: str | None = Field(default=None, max_length=32, index=True)
    log_size: int = Field(default=0, sa_type=BigInteger)
    created_at: datetime = Field(default_factory=utcnow, sa_type=_tz())
    started_at: datetime | None = Field(default=None, sa_type=_tz())
    finished_at: datetime | None = Field(default=None, sa_type=_tz())
    updated_at: datetime | None = Field(default_factory=utcnow, sa_type=_tz())
    last_seen_at: datetime | None = Field(default=None, sa_type=_tz())
    enqueued_at: datetime | None = Field(default=None, sa_type=_tz())
    #: 2 once a job of an idempotent kind was tried again after its worker was lost.
    attempt: int = Field(default=1, sa_column_kwargs={"server_default": "1"})
    #: The user who queued it (None: the panel itself, e.g. a run's model download).
    owner: str | None = Field(default=None, max_length=32)


class JobLogChunk(SQLModel, table=True):
    __tablename__ = "job_log_chunks"
    __table_args__ = (UniqueConstraint("job_id", "offset", name="uq_job_log_chunks_job_offset"),)

    id: int | None = Field(default=None, primary_key=True)
    job_id: str = Field(foreign_key="jobs.id", ondelete="CASCADE", max_length=32, index=True)
    offset: int = Field(sa_type=BigInteger)
    text: str = Field(sa_type=Text)


class JobCreate(SQLModel):
    """Body of ``POST /api/jobs``: ``params`` are validated by the kind's model."""

    kind: str = Field(max_length=32)
    params: dict[str, Any] = Field(default_factory=dict)
    queue: str | None = Field(default=None, max_length=64, regex=r"^[A-Za-z0-9_.-]{1,64}$")

    model_config = {"extra": "forbid"}  # type: ignore[assignment]


class JobPublic(SQLModel):
    id: str
    kind: str
    status: RunStatus
    status_reason: str | None
    params: dict[str, Any]
    result: dict[str, Any] | None
    queue: str
    worker: str | None
    run_id: str | None
    log_size: int
    created_at: UtcDatetime
    started_at: UtcDatetime | None
    finished_at: UtcDatetime | None
    #: Seconds the job ran (or has been running), measured by the server.
    duration_seconds: float | None = None
    #: 2 when it was tried again after a lost worker (``cpt_contract.jobs.RETRIED_KINDS``).
    attempt: int = 1
    owner: str | None = None


class DownloadProgress(SQLModel):
    """The last ``progress`` line of a download's log, as its tool measured it."""

    bytes: float | None = None
    total_bytes: float | None = None
    files: float | None = None
    total_files: float | None = None
    bytes_per_second: float | None = None
    eta_seconds: float | None = None


class JobDetail(JobPublic):
    """One job as its page and its stream show it (``backend/services/job_stream.py``)."""

    #: 1 = next to run on its queue's job slot (only while queued).
    queue_position: int | None = None
    #: A download's last measured progress (bytes, files, rate, ETA), from its log.
    progress: DownloadProgress | None = None


# --- metrics store (backend/services/metrics/) ----------------------------------------


class MetricSeries(SQLModel, table=True):
    """One metric key of a run (``loss``…): the small id the points and levels are keyed by."""

    __tablename__ = "metric_series"
    __table_args__ = (UniqueConstraint("run_id", "key", name="uq_metric_series_run_key"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(foreign_key="runs.id", ondelete="CASCADE", max_length=32)
    key: str = Field(max_length=200)


class MetricSegment(SQLModel, table=True):
    """Up to ``SEGMENT_POINTS`` consecutive points of one key and attempt, stored column-wise.

    Why columns in blobs: one row per point made the insert itself the ingest's ceiling (about
    250 k rows per CPU-second on SQLite); a segment is one row per key and batch, and the last
    segment of a series grows in place until it is full. ``steps`` is int32 and ``vals``,
    ``times``, ``tokens`` are float64, little-endian; NaN in ``times``/``tokens`` is "none"
    (stored values are always finite: ingest keeps non-finite numbers out of the store).
    Segments of one series and attempt never overlap in steps.
    """

    __tablename__ = "metric_segments"

    series_id: int = Field(
        foreign_key="metric_series.id", ondelete="CASCADE", primary_key=True, sa_type=Integer
    )
    attempt: int = Field(primary_key=True, sa_type=Integer)
    first_step: int = Field(primary_key=True, sa_type=Integer)
    last_step: int
    n: int
    steps: bytes = Field(sa_type=LargeBinary)
    vals: bytes = Field(sa_type=LargeBinary)
    times: bytes = Field(sa_type=LargeBinary)
    #: The last ``tokens_seen`` logged at or before each point (eval events borrow it).
    tokens: bytes = Field(sa_type=LargeBinary)


class MetricLevel(SQLModel, table=True):
    """Min/max/last of a key over the bucket ``step >> level`` of an attempt, kept at ingest."""

    __tablename__ = "metric_levels"
    __table_args__ = ({"sqlite_with_rowid": False},)

    series_id: int = Field(
        foreign_key="metric_series.id", ondelete="CASCADE", primary_key=True, sa_type=Integer
    )
    attempt: int = Field(primary_key=True, sa_type=Integer)
    level: int = Field(primary_key=True, sa_type=Integer)
    bucket: int = Field(primary_key=True, sa_type=Integer)
    n: int
    first_step: int
    last_step: int
    last_value: float
    min_step: int
    min_value: float
    max_step: int
    max_value: float
    # The extremes' other columns: a downsampled read is answered from the levels alone.
    min_time: float | None = None
    min_tokens: float | None = None
    max_time: float | None = None
    max_tokens: float | None = None


class MetricAttempt(SQLModel, table=True):
    """The first step of each attempt: where a resumed attempt takes over the chart."""

    __tablename__ = "metric_attempts"

    run_id: str = Field(foreign_key="runs.id", ondelete="CASCADE", primary_key=True, max_length=32)
    attempt: int = Field(primary_key=True, sa_type=Integer)
    first_step: int


# --- stored secrets (backend/services/secrets.py; values sealed by backend/core/crypto.py) -----


class StoredSecret(SQLModel, table=True):
    __tablename__ = "secrets"

    #: e.g. ``hub_token`` (``secrets.NAME_PATTERN``).
    name: str = Field(primary_key=True, max_length=64)
    #: ``crypto.seal(key, value, context=name)``: never the value itself.
    sealed: str = Field(sa_type=Text)
    #: ``crypto.key_id`` of the key it was sealed under.
    key_id: str = Field(max_length=16)
    #: Public facts about the secret (e.g. its last check), safe to show.
    meta: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    updated_at: datetime = Field(default_factory=utcnow, sa_type=_tz())


# --- users, sessions, personal tokens, audit log (backend/services/users.py, audit.py) ---------


class User(SQLModel, table=True):
    __tablename__ = "users"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=32, unique=True)
    role: str = Field(max_length=16)
    #: Argon2id (``backend/core/passwords.py``); None: may not sign in with a password yet.
    password_hash: str | None = Field(default=None, max_length=200)
    active: bool = Field(default=True)
    #: Quotas (None: no limit): runs live at once (queued or running), runs waiting in a queue.
    max_live_runs: int | None = None
    max_queued_runs: int | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=_tz())


class UserSession(SQLModel, table=True):
    """A browser's sign-in: only hashes are stored (the cookie and the CSRF token)."""

    __tablename__ = "user_sessions"

    id: str = Field(primary_key=True, max_length=64)  # sha256 of the cookie
    user_id: int = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
    csrf_digest: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=_tz())
    expires_at: datetime = Field(sa_type=_tz())


class ApiToken(SQLModel, table=True):
    __tablename__ = "api_tokens"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
    name: str = Field(max_length=64)
    digest: str = Field(max_length=64, unique=True)  # sha256 of the token, never the token
    created_at: datetime = Field(default_factory=utcnow, sa_type=_tz())
    expires_at: datetime = Field(sa_type=_tz())
    revoked_at: datetime | None = Field(default=None, sa_type=_tz())
    last_used_at: datetime | None = Field(default=None, sa_type=_tz())


class AuditEntry(SQLModel, table=True):
    """One state-changing request. Appended in the change's own transaction; no route edits or
    deletes a row."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_actor_at", "actor", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, sa_type=_tz(), index=True)
    #: A user's name, ``worker`` or, for a failed sign-in, the name that was tried.
    actor: str = Field(max_length=64)
    #: ``session``, ``token`` (personal), ``api-token`` (the panel's single token), ``worker``.
    via: str = Field(max_length=16)
    client: str = Field(max_length=64)
    action: str = Field(max_length=48, index=True)
    target: str = Field(default="", max_length=200, index=True)
    #: Changed fields (never a secret: ``backend/services/audit.py::_clean``).
    changes: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


# --- benchmark scores (backend/services/benchmarks.py) -----------------------------------


class CheckpointScore(SQLModel, table=True):
    """One metric of one lm-evaluation-harness task on one checkpoint of a run, as its latest
    evaluate job scored it (a later job of the same task replaces the row)."""

    __tablename__ = "checkpoint_scores"
    __table_args__ = (
        UniqueConstraint("run_id", "checkpoint", "task", "metric", name="uq_checkpoint_scores_key"),
    )

    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(foreign_key="runs.id", ondelete="CASCADE", max_length=32, index=True)
    checkpoint: str = Field(max_length=200)
    step: int | None = None
    task: str = Field(max_length=200)
    metric: str = Field(max_length=200)
    value: float | None = None
    stderr: float | None = None
    samples: int | None = None
    num_fewshot: int | None = None
    job_id: str = Field(max_length=32)
    created_at: datetime = Field(default_factory=utcnow, sa_type=_tz())


class ScorePublic(SQLModel):
    checkpoint: str
    step: int | None
    task: str
    metric: str
    value: float | None
    stderr: float | None
    samples: int | None
    num_fewshot: int | None
    job_id: str
    created_at: UtcDatetime


# --- notifications (backend/services/notifications/) -------------------------------------


class NotificationChannel(SQLModel, table=True):
    """Where to tell someone that a run ended: a webhook (its URL kept in the secret store,
    ``notify.<id>.url``) or e-mail addresses; the user's (``run_id`` None: every run) or one
    run's."""

    __tablename__ = "notification_channels"

    id: str = Field(primary_key=True, max_length=32)
    name: str = Field(max_length=100)
    kind: str = Field(max_length=16)
    format: str = Field(default="generic", max_length=16)
    #: The webhook's host, what may be shown (the URL itself often carries a token).
    host: str | None = Field(default=None, max_length=300)
    to: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    events: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    run_id: str | None = Field(
        default=None, foreign_key="runs.id", ondelete="CASCADE", max_length=32, index=True
    )
    #: Who made it: a channel without a run hears its owner's runs and experiments.
    owner: str | None = Field(default=None, max_length=32)
    created_at: datetime = Field(default_factory=utcnow, sa_type=_tz())


class NotificationDelivery(SQLModel, table=True):
    """The outbox: one message for one channel, queued in the status change's transaction and
    delivered by the API's background task (``notifications/drain.py``), retried with backoff."""

    __tablename__ = "notification_deliveries"
    __table_args__ = (Index("ix_notification_deliveries_due", "status", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    channel_id: str = Field(
        foreign_key="notification_channels.id", ondelete="CASCADE", max_length=32, index=True
    )
    event: str = Field(max_length=32)
    run_id: str | None = Field(default=None, max_length=32)
    #: The run's summary as it was when the event happened (what every body is made from).
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    status: str = Field(default="pending", max_length=16)
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_type=_tz())
    last_error: str | None = Field(default=None, max_length=REASON_MAX)
    created_at: datetime = Field(default_factory=utcnow, sa_type=_tz())
    delivered_at: datetime | None = Field(default=None, sa_type=_tz())


class ChannelPublic(SQLModel):
    id: str
    name: str
    kind: str
    format: str
    host: str | None
    to: list[str]
    events: list[str]
    run_id: str | None
    owner: str | None = None
    created_at: UtcDatetime


class DeliveryPublic(SQLModel):
    id: int
    channel_id: str
    event: str
    run_id: str | None
    status: str
    attempts: int
    next_attempt_at: UtcDatetime
    last_error: str | None
    created_at: UtcDatetime
    delivered_at: UtcDatetime | None
