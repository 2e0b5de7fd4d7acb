"""The Slurm judgement as a table: golden ``scontrol -o show job`` lines of finished jobs (with
the training's end event and the batch shell's TERM marker) → the run's outcome, or a
resubmission. Pure: no Slurm needed."""

from __future__ import annotations

from typing import Any

import pytest

from cpt_contract.outcomes import EndStatus, FailureKind
from worker.attempt.slurm.judgement import Decision, JobEnd, judge
from worker.attempt.slurm.states import parse_show_job

GRACE = 10.0  # CPT_SLURM_SIGNAL_GRACE_SECONDS of the tests
MAX = 3  # CPT_SLURM_MAX_REQUEUES
OK = {"kind": "end", "status": "succeeded", "reason": None}


def show(state: str, extra: str = "") -> str:
    return f"JobId=46 JobName=cpt-r-1 JobState={state} Reason=None NodeList=cpt-n1 {extra}"


# id, scontrol line (None: Slurm forgot the job unseen), JobEnd fields, job n,
# expected status, kind, reason (substring), resubmit
CASES: list[tuple[str, str | None, dict[str, Any], int, str, FailureKind | None, str, bool]] = [
    (
        "completed",
        show("COMPLETED", "ExitCode=0:0"),
        {"end_event": OK},
        0,
        "succeeded",
        None,
        "",
        False,
    ),
    (
        "completed-no-end-event",
        show("COMPLETED", "ExitCode=0:0"),
        {},
        0,
        "succeeded",
        None,
        "",
        False,
    ),
    (
        "succeeded-wins-over-a-late-failure",
        show("FAILED", "ExitCode=1:0"),
        {"end_event": OK},
        0,
        "succeeded",
        None,
        "",
        False,
    ),
    (
        "failed-with-its-error",
        show("FAILED", "ExitCode=1:0"),
        {"error_line": "ValueError: no text in the data"},
        0,
        "failed",
        FailureKind.error,
        "exit code 1: ValueError: no text in the data",
        False,
    ),
    (
        "failed-bad-input",
        show("FAILED", "ExitCode=2:0"),
        {},
        0,
        "failed",
        FailureKind.bad_input,
        "exit code 2",
        False,
    ),
    (
        "diverged-end-event",
        show("FAILED", "ExitCode=3:0"),
        {"end_event": {"kind": "end", "status": "diverged", "reason": "loss is nan at step 5"}},
        0,
        "failed",
        FailureKind.diverged,
        "diverged: loss is nan at step 5",
        False,
    ),
    (
        "timeout-resubmitted",
        show("TIMEOUT", "ExitCode=0:15 RunTime=00:01:00 TimeLimit=00:01:00"),
        {},
        0,
        "failed",
        FailureKind.slurm_time_limit,
        "Slurm job 46 reached its time limit",
        True,
    ),
    (
        "timeout-last-round",
        show("TIMEOUT"),
        {"checkpoint": "checkpoint-20"},
        MAX,
        "failed",
        FailureKind.slurm_time_limit,
        "reached its time limit (4 jobs); resume from checkpoint-20; or a longer launch.time_limit",
        False,
    ),
    (
        "timeout-last-round-nothing-saved",
        show("TIMEOUT"),
        {},
        MAX,
        "failed",
        FailureKind.slurm_time_limit,
        "; no checkpoint was saved to resume from",
        False,
    ),
    (
        "preempted-resubmitted",
        show("PREEMPTED"),
        {},
        1,
        "failed",
        FailureKind.slurm_preempted,
        "Slurm job 46 was preempted",
        True,
    ),
    (
        "term-then-exit-75-near-the-limit",
        show("FAILED", "ExitCode=75:0 RunTime=00:00:50 TimeLimit=00:01:00"),
        {"signalled": True},
        0,
        "failed",
        FailureKind.slurm_time_limit,
        "Slurm job 46 reached its time limit",
        True,
    ),
    (
        "term-early",
        show("FAILED", "ExitCode=75:0 RunTime=00:10:00 TimeLimit=01:00:00"),
        {"signalled": True},
        0,
        "failed",
        FailureKind.slurm_time_limit,
        "was signalled (time limit or preemption)",
        True,
    ),
    (
        "completed-after-preemption",
        show("COMPLETED", "ExitCode=0:0 PreemptTime=2026-12-07T18:00:00"),
        {},
        0,
        "failed",
        FailureKind.slurm_preempted,
        "Slurm job 46 was preempted",
        True,
    ),
    (
        "scancel-outside",
        show("CANCELLED", "ExitCode=0:15"),
        {},
        0,
        "cancelled",
        FailureKind.slurm_cancelled,
        "cancelled outside the panel (scancel)",
        False,
    ),
    (
        "cancelled-by-the-panel",
        show("CANCELLED", "ExitCode=0:15"),
        {"cancelled": True},
        0,
        "cancelled",
        None,
        "cancelled on request",
        False,
    ),
    (
        "worker-stopping",
        show("CANCELLED"),
        {"stopping": True},
        0,
        "failed",
        FailureKind.worker_stopped,
        "the worker stopped during the run",
        False,
    ),
    (
        "node-fail",
        show("NODE_FAIL", "ExitCode=0:0"),
        {},
        0,
        "failed",
        FailureKind.slurm_node_fail,
        "a node of Slurm job 46 failed (NODE_FAIL) (cpt-n1)",
        False,
    ),
    (
        "out-of-memory",
        show("OUT_OF_MEMORY", "ExitCode=0:125"),
        {},
        0,
        "failed",
        FailureKind.oom,
        "ran out of host memory (OUT_OF_MEMORY)",
        False,
    ),
    (
        "boot-fail",
        show("BOOT_FAIL"),
        {},
        0,
        "failed",
        FailureKind.slurm_never_started,
        "a node failed to boot (BOOT_FAIL)",
        False,
    ),
    (
        "never-starts",
        show("CANCELLED"),
        {
            "never_starts": "the time limit is above the partition's maximum: lower launch.time_limit"
        },
        0,
        "failed",
        FailureKind.slurm_never_started,
        "Slurm job 46: the time limit is above the partition's maximum",
        False,
    ),
    (
        "vanished",
        None,
        {},
        0,
        "failed",
        FailureKind.slurm_vanished,
        "Slurm job 46 vanished without a result",
        False,
    ),
    (
        "forgotten-after-its-end-event",
        None,
        {"end_event": {"kind": "end", "status": "oom", "reason": "CUDA out of memory"}},
        0,
        "failed",
        FailureKind.oom,
        "oom: CUDA out of memory",
        False,
    ),
]


@pytest.mark.parametrize(
    ("line", "fields", "n", "status", "kind", "reason", "resubmit"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_golden_states(
    line: str | None,
    fields: dict[str, Any],
    n: int,
    status: str,
    kind: FailureKind | None,
    reason: str,
    resubmit: bool,
) -> None:
    info = parse_show_job(line) if line else None
    decision = judge(JobEnd(job_id="46", info=info, **fields), n, MAX, GRACE)
    assert isinstance(decision, Decision)
    assert decision.outcome.status == EndStatus(status)
    assert decision.outcome.kind == kind
    assert reason in (decision.outcome.reason or ""), decision.outcome.reason
    assert decision.resubmit is resubmit
    # A resubmission says so in the attempt log; a final verdict leaves that to the report.
    assert (decision.note is not None) is resubmit
