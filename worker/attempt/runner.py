"""One attempt of one run, from claim to final status (called by the ``run_training`` task).

Steps: claim → register the attempt and ship what earlier attempts left → the executor
(``worker.attempt.executors``: this box or Slurm) prepares, launches and watches the training
while the shipper sends its events and log → drain the shipper → report the outcome.
"""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import threading
from types import FrameType

import httpx

from cpt_contract.outcomes import FailureKind, Outcome
from cpt_contract.protocol import CancelAnswer, ClaimOut
from cpt_contract.run_paths import RunPaths
from cpt_contract.settings import Settings
from worker.attempt import instance
from worker.attempt.api_client import ApiUnavailable, Conflict, WorkerApi, shared_api
from worker.attempt.context import AttemptContext, Refused
from worker.attempt.executors import Executor, executor_for
from worker.attempt.registry import Registry, check_run_id, worker_name
from worker.attempt.shipper import RunShipper, offset_after_seq, ship_leftovers

log = logging.getLogger(__name__)


class RunAttempt:
    def __init__(
        self, settings: Settings, api: WorkerApi, run_id: str, attempt: int, executor: Executor
    ) -> None:
        self.ctx = AttemptContext(
            settings=settings,
            api=api,
            run_id=check_run_id(run_id),
            attempt=attempt,
            registry=Registry.for_settings(settings),
            paths=RunPaths.of(settings.runs_dir, run_id),
        )
        self.executor = executor

    def stop(self) -> None:
        """The worker is shutting down (SIGTERM to the task): stop the run, report it."""
        self.ctx.stopping.set()
        self.ctx.wake()

    def _report(self, outcome: Outcome) -> None:
        ctx = self.ctx
        # While the worker stops, don't hold its shutdown for long if the API is gone too.
        retry_for = 15.0 if ctx.stopping.is_set() else 600.0
        try:
            ctx.api.status(
                ctx.run_id,
                ctx.attempt,
                outcome.status,
                reason=outcome.reason,
                retry_for=retry_for,
                kind=outcome.kind,
            )
        except (Conflict, ApiUnavailable) as exc:
            log.error("run %s: could not report %s: %s", ctx.run_id, outcome.status, exc)

    def execute(self) -> Outcome | None:
        """Run the attempt; None when the claim was refused (cancelled meanwhile or a repeat)."""
        ctx = self.ctx
        try:
            claim = ctx.api.claim(
                ctx.run_id, ctx.attempt, worker_name(ctx.settings), instance.current()
            )
        except Conflict as exc:
            log.info("run %s attempt %s: not claimed (%s); dropping", ctx.run_id, ctx.attempt, exc)
            return None
        ctx.registry.register(ctx.run_id, ctx.attempt)
        self._ship_leftovers()
        events = ctx.paths.events
        start = events.stat().st_size if events.exists() else 0
        return self._run(claim, self._shipper(start, 0))

    def adopt(self, job: str) -> Outcome | None:
        """Take back the attempt's Slurm job after this worker restarted: re-take the lease,
        ship on from where the API has the events and log, watch the job to its end. None
        when the attempt is not ours to take (superseded: its job is cancelled)."""
        from worker.attempt.slurm.executor import SlurmExecutor

        ctx, executor = self.ctx, self.executor
        if not isinstance(executor, SlurmExecutor):
            raise TypeError("only a Slurm job outlives its worker to be adopted")
        name = worker_name(ctx.settings)
        try:
            answer = ctx.api.adopt(ctx.run_id, ctx.attempt, name, instance.current(), job)
        except Conflict as exc:
            log.warning(
                "run %s: Slurm job %s is not adopted (%s); cancelling it", ctx.run_id, job, exc
            )
            executor.abort_job(job)
            return None
        except httpx.HTTPStatusError as exc:  # another worker's run, or unknown here
            log.warning("run %s: Slurm job %s left alone (%s)", ctx.run_id, job, exc)
            return None
        ctx.registry.register(ctx.run_id, ctx.attempt, slurm_job=job)
        try:
            start = int(
                json.loads(ctx.paths.shipped_state(ctx.attempt).read_text())["events_offset"]
            )
        except (OSError, ValueError, KeyError, TypeError):
            start = 0
        events_offset = offset_after_seq(ctx.paths.events, start, answer.events_seq)
        shipper = self._shipper(events_offset, answer.log_bytes)
        ctx.note(f"worker restarted: adopted Slurm job {job} (attempt {ctx.attempt})")
        log.info("run %s: adopted Slurm job %s (attempt %s)", ctx.run_id, job, ctx.attempt)
        executor.adopted = job
        return self._run(answer, shipper)

    def _shipper(self, events_offset: int, log_offset: int) -> RunShipper:
        ctx = self.ctx
        shipper = RunShipper(
            ctx.api,
            ctx.run_id,
            ctx.attempt,
            ctx.paths.events,
            ctx.log_path,
            events_offset=events_offset,
            log_offset=log_offset,
            state_path=ctx.paths.shipped_state(ctx.attempt),
            on_cancel=ctx.request_cancel,
            keepalive=self._keepalive,
        )
        # Where this attempt's data starts, saved at once: a worker that takes the attempt
        # back after a crash ships on from there (``adopt``), not from an earlier attempt's.
        ctx.paths.shipped_state(ctx.attempt).parent.mkdir(parents=True, exist_ok=True)
        shipper.save_state()
        return shipper

    def _run(self, claim: ClaimOut, shipper: RunShipper) -> Outcome:
        ctx = self.ctx
        try:
            try:
                outcome = self.executor.run(ctx, claim, shipper)
            except Refused as exc:
                ctx.note(f"not started: {exc}")
                shipper.drain()
                outcome = Outcome.failed(FailureKind.refused, str(exc))
            except Exception as exc:  # a worker bug must not leave the run "starting" forever
                log.exception("run %s attempt %s: worker error", ctx.run_id, ctx.attempt)
                outcome = self._fail_on_error(exc, shipper)
            log.info(
                "run %s attempt %s: %s (%s)",
                ctx.run_id,
                ctx.attempt,
                outcome.status,
                outcome.reason,
            )
            self._report(outcome)
            return outcome
        finally:
            self.executor.release(ctx)
            ctx.registry.unregister(ctx.run_id)

    def _keepalive(self) -> CancelAnswer:
        return self.executor.keepalive(self.ctx)

    def _ship_leftovers(self) -> None:
        ctx = self.ctx
        if ctx.attempt == 1:
            return
        try:
            sent = ship_leftovers(ctx.api, ctx.run_id, ctx.paths, ctx.attempt)
        except OSError as exc:  # best effort: the new attempt must start regardless
            log.warning("run %s: earlier attempts' leftovers not shipped: %s", ctx.run_id, exc)
            return
        if sent:
            log.info("run %s: shipped %d events an earlier attempt left", ctx.run_id, sent)

    def _fail_on_error(self, exc: Exception, shipper: RunShipper) -> Outcome:
        reason = f"worker error: {type(exc).__name__}: {' '.join(str(exc).split())}"[:300]
        with contextlib.suppress(Exception):
            self.executor.abort(self.ctx)
        with contextlib.suppress(Exception):
            self.ctx.note(reason)
            shipper.drain()
        return Outcome.failed(FailureKind.error, reason)


def run_attempt(settings: Settings, run_id: str, attempt: int) -> Outcome | None:
    """Entry point of the task: SIGTERM to the pool process (worker shutdown) stops the run cleanly."""
    api = shared_api(settings.effective_api_url, settings.secret("worker_token"))
    runner = RunAttempt(settings, api, run_id, attempt, executor_for(settings))

    def _on_term(signum: int, frame: FrameType | None) -> None:
        runner.stop()

    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _on_term) if in_main_thread else None
    try:
        return runner.execute()
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


def adopt_attempt(settings: Settings, run_id: str, attempt: int, job: str) -> Outcome | None:
    """A restarted Slurm worker's process for one of its jobs still in the queue (``worker.agent
    .boot.adopt_jobs``): take the attempt back and watch it, as ``run_attempt`` would have."""
    from worker.attempt.slurm.executor import SlurmExecutor

    api = shared_api(settings.effective_api_url, settings.secret("worker_token"))
    runner = RunAttempt(settings, api, run_id, attempt, SlurmExecutor())

    def _on_term(signum: int, frame: FrameType | None) -> None:
        runner.stop()

    previous = signal.signal(signal.SIGTERM, _on_term)
    try:
        return runner.adopt(job)
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
