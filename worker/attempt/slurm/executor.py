"""The Slurm executor: submit the attempt's training as a batch job, watch it, cancel it,
resubmit it, and judge its end.

The job writes its output into the attempt's log (``--output``, appended) and its events into
the run's output dir, both on the shared filesystem; ``RunAttempt``'s shipper sends them as for
a local run. A job ended by its time limit or by preemption (Slurm sent TERM first: training
saved a checkpoint) is resubmitted with ``--resume_from_checkpoint last``, up to
``CPT_SLURM_MAX_REQUEUES`` times, within the same attempt (``judgement.judge`` decides).
"""

from __future__ import annotations

import logging
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
from worker.attempt.context import AttemptContext, Refused
from worker.attempt.environment import PRETRAIN, base_env, cpu_env, tracker_env
from worker.attempt.files import last_error_line
from worker.attempt.registry import worker_name
from worker.attempt.shipper import RunShipper, ShipperThread
from worker.attempt.slurm import commands, script, states
from worker.attempt.slurm.cluster import cluster_report
from worker.attempt.slurm.judgement import Decision, JobEnd, judge, resume_hint
from worker.attempt.slurm.states import JobInfo, Phase

log = logging.getLogger(__name__)

#: How long a cancelled job may take to leave the queue before the worker stops waiting.
CANCEL_WAIT_SECONDS = 120.0


class SlurmJob:
    """A submitted batch job: its state as Slurm reports it, and scancel."""

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        self.last: JobInfo | None = None
        #: Slurm answered that it does not know the job (purged after MinJobAge, or never
        #: registered), as opposed to not answering at all.
        self.forgotten = False

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

    def cancel(self) -> None:
        commands.scancel(self.job_id)


def job_env(use_cpu: bool, roots: Roots) -> dict[str, str]:
    """The environment sbatch exports into the job (``--export=ALL``): ``base_env`` less the
    worker's own Slurm variables. TERM needs no switch: pretrain.py always saves a checkpoint at
    the next step boundary on it (``worker/training/preemption.py``)."""
    env = base_env(roots, drop_prefixes=("SLURM_",))
    if use_cpu:
        cpu_env(env)
    else:
        env.pop("CUDA_VISIBLE_DEVICES", None)  # Slurm sets it per allocation
    return env


def newest_checkpoint(output_dir: Path) -> str | None:
    """The newest complete ``checkpoint-N`` in the output dir (its trainer state written)."""
    saved = [
        p
        for p in output_dir.glob("checkpoint-*")
        if p.name.rsplit("-", 1)[1].isdigit() and (p / "trainer_state.json").exists()
    ]
    return max(saved, key=lambda p: int(p.name.rsplit("-", 1)[1])).name if saved else None


