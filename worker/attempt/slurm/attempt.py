"""One attempt of a run on a Slurm cluster: submit, watch, cancel, resubmit, report.

The claim, the shipper (events.jsonl and the log, same idempotent protocol) and the final
report are ``RunAttempt``'s; only launching and watching differ. The job writes its output into
the attempt's log (``--output``, appended) and its events into the run's output dir, both on
the shared filesystem, and this worker ships them as for a local run.

A job ended by its time limit or by preemption (Slurm sent TERM first: training saved a
checkpoint) is resubmitted with ``--resume_from_checkpoint last``, up to
``CPT_SLURM_MAX_REQUEUES`` times, within the same attempt.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

from cpt_contract.fit import fit_problems, slurm_problems
from cpt_contract.outcomes import LAST_CHECKPOINT, FailureKind, Outcome, Try, why_not_retry
from cpt_contract.protocol import CancelAnswer, ClaimOut
from cpt_contract.roots import Roots
from cpt_contract.runconfig.argv import LaunchContext, display_command
from cpt_contract.runconfig.schema import RunConfig
from worker.attempt.api_client import ApiUnavailable, Conflict
from worker.attempt.executors import ExecState
from worker.attempt.registry import worker_name
from worker.attempt.runner import (
    PRETRAIN,
    ROOT,
    SECRET_ENV,
    Refused,
    RunAttempt,
    outcome_from,
)
from worker.attempt.shipper import RunShipper, ShipperThread
from worker.attempt.slurm import commands, script, states
from worker.attempt.slurm.cluster import cluster_report
from worker.attempt.slurm.states import JobInfo, Phase

log = logging.getLogger(__name__)

#: How long a cancelled job may take to leave the queue before the worker stops waiting.
CANCEL_WAIT_SECONDS = 120.0


class SlurmJob:
    """A submitted batch job behind ``worker.attempt.executors.Execution``."""

    def __init__(self, job_id: str, log_path: Path) -> None:
        self.job_id, self.log_path = job_id, log_path
        self.last: JobInfo | None = None
        #: Slurm answered that it does not know the job (purged after MinJobAge, or never
        #: registered), as opposed to not answering at all.
        self.forgotten = False

    @property
    def ident(self) -> str:
        return self.job_id

    def info(self) -> JobInfo | None:
        """The job as Slurm sees it now; None once Slurm forgot it (``MinJobAge``)."""
        try:
            line = commands.show_job(self.job_id)
            found = states.parse_show_job(line) if line else None
            self.forgotten = line is None
        except commands.SlurmError:
            found = None
            try:  # the controller may be busy: squeue is the second opinion
                line = commands.squeue_state(self.job_id)
                found = states.parse_squeue(self.job_id, line) if line else None
                self.forgotten = line is None
            except commands.SlurmError as exc:
                log.warning("Slurm job %s: no state (%s)", self.job_id, exc)
                return self.last  # unknown for now: keep the last state seen
        if found is not None:
            self.last = found
        return found

    def poll(self) -> ExecState:
        info = self.info()
        if info is None:
            return ExecState("done", f"Slurm job {self.job_id} is no longer known")
        return ExecState(info.phase.value, states.describe(info))

    def cancel(self, grace: float) -> None:
        commands.scancel(self.job_id)

    def exit_status(self) -> int | None:
        if self.last is None or self.last.phase is not Phase.done:
            return None
        return self.last.exit_code


def job_env(use_cpu: bool, roots: Roots) -> dict[str, str]:
    """The environment sbatch exports into the job (``--export=ALL``): no secrets, no Slurm
    variables of the worker's own, the repo importable. TERM needs no switch: pretrain.py always
    saves a checkpoint at the next step boundary on it (``worker/training/preemption.py``)."""
    env = {
        k: v for k, v in os.environ.items() if k not in SECRET_ENV and not k.startswith("SLURM_")
    }
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env.update(roots.env())
    if use_cpu:
        env["DS_ACCELERATOR"] = "cpu"
        env["CUDA_VISIBLE_DEVICES"] = ""
    else:
        env.pop("CUDA_VISIBLE_DEVICES", None)  # Slurm sets it per allocation
    return env


class SlurmAttempt(RunAttempt):
    job: SlurmJob | None = None
    #: The status the API was last told (keep-alives repeat it; it never moves backwards).
    reported = "starting"
    #: What the job's steps run (launcher and training argv), reported with the status.
    argv: list[str] | None = None

    # --- preparation ---------------------------------------------------------------------
    def _prepare(self, claim: ClaimOut) -> tuple[RunConfig, bool, str | None]:
        config, ds_config = self._write_run_files(claim, self._slurm_dir)
        use_cpu = bool(self.settings.use_cpu) or not self.settings.slurm_gpus
        problems = fit_problems(
            config.training,
            config.launch,
            cpu_only=use_cpu,
            gpu_count=0,
            cpu_count=None,
            executor="slurm",
        )
        # Checked again against a fresh sinfo: the API's view is a heartbeat old.
        cluster = cluster_report(self.settings)
        if cluster.error:
            raise Refused(f"Slurm is not reachable from this worker: {cluster.error}")
        problems += slurm_problems(config.launch, cluster)
        if problems:
            raise Refused(problems[0][1])
        return config, use_cpu, ds_config

    @property
    def _slurm_dir(self) -> Path:
        return self.paths.run_dir / "slurm"

    def _submit(
        self, config: RunConfig, use_cpu: bool, ds_config: str | None, resume: str | None, n: int
    ) -> SlurmJob:
        settings = self.settings
        ctx = LaunchContext(
            output_dir=str(self.paths.output_dir),
            data_cache_dir=str(self.cache_dir),
            deepspeed_config=ds_config,
            use_cpu=use_cpu,
            python=settings.slurm_python or sys.executable,
            script=str(PRETRAIN),
            resume_from_checkpoint=resume,
            run_id=self.run_id,
        )
        spec = script.JobSpec(
            run_id=self.run_id,
            attempt=self.attempt,
            python=ctx.python,
            script=ctx.script,
            run_dir=self.paths.run_dir,
            log_path=self.log_path,
            marker_dir=self._slurm_dir,
            use_cpu=use_cpu,
            partition=settings.slurm_partition,
            account=settings.slurm_account,
            qos=settings.slurm_qos,
            time_limit=settings.slurm_time_limit,
            signal_grace_seconds=settings.slurm_signal_grace_seconds,
            extra_sbatch=list(settings.slurm_extra_sbatch),
        )
        options = script.sbatch_options(config, spec)
        path = self._slurm_dir / f"attempt-{self.attempt}-job-{n + 1}.sbatch"
        path.write_text(script.render(config, ctx, spec, options))
        if resume:
            self._note(f"resuming from {resume}")
        self._note("$ " + display_command(["sbatch", *options, str(path)]))
        self._note(
            "srun: "
            + display_command([*script.launcher_argv(config, spec), "--rdzv_endpoint", "<node 0>"])
            + " "
            + display_command(script.training_argv(config, ctx, spec))
        )
        self.argv = [
            *script.launcher_argv(config, spec),
            "--rdzv_endpoint",
            "<node 0>",
            *script.training_argv(config, ctx, spec),
        ]
        try:
            job_id = commands.sbatch(options, path, job_env(use_cpu, self.settings.roots))
        except commands.SlurmError as exc:
            raise Refused(f"sbatch refused the job: {exc}") from exc
        self._note(f"submitted Slurm job {job_id} (attempt {self.attempt}, job {n + 1})")
        self.registry.register(self.run_id, self.attempt, slurm_job=job_id)
        self.job = SlurmJob(job_id, self.log_path)
        return self.job

    # --- reporting ---------------------------------------------------------------------
    def _tell(self, status: str, reason: str | None) -> None:
        try:
            answer = self.api.status(
                self.run_id,
                self.attempt,
                status,
                reason=reason,
                argv=self.argv if status in ("starting", "running") else None,
                retry_for=30,
            )
        except Conflict as exc:
            log.warning("run %s: %s refused (%s); stopping", self.run_id, status, exc)
            self.cancel.set()
            return
        except ApiUnavailable as exc:
            log.warning("run %s: could not report %s: %s", self.run_id, status, exc)
            return
        self.reported = status
        if answer.cancel_requested:
            self.cancel.set()

    def _still_running(self) -> CancelAnswer:
        if self.job is None:
            return CancelAnswer(cancel_requested=False)
        return self.api.status(self.run_id, self.attempt, self.reported, retry_for=0)

    # --- the attempt -------------------------------------------------------------------
    def _launch_and_watch(self, claim: ClaimOut, shipper: RunShipper) -> Outcome:
        config, use_cpu, ds_config = self._prepare(claim)
        self._note(f"attempt {self.attempt} on {worker_name(self.settings)} (Slurm executor)")
        thread = ShipperThread(shipper, self.settings.ship_interval_seconds)
        thread.start()
        resume = claim.resume_from
        tries: list[Try] = []
        try:
            for n in range(self.settings.slurm_max_requeues + 1):
                if self._cancelled():
                    return Outcome.cancelled()
                shipper.end_event = None  # the verdict is this job's own end event
                job = self._submit(config, use_cpu, ds_config, resume, n)
                info = self._watch_job(job)
                shipper.drain()
                outcome, again = self._judge(job, info, shipper, n)
                if not again:
                    return outcome
                # The same retry policy as the API's automatic resume: no futile resubmits.
                tries.append(Try(outcome.kind, shipper.trained_step))
                if why := why_not_retry(tries, self.settings.futile_attempts):
                    self._note(f"not resubmitted: {why}")
                    return Outcome.failed(
                        outcome.kind or FailureKind.error,
                        f"{outcome.reason}; not resubmitted: {why}{self._resume_hint()}",
                    )
                resume = LAST_CHECKPOINT
            raise AssertionError("unreachable")  # the last round never resubmits
        finally:
            thread.stop()
            self._ship_final(shipper)

    def _watch_job(self, job: SlurmJob) -> JobInfo | None:
        """Poll until the job ended; report pending reasons and RUNNING; scancel on cancel."""
        submitted = time.monotonic()
        next_poll = 0.0
        shown: str | None = None
        cancel_sent: float | None = None
        while True:
            if self.registry.stop_requested(self.run_id):
                self.stopping.set()
            if cancel_sent is None and (self._cancelled() or self.stopping.is_set()):
                why = "cancel requested" if self.cancel.is_set() else "worker stopping"
                log.info("run %s: %s; scancel %s", self.run_id, why, job.job_id)
                self._note(f"{why}: scancel {job.job_id}")
                try:
                    job.cancel(self.settings.cancel_grace_seconds)
                except commands.SlurmError as exc:
                    log.error("run %s: scancel %s failed: %s", self.run_id, job.job_id, exc)
                cancel_sent = time.monotonic()
            now = time.monotonic()
            if now >= next_poll:
                next_poll = now + self.settings.slurm_poll_seconds
                info = job.info()
                if info is None:
                    if job.forgotten:  # gone from Slurm: judged by its last state / end event
                        return job.last
                    continue  # Slurm did not answer this time: ask again
                if info.phase is Phase.done:
                    return info
                if cancel_sent is not None:
                    if now - cancel_sent > CANCEL_WAIT_SECONDS:
                        return info
                    continue
                text = states.describe(info)
                if info.phase is Phase.pending and info.reason in states.NEVER_STARTS:
                    self._note(f"{text}: it can never start; cancelling it")
                    self.registry.request_cancel(self.run_id)
                    self._never = states.NEVER_STARTS[info.reason]
                    continue
                if text != shown:
                    shown = text
                    if info.phase is Phase.running and self.reported == "starting":
                        waited = time.monotonic() - submitted
                        self._note(f"{text} ({waited:.2f}s after sbatch)")
                        log.info(
                            "run %s: Slurm job %s RUNNING %.2fs after sbatch",
                            self.run_id,
                            job.job_id,
                            waited,
                        )
                        self._tell("running", text)
                    else:
                        self._note(text)
                        self._tell(self.reported, text)
            time.sleep(0.05)

    _never: str | None = None

    def _resume_hint(self) -> str:
        """Where a resume would start, named only when there is a checkpoint to start from."""
        saved = sorted(
            (
                p
                for p in self.paths.output_dir.glob("checkpoint-*")
                if (p / "trainer_state.json").exists()
            ),
            key=lambda p: (
                int(p.name.rsplit("-", 1)[1]) if p.name.rsplit("-", 1)[1].isdigit() else -1
            ),
        )
        if not saved:
            return "; no checkpoint was saved to resume from"
        return f"; resume from {saved[-1].name}"

    def _judge(
        self, job: SlurmJob, info: JobInfo | None, shipper: RunShipper, n: int
    ) -> tuple[Outcome, bool]:
        """The run's outcome after job ``n``; True: resubmit to resume from the last checkpoint."""
        state = info.state if info else "UNKNOWN"
        self._note(
            f"Slurm job {job.job_id} ended: {state}"
            + (f", exit code {info.exit_code}" if info and info.exit_code is not None else "")
        )
        end = shipper.end_event
        if self._never:
            reason = f"Slurm job {job.job_id}: {self._never}"
            return Outcome.failed(FailureKind.slurm_never_started, reason), False
        if self.stopping.is_set() and not self.cancel.is_set():
            # Interrupted, not broken: the API restarts it from its newest checkpoint.
            reason = "the worker stopped during the run; resume it from a checkpoint"
            return Outcome.failed(FailureKind.worker_stopped, reason), False
        if self.cancel.is_set():
            return Outcome.cancelled(), False
        if end is not None and end.get("status") == "succeeded":
            return outcome_from(end, 0, False, self.log_path), False
        # The job often ends itself after TERM (a checkpoint saved, exit 75): FAILED, not
        # TIMEOUT/PREEMPTED. The batch shell's marker and PreemptTime tell what happened.
        signalled = script.term_marker(self._slurm_dir, job.job_id).exists()
        preempted = info is not None and info.preempted
        interrupted = state in states.INTERRUPTED_STATES or (
            (signalled or preempted) and state in ("COMPLETED", "FAILED", "UNKNOWN")
        )
        if interrupted:
            grace = self.settings.slurm_signal_grace_seconds
            kind = FailureKind.slurm_time_limit
            if info and state in states.INTERRUPTED_STATES:
                why = states.final_reason(info) or state
                kind = states.final_kind(state)
            elif preempted:
                why = f"Slurm job {job.job_id} was preempted"
                kind = FailureKind.slurm_preempted
            elif info and info.near_limit(grace):
                why = f"Slurm job {job.job_id} reached its time limit"
            else:
                why = f"Slurm job {job.job_id} was signalled (time limit or preemption)"
            if n < self.settings.slurm_max_requeues:
                self._note(f"{why}: resubmitting to resume from the last checkpoint")
                return Outcome.failed(kind, why), True
            return Outcome.failed(
                kind, f"{why} ({n + 1} jobs){self._resume_hint()}; or a longer launch.time_limit"
            ), False
        if state == "CANCELLED":
            outside = f"Slurm job {job.job_id} was cancelled outside the panel (scancel)"
            return Outcome.cancelled(outside, FailureKind.slurm_cancelled), False
        final = states.final_reason(info) if info else None
        if info and final:
            return Outcome.failed(states.final_kind(info.state), final), False
        code = info.exit_code if info and info.exit_code is not None else 1
        if info is None and end is None:
            vanished = f"Slurm job {job.job_id} vanished without a result"
            return Outcome.failed(FailureKind.slurm_vanished, vanished), False
        return outcome_from(end, code, False, self.log_path), False

    def _fail_on_error(self, exc: Exception, shipper: RunShipper) -> Outcome:
        if self.job is not None:
            try:
                commands.scancel(self.job.job_id)
            except commands.SlurmError as err:
                log.error("run %s: scancel %s failed: %s", self.run_id, self.job.job_id, err)
        return super()._fail_on_error(exc, shipper)
