"""Slurm job states → what the run shows (``scontrol -o show job``; no ``sacct`` needed).

Pending and running jobs keep the run ``starting``/``running`` with Slurm's reason in words;
a finished job becomes an ``Ending`` that ``attempt.py`` turns into the run's final status, or
into a resubmission (time limit, preemption).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from cpt_contract.outcomes import FailureKind
from cpt_contract.slurm import parse_time_minutes


class Phase(StrEnum):
    pending = "pending"
    running = "running"
    done = "done"


#: Base states (``scontrol`` may add flags: ``CANCELLED by 0``, ``RUNNING+...``).
PENDING_STATES = {"PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD"}
RUNNING_STATES = {
    "CONFIGURING",
    "RUNNING",
    "COMPLETING",
    "SUSPENDED",
    "STOPPED",
    "SIGNALING",
    "STAGE_OUT",
    "RESIZING",
}
DONE_STATES = {
    "COMPLETED",
    "FAILED",
    "CANCELLED",
    "TIMEOUT",
    "PREEMPTED",
    "NODE_FAIL",
    "OUT_OF_MEMORY",
    "BOOT_FAIL",
    "DEADLINE",
    "SPECIAL_EXIT",
    "REVOKED",
}
#: Ended by Slurm while training was fine: resubmitted to resume from the last checkpoint.
INTERRUPTED_STATES = {"TIMEOUT", "PREEMPTED"}

#: Why a job pends, in words (Slurm's own reason stays in the text, for searching its docs).
PENDING_REASONS = {
    "Resources": "waiting for free nodes",
    "Priority": "other jobs have priority",
    "Dependency": "waiting for a dependency",
    "BeginTime": "waiting for its start time",
    "JobHeldUser": "held by a user (scontrol release)",
    "JobHeldAdmin": "held by an administrator",
    "ReqNodeNotAvail": "requested nodes are not available",
    "PartitionDown": "the partition is down",
    "PartitionInactive": "the partition is inactive",
    "NodeDown": "a required node is down",
    "Reservation": "waiting for its reservation",
    "Licenses": "waiting for licenses",
    "None": "being scheduled",
}
#: Reasons that never clear by waiting: the job is cancelled and the run fails with the fix.
NEVER_STARTS = {
    "PartitionTimeLimit": "the time limit is above the partition's maximum: lower launch.time_limit",
    "PartitionNodeLimit": "more nodes than the partition allows: lower launch.nnodes",
    "BadConstraints": "the job's constraints match no node: check the extra #SBATCH options",
    "InvalidAccount": "the account is not valid: check CPT_SLURM_ACCOUNT",
    "InvalidQOS": "the QoS is not valid: check CPT_SLURM_QOS",
    "QOSMaxWallDurationPerJobLimit": "the time limit is above the QoS maximum: lower launch.time_limit",
    "QOSMaxNodePerJobLimit": "more nodes than the QoS allows: lower launch.nnodes",
    "AssocMaxWallDurationPerJobLimit": "the time limit is above the account's maximum",
    "AssocMaxNodesPerJobLimit": "more nodes than the account allows: lower launch.nnodes",
}


def pending_reason(reason: str) -> str:
    if reason in PENDING_REASONS:
        return f"{PENDING_REASONS[reason]} ({reason})"
    if reason.startswith(("QOS", "Assoc")):
        return f"a QoS or account limit holds it ({reason})"
    return reason


@dataclass(frozen=True)
class JobInfo:
    job_id: str
    state: str  # the base state, e.g. PENDING, CANCELLED
    reason: str
    nodes: str
    exit_code: int | None  # the batch script's exit code
    exit_signal: int | None
    #: Slurm chose the job for preemption (``PreemptTime`` is set), whatever its end state.
    preempted: bool = False
    run_seconds: float | None = None
    limit_seconds: float | None = None

    def near_limit(self, grace_seconds: float) -> bool:
        """Ended within the TERM grace of its time limit (Slurm signals up to a minute early)."""
        if self.run_seconds is None or self.limit_seconds is None:
            return False
        return self.run_seconds >= self.limit_seconds - grace_seconds - 65

    @property
    def phase(self) -> Phase:
        if self.state in DONE_STATES:
            return Phase.done
        if self.state in RUNNING_STATES:
            return Phase.running
        return Phase.pending


_FIELD = re.compile(
    r"(?:^|\s)(JobState|Reason|NodeList|ExitCode|JobId|PreemptTime|RunTime|TimeLimit)=(\S*)"
)


def _seconds(text: str | None) -> float | None:
    """``[D-]HH:MM:SS`` (scontrol's RunTime/TimeLimit) in seconds; None for UNLIMITED."""
    if not text:
        return None
    try:
        minutes = parse_time_minutes(text)
    except ValueError:
        return None
    return None if minutes is None else minutes * 60


def parse_show_job(line: str) -> JobInfo:
    """One ``scontrol -o show job`` line (Key=Value pairs; values we read have no spaces)."""
    fields = dict(_FIELD.findall(line))
    state = fields.get("JobState", "UNKNOWN").split("+")[0]
    code, _, sig = fields.get("ExitCode", "").partition(":")
    return JobInfo(
        job_id=fields.get("JobId", ""),
        state=state,
        reason=fields.get("Reason", "None"),
        nodes="" if fields.get("NodeList") in (None, "(null)") else fields["NodeList"],
        exit_code=int(code) if code.isdigit() else None,
        exit_signal=int(sig) if sig.isdigit() else None,
        preempted=fields.get("PreemptTime", "None") not in ("None", "Unknown", "", "(null)"),
        run_seconds=_seconds(fields.get("RunTime")),
        limit_seconds=_seconds(fields.get("TimeLimit")),
    )


def parse_squeue(job_id: str, line: str) -> JobInfo:
    state, _, reason = line.strip().partition("|")
    return JobInfo(job_id, state.split("+")[0], reason or "None", "", None, None)


def describe(info: JobInfo) -> str:
    """The run's reason while the job is alive."""
    if info.phase is Phase.pending:
        what = "requeued" if info.state != "PENDING" else "pending"
        return f"Slurm job {info.job_id} {what}: {pending_reason(info.reason)}"
    where = f" on {info.nodes}" if info.nodes else ""
    if info.state == "SUSPENDED":
        return f"Slurm job {info.job_id} suspended{where}"
    return f"Slurm job {info.job_id} running{where}"


def final_reason(info: JobInfo) -> str | None:
    """Why a finished job failed, for the states whose meaning the exit code does not carry
    (None: COMPLETED/FAILED/CANCELLED, judged by the end event and the exit code)."""
    job = f"Slurm job {info.job_id}"
    where = f" ({info.nodes})" if info.nodes else ""
    return {
        "TIMEOUT": f"{job} reached its time limit",
        "PREEMPTED": f"{job} was preempted",
        "NODE_FAIL": f"a node of {job} failed (NODE_FAIL){where}; resume from the last checkpoint",
        "OUT_OF_MEMORY": f"{job} ran out of host memory (OUT_OF_MEMORY){where}",
        "BOOT_FAIL": f"{job}: a node failed to boot (BOOT_FAIL){where}",
        "DEADLINE": f"{job} missed its deadline (DEADLINE)",
        "SPECIAL_EXIT": f"{job} ended in SPECIAL_EXIT",
        "REVOKED": f"{job} was revoked (REVOKED)",
    }.get(info.state)


#: The failure kind each final state means (``final_reason`` says it in words).
_FINAL_KINDS = {
    "TIMEOUT": FailureKind.slurm_time_limit,
    "DEADLINE": FailureKind.slurm_time_limit,
    "PREEMPTED": FailureKind.slurm_preempted,
    "NODE_FAIL": FailureKind.slurm_node_fail,
    "OUT_OF_MEMORY": FailureKind.oom,
    "BOOT_FAIL": FailureKind.slurm_never_started,
}


def final_kind(state: str) -> FailureKind:
    return _FINAL_KINDS.get(state, FailureKind.error)
