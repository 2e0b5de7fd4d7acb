"""The worker ↔ API wire protocol (``/api/internal``): one definition of each request and answer.

The API's routes declare these as their bodies and response models; ``worker/attempt/api_client.py``
builds its requests from them and reads the answers through them, so the two sides cannot drift.
Every call is idempotent (claim keyed by attempt, events by seq, logs by byte offset).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, NotRequired

from pydantic import BaseModel, ConfigDict, Field

# pydantic needs typing_extensions' TypedDict before Python 3.12.
from typing_extensions import TypedDict

from cpt_contract.limits import DEFAULT_QUEUE, INT32, INT64, QUEUE_MAX, REASON_MAX
from cpt_contract.outcomes import FailureKind
from cpt_contract.slurm import ClusterReport

#: The largest value the database's integer columns hold (PostgreSQL ``integer``): a wild value
#: is a 422 at the boundary, never a 500 from the database.

#: Routes under ``/api/internal``.
HEARTBEAT = "/workers/heartbeat"

#: Header carrying the lease a claim hands out: reports on a run (status, events, logs) need
#: it, so a worker token alone cannot report on a run it did not claim.
LEASE_HEADER = "X-CPT-Lease"

#: What a checkpoint's name must look like (its path: ``<the run's output dir>/<name>``).
CHECKPOINT_NAME = r"^checkpoint-[0-9]{1,10}$"


def claim_path(run_id: str) -> str:
    return f"/runs/{run_id}/claim"


def status_path(run_id: str) -> str:
    return f"/runs/{run_id}/status"


def events_path(run_id: str) -> str:
    return f"/runs/{run_id}/events"


def logs_path(run_id: str) -> str:
    return f"/runs/{run_id}/logs"


def adopt_path(run_id: str) -> str:
    return f"/runs/{run_id}/adopt"


RunId = Annotated[str, Field(max_length=32)]
# Bounded like the database columns (PostgreSQL integer), so a wild value is a 422, not a 500.
Attempt = Annotated[int, Field(ge=1, le=INT32)]


class Volume(BaseModel):
    """Free space of one of a worker's volumes, as it measured it at its heartbeat."""

    #: ``data`` (the data dir), ``runs`` (checkpoints), ``cache`` (tokenized data), ``root``
    #: (an allowed root: models and datasets).
    name: Literal["data", "runs", "cache", "root"]
    path: str = Field(max_length=4096)
    free_bytes: int = Field(ge=0, le=INT64)
    total_bytes: int = Field(ge=0, le=INT64)


class HeartbeatIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    host: str = Field(default="", max_length=200)
    queue: str = Field(default=DEFAULT_QUEUE, max_length=QUEUE_MAX)
    concurrency: int = Field(default=1, ge=0, le=1024)
    cpu_only: bool = False
    gpus: list[dict[str, Any]] = Field(default_factory=list, max_length=64)
    current_runs: list[RunId] = Field(default_factory=list, max_length=1024)
    #: ``local`` (torchrun on this box) or ``slurm`` (sbatch from a login node).
    executor: Literal["local", "slurm"] = "local"
    #: The Slurm cluster as ``sinfo`` sees it (slurm executor only); the API's preflight reads it.
    cluster: ClusterReport | None = None
    #: The worker process's instance id (made at its start): a restarted worker is another one.
    instance: str | None = Field(default=None, max_length=64)
    #: Free space of its data, runs and cache volumes and of each allowed root.
    volumes: list[Volume] = Field(default_factory=list, max_length=64)


class HeartbeatOut(BaseModel):
    cancel: list[str]


class ClaimIn(BaseModel):
    attempt: Attempt
    worker: str = Field(min_length=1, max_length=200)
    instance: str | None = Field(default=None, max_length=64)


class ClaimOut(BaseModel):
    config: dict[str, Any]
    attempt: int
    resume_from: str | None = Field(
        description="'last' or 'checkpoint-N', passed to pretrain.py, which picks the checkpoint"
    )
    run_dir: str
    output_dir: str
    lease: str = Field(
        description=f"Send it as {LEASE_HEADER} on this run's status, events and logs reports"
    )
    #: The settings of the trackers the run reports to, as environment variables for its ranks
    #: (``cpt_contract/trackers.py``); never an argv or a log line.
    tracker_env: dict[str, str] = Field(default_factory=dict, repr=False)