class SlurmExecutor:
    def __init__(self) -> None:
        self.job: SlurmJob | None = None
        #: The status the API was last told (keep-alives repeat it; it never moves backwards).
        self.reported = "starting"
        #: What the job's steps run (launcher and training argv), reported with the status.
        self.argv: list[str] | None = None
        #: Why the job can never start (a pending reason that never clears), once seen.
        self.never: str | None = None
        #: A job of this attempt submitted before the worker restarted: watched, not submitted.
        self.adopted: str | None = None

    # --- the protocol ----------------------------------------------------------------------
    def run(self, ctx: AttemptContext, claim: ClaimOut, shipper: RunShipper) -> Outcome:
        config, use_cpu, ds_config = self._prepare(ctx, claim)
        # The trackers' settings: in the environment sbatch exports into the job, only there.
        self.tracker_env = tracker_env(claim, config, ctx.paths.output_dir)
        ctx.note(f"attempt {ctx.attempt} on {worker_name(ctx.settings)} (Slurm executor)")
        thread = ShipperThread(shipper, ctx.settings.ship_interval_seconds)
        thread.start()
        resume = claim.resume_from
        tries: list[Try] = []
        # An adopted job is the attempt's newest: the count of its job scripts goes on from it.
        first = len(list(slurm_dir(ctx).glob(f"attempt-{ctx.attempt}-job-*.sbatch"))) - 1
        first = max(0, first) if self.adopted else 0
        try:
            for n in range(first, ctx.settings.slurm_max_requeues + 1):
                if ctx.cancelled():
                    return Outcome.cancelled()
                shipper.end_event = None  # the verdict is this job's own end event
                if self.adopted is not None and n == first:
                    job = self.job = SlurmJob(self.adopted)
                    resume = LAST_CHECKPOINT  # if it is resubmitted
                else:
                    job = self._submit(ctx, config, use_cpu, ds_config, resume, n)
                info = self._watch_job(ctx, job)
                shipper.drain()
                decision = self._judge(ctx, job, info, shipper, n)
                if not decision.resubmit:
                    return decision.outcome
                outcome = decision.outcome
                # The same retry policy as the API's automatic resume: no futile resubmits.
                tries.append(Try(outcome.kind, shipper.trained_step))
                if why := why_not_retry(tries, ctx.settings.futile_attempts):
                    ctx.note(f"not resubmitted: {why}")
                    hint = resume_hint(newest_checkpoint(ctx.paths.output_dir))
                    return Outcome.failed(
                        outcome.kind or FailureKind.error,
                        f"{outcome.reason}; not resubmitted: {why}{hint}",
                    )
                resume = LAST_CHECKPOINT
            raise AssertionError("unreachable")  # the last round never resubmits
        finally:
            thread.stop()
            shipper.drain()

    def keepalive(self, ctx: AttemptContext) -> CancelAnswer:
        if self.job is None:
            return CancelAnswer(cancel_requested=False)
        return ctx.api.status(ctx.run_id, ctx.attempt, self.reported, retry_for=0)

    def abort(self, ctx: AttemptContext) -> None:
        if self.job is not None:
            try:
                self.job.cancel()
            except commands.SlurmError as err:
                log.error("run %s: scancel %s failed: %s", ctx.run_id, self.job.job_id, err)

    def release(self, ctx: AttemptContext) -> None:
        """Nothing to free on this box: the job's processes are Slurm's."""

    def abort_job(self, job_id: str) -> None:
        """Cancel a job of a superseded attempt (found after a restart)."""
        try:
            commands.scancel(job_id)
        except commands.SlurmError as exc:
            log.error("scancel %s failed: %s", job_id, exc)

    # --- preparation -----------------------------------------------------------------------
    def _prepare(self, ctx: AttemptContext, claim: ClaimOut) -> tuple[RunConfig, bool, str | None]:
        settings = ctx.settings
        config, ds_config = ctx.write_run_files(claim, slurm_dir(ctx))
        use_cpu = bool(settings.use_cpu) or not settings.slurm_gpus
        problems = fit_problems(
            config.training,
            config.launch,
            cpu_only=use_cpu,
            gpu_count=0,
            cpu_count=None,
            executor="slurm",
        )
        # Checked again against a fresh sinfo: the API's view is a heartbeat old.
        cluster = cluster_report(settings)
        if cluster.error:
            raise Refused(f"Slurm is not reachable from this worker: {cluster.error}")
        problems += slurm_problems(config.launch, cluster)
        if problems:
            raise Refused(problems[0][1])
        return config, use_cpu, ds_config

    def _submit(
        self,
        ctx: AttemptContext,
        config: RunConfig,
        use_cpu: bool,
        ds_config: str | None,
        resume: str | None,
        n: int,
    ) -> SlurmJob:
        settings = ctx.settings
        launch = LaunchContext(
            output_dir=str(ctx.paths.output_dir),
            data_cache_dir=str(ctx.cache_dir),
            deepspeed_config=ds_config,
            use_cpu=use_cpu,
            python=settings.slurm_python or sys.executable,
            script=str(PRETRAIN),
            resume_from_checkpoint=resume,
            run_id=ctx.run_id,
        )
        spec = script.JobSpec(
            run_id=ctx.run_id,
            attempt=ctx.attempt,
            python=launch.python,
            script=launch.script,
            run_dir=ctx.paths.run_dir,
            log_path=ctx.log_path,
            marker_dir=slurm_dir(ctx),
            use_cpu=use_cpu,
            partition=settings.slurm_partition,
            account=settings.slurm_account,
            qos=settings.slurm_qos,
            time_limit=settings.slurm_time_limit,
            signal_grace_seconds=settings.slurm_signal_grace_seconds,
            extra_sbatch=list(settings.slurm_extra_sbatch),
        )
        options = script.sbatch_options(config, spec)
        path = slurm_dir(ctx) / f"attempt-{ctx.attempt}-job-{n + 1}.sbatch"
        path.write_text(script.render(config, launch, spec, options))
        if resume:
            ctx.note(f"resuming from {resume}")
        ctx.note("$ " + display_command(["sbatch", *options, str(path)]))
        steps = [*script.launcher_argv(config, spec), "--rdzv_endpoint", "<node 0>"]
        training = script.training_argv(config, launch, spec)
        ctx.note("srun: " + display_command(steps) + " " + display_command(training))
        self.argv = [*steps, *training]
        try:
            env = {**job_env(use_cpu, settings.roots), **getattr(self, "tracker_env", {})}
            job_id = commands.sbatch(options, path, env)
        except commands.SlurmError as exc:
            raise Refused(f"sbatch refused the job: {exc}") from exc
        ctx.note(f"submitted Slurm job {job_id} (attempt {ctx.attempt}, job {n + 1})")
        ctx.registry.register(ctx.run_id, ctx.attempt, slurm_job=job_id)
        self.job = SlurmJob(job_id)
        return self.job

    # --- reporting -------------------------------------------------------------------------
    def _tell(self, ctx: AttemptContext, status: str, reason: str | None) -> None:
        try:
            answer = ctx.api.status(
                ctx.run_id,
                ctx.attempt,
                status,
                reason=reason,
                argv=self.argv if status in ("starting", "running") else None,
                retry_for=30,
            )
        except Conflict as exc:
            log.warning("run %s: %s refused (%s); stopping", ctx.run_id, status, exc)
            ctx.cancel.set()
            return
        except ApiUnavailable as exc:
            log.warning("run %s: could not report %s: %s", ctx.run_id, status, exc)
            return
        self.reported = status
        if answer.cancel_requested:
            ctx.cancel.set()

    # --- watching --------------------------------------------------------------------------
    def _watch_job(self, ctx: AttemptContext, job: SlurmJob) -> JobInfo | None:
        """Poll until the job ended; report pending reasons and RUNNING; scancel on cancel."""
        settings = ctx.settings
        submitted = time.monotonic()
        next_poll = 0.0
        shown: str | None = None
        cancel_sent: float | None = None
        while True:
            ctx.stop_requested()
            if cancel_sent is None and (ctx.cancelled() or ctx.stopping.is_set()):
                why = "cancel requested" if ctx.cancel.is_set() else "worker stopping"
                log.info("run %s: %s; scancel %s", ctx.run_id, why, job.job_id)
                ctx.note(f"{why}: scancel {job.job_id}")
                try:
                    job.cancel()
                except commands.SlurmError as exc:
                    log.error("run %s: scancel %s failed: %s", ctx.run_id, job.job_id, exc)
                cancel_sent = time.monotonic()
            now = time.monotonic()
            if now >= next_poll:
                next_poll = now + settings.slurm_poll_seconds
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
                    ctx.note(f"{text}: it can never start; cancelling it")
                    ctx.registry.request_cancel(ctx.run_id)
                    self.never = states.NEVER_STARTS[info.reason]
                    continue
                if text != shown:
                    shown = text
                    if info.phase is Phase.running and self.reported == "starting":
                        waited = time.monotonic() - submitted
                        ctx.note(f"{text} ({waited:.2f}s after sbatch)")
                        log.info(
                            "run %s: Slurm job %s RUNNING %.2fs after sbatch",
                            ctx.run_id,
                            job.job_id,
                            waited,
                        )
                        self._tell(ctx, "running", text)
                    else:
                        ctx.note(text)
                        self._tell(ctx, self.reported, text)
            time.sleep(0.05)

    def _judge(
        self, ctx: AttemptContext, job: SlurmJob, info: JobInfo | None, shipper: RunShipper, n: int
    ) -> Decision:
        state = info.state if info else "UNKNOWN"
        ctx.note(
            f"Slurm job {job.job_id} ended: {state}"
            + (f", exit code {info.exit_code}" if info and info.exit_code is not None else "")
        )
        end = JobEnd(
            job_id=job.job_id,
            info=info,
            end_event=shipper.end_event,
            signalled=script.term_marker(slurm_dir(ctx), job.job_id).exists(),
            never_starts=self.never,
            cancelled=ctx.cancel.is_set(),
            stopping=ctx.stopping.is_set(),
            error_line=last_error_line(ctx.log_path),
            checkpoint=newest_checkpoint(ctx.paths.output_dir),
        )
        settings = ctx.settings
        decision = judge(end, n, settings.slurm_max_requeues, settings.slurm_signal_grace_seconds)
        if decision.note:
            ctx.note(decision.note)
        return decision


def slurm_dir(ctx: AttemptContext) -> Path:
    """Where the attempt's job scripts and the batch shell's markers live."""
    return ctx.paths.run_dir / "slurm"