class AdoptIn(BaseModel):
    """A restarted worker takes back the attempt it was running (a Slurm job still alive)."""

    attempt: Attempt
    worker: str = Field(min_length=1, max_length=200)
    instance: str | None = Field(default=None, max_length=64)
    job: str = Field(min_length=1, max_length=32, pattern=r"^[0-9]+$", description="Slurm job id")


class AdoptOut(ClaimOut):
    """The claim's answer again (a new lease), and how far the API has the attempt's data, so
    the worker ships on from there."""

    events_seq: int | None = Field(description="The highest event seq stored for the run")
    log_bytes: int = Field(description="Bytes of the attempt's log stored")


class StatusIn(BaseModel):
    attempt: Attempt
    status: Literal[
        "starting", "running", "succeeded", "failed", "cancelled"
    ]  # REPORTABLE_STATUSES
    reason: str | None = Field(default=None, max_length=REASON_MAX)
    pid: int | None = Field(default=None, ge=0, le=INT32)
    #: Why the attempt failed (or was cancelled outside the panel): the API stores it with the
    #: attempt and restarts the kinds that are interruptions (``outcomes.RETRYABLE_KINDS``).
    kind: FailureKind | None = None
    #: The command the worker launched for this attempt, as it launched it (``starting`` or
    #: ``running``); the run page shows it per attempt.
    argv: list[Annotated[str, Field(max_length=8192)]] | None = Field(default=None, max_length=4096)


class CancelAnswer(BaseModel):
    cancel_requested: bool


class ShippedEvent(TypedDict):
    """One events.jsonl line; fields beyond these are kept as they are.

    A TypedDict, not a model: validation hands the route plain dicts (the keys that were sent,
    nothing added), where 200 models and their ``model_dump`` cost 4x as much per batch.
    """

    __pydantic_config__ = ConfigDict(extra="allow")  # type: ignore[misc]
    seq: Annotated[int, Field(ge=0, le=INT32)]
    kind: Annotated[str, Field(max_length=32)]
    step: NotRequired[Annotated[int | None, Field(ge=-INT32, le=INT32)]]
    time: NotRequired[float | None]


class LogPart(BaseModel):
    offset: int = Field(ge=0, le=2**62, description="Byte offset of text in the attempt's log file")
    text: str = Field(max_length=8 * 1024 * 1024)


class EventsIn(BaseModel):
    attempt: Attempt
    events: list[ShippedEvent] = Field(max_length=10_000)
    log: LogPart | None = Field(
        None,
        description="The attempt's new log bytes, shipped along with the events in one request "
        "(what POST .../logs takes, stored in the same transaction)",
    )


class EventsOut(CancelAnswer):
    accepted: int
    log_accepted_until: int | None = Field(
        None, description="With a log part: what POST .../logs would answer as accepted_until"
    )


class LogsIn(LogPart):
    attempt: Attempt


class LogsOut(CancelAnswer):
    accepted_until: int


# --- jobs ----------------------------------------------------------------------------------


class JobClaimIn(BaseModel):
    worker: str = Field(min_length=1, max_length=200)


class JobClaimOut(BaseModel):
    kind: str
    params: dict[str, Any]
    #: Where the job writes (``<data_dir>/jobs/<id>``; the worker creates it).
    job_dir: str
    lease: str = Field(description=f"Send it as {LEASE_HEADER} on this job's status and log")
    #: 2 when the job is tried again after a lost worker (its output starts fresh).
    attempt: int = Field(default=1, ge=1, le=INT32)
    #: For a job whose tool talks to the Hub: the panel's Hub token, for the tool's environment
    #: only (the worker never writes, logs or passes it on otherwise). None: the worker's own.
    hub_token: str | None = Field(default=None, repr=False)
    #: Text files the job's output gets once the tool succeeded (a merge: the run's model card
    #: as ``README.md``), by file name.
    files: dict[str, str] = Field(default_factory=dict)


class JobStatusIn(BaseModel):
    status: Literal["running", "succeeded", "failed", "cancelled"]
    reason: str | None = Field(default=None, max_length=REASON_MAX)
    #: The job's result document (only with ``succeeded``).
    result: dict[str, Any] | None = None


class JobLogIn(BaseModel):
    offset: int = Field(ge=0, le=2**40)
    text: str = Field(max_length=1024 * 1024)


class JobLogOut(CancelAnswer):
    accepted_until: int


def job_claim_path(job_id: str) -> str:
    return f"/jobs/{job_id}/claim"


def job_status_path(job_id: str) -> str:
    return f"/jobs/{job_id}/status"


def job_log_path(job_id: str) -> str:
    return f"/jobs/{job_id}/log"
