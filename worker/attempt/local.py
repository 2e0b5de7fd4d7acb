"""The local executor: torchrun on this box, in its own session, watched until it ends.

Preparation (this box's GPUs or CPU, the request checked against them, GPUs leased) → launch
→ a watch loop that tracks every process of the attempt, keeps the fence touched, and stops the
training on a cancel, a worker stop, a stall or an API that records nothing → the outcome from
the training's end event or exit, with the first failing rank named.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time

from cpt_contract.fit import fit_problems
from cpt_contract.outcomes import FailureKind, Outcome
from cpt_contract.protocol import CancelAnswer, ClaimOut
from cpt_contract.runconfig.argv import LaunchContext, display_command, torchrun_argv
from cpt_contract.runconfig.schema import RunConfig
from worker import fence
from worker.attempt import gpu, launcher
from worker.attempt.api_client import Conflict
from worker.attempt.context import AttemptContext, Refused
from worker.attempt.environment import PRETRAIN, child_env, tracker_env
from worker.attempt.files import last_end_event
from worker.attempt.outcome import explain, outcome_from
from worker.attempt.proctree import ProcessTree
from worker.attempt.registry import worker_name
from worker.attempt.shipper import RunShipper, ShipperThread
from worker.attempt.stall import dump_stacks, stalled_reason
from worker.attempt.waker import Waker

log = logging.getLogger(__name__)


def cpu_max_procs() -> int:
    # gloo ranks on CPU each need a core to make progress; more than the cores just thrash.
    return max(1, os.cpu_count() or 1)


def check_fits(config: RunConfig, use_cpu: bool, gpu_count: int) -> None:
    """Raise ``Refused`` with a clear reason when the run cannot run on this box (the same
    rules the API checks against the heartbeats before queuing: ``cpt_contract.fit``)."""
    problems = fit_problems(
        config.training,
        config.launch,
        cpu_only=use_cpu,
        gpu_count=gpu_count,
        cpu_count=cpu_max_procs(),
    )
    if problems:
        raise Refused(problems[0][1])


class LocalExecutor:
    def __init__(self) -> None:
        self.lease: gpu.GpuLease | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.tree: ProcessTree | None = None

    # --- the protocol ----------------------------------------------------------------------
    def run(self, ctx: AttemptContext, claim: ClaimOut, shipper: RunShipper) -> Outcome:
        proc = self._prepare_and_launch(ctx, claim)
        if proc is None:  # cancelled before the launch (e.g. while waiting for GPUs)
            return Outcome.cancelled()
        return self._watch(ctx, proc, shipper)

    def keepalive(self, ctx: AttemptContext) -> CancelAnswer:
        """Repeat ``running`` (harmless per the contract); the answer carries cancel_requested."""
        if self.proc is None or self.proc.poll() is not None:
            return CancelAnswer(cancel_requested=False)
        return ctx.api.status(ctx.run_id, ctx.attempt, "running", pid=self.proc.pid, retry_for=0)

    def abort(self, ctx: AttemptContext) -> None:
        if self.tree is not None:
            self.tree.stop(ctx.settings.cancel_grace_seconds, signal.SIGUSR2)

    def release(self, ctx: AttemptContext) -> None:
        # The GPUs are free only once no process of the attempt is left to hold them.
        if self.tree is not None:
            self.tree.stop(ctx.settings.cancel_grace_seconds, signal.SIGKILL)
        if self.lease is not None:
            self.lease.release()

    # --- launch ----------------------------------------------------------------------------
    def _prepare_and_launch(
        self, ctx: AttemptContext, claim: ClaimOut
    ) -> subprocess.Popen[bytes] | None:
        settings, paths = ctx.settings, ctx.paths
        config, ds_config = ctx.write_run_files(claim)

        gpus = gpu.list_gpus()
        if settings.use_cpu is False and not gpus:
            raise Refused("CPT_USE_CPU=false but no GPU is visible on this worker")
        use_cpu = bool(settings.use_cpu) or not gpus
        check_fits(config, use_cpu, len(gpus))

        # ``last`` or ``checkpoint-N`` goes through as it is: only pretrain.py decides which
        # checkpoint is complete (worker/training/checkpoints.py), so nothing here guesses.
        checkpoint = claim.resume_from

        if not use_cpu and not self._wait_for_gpus(ctx, gpus, config.launch.nproc_per_node):
            return None  # cancelled while waiting for GPUs
        launch = LaunchContext(
            output_dir=str(paths.output_dir),
            data_cache_dir=str(ctx.cache_dir),
            deepspeed_config=ds_config,
            use_cpu=use_cpu,
            python=sys.executable,
            script=str(PRETRAIN),
            resume_from_checkpoint=checkpoint,
            master_port=launcher.free_port(),
            node_rank=0 if config.launch.nnodes > 1 else None,
            run_id=ctx.run_id,
        )
        argv = torchrun_argv(config, launch)
        device = (
            "CPU" if use_cpu else f"GPU {self.lease.cuda_visible_devices if self.lease else ''}"
        )
        ctx.note(f"attempt {ctx.attempt} on {worker_name(settings)} ({device})")
        if checkpoint:
            ctx.note(f"resuming from {checkpoint}")
        ctx.note("$ " + display_command(argv))
        env = child_env(
            use_cpu,
            config.launch.nproc_per_node,
            settings.worker_concurrency,
            self.lease,
            settings.roots,
        )
        env.update(tracker_env(claim, config, paths.output_dir))
        if ctx.cancelled():
            return None
        # torchrun's own failure lands here (errors.record); one file per attempt.
        env["TORCHELASTIC_ERROR_FILE"] = str(ctx.log_path.with_suffix(".error.json"))
        # The ranks stop, saving nothing, if this worker stops watching them (frozen).
        fence.touch(paths.fence(ctx.attempt))
        env[fence.FILE_ENV] = str(paths.fence(ctx.attempt))
        env[fence.SECONDS_ENV] = str(settings.worker_lost_seconds * fence.SHARE_OF_LOST_WINDOW)
        ctx.started = time.time()
        proc = self.proc = launcher.start(argv, ctx.log_path, env, cwd=paths.run_dir)
        self.tree = ProcessTree(proc.pid)
        ctx.registry.register(ctx.run_id, ctx.attempt, pgid=proc.pid, procs=self.tree.as_record())
        try:
            answer = ctx.api.status(ctx.run_id, ctx.attempt, "running", pid=proc.pid, argv=argv)
        except Conflict as exc:
            # The API no longer wants this attempt (e.g. marked lost): stop at once.
            log.warning("run %s: running refused (%s); stopping", ctx.run_id, exc)
            ctx.cancel.set()
        else:
            if answer.cancel_requested:
                ctx.cancel.set()
        return proc

    def _wait_for_gpus(self, ctx: AttemptContext, gpus: list[gpu.GpuInfo], count: int) -> bool:
        """Wait until ``count`` GPUs are free (other runs on the box hold them); False if cancelled."""
        announced = False
        while not ctx.cancelled():
            self.lease = gpu.try_allocate(ctx.registry.gpu_lock_dir, gpus, count, ctx.run_id)
            if self.lease is not None:
                return True
            if not announced:
                ctx.note(f"waiting for {count} free GPU(s) on this worker")
                announced = True
            time.sleep(1.0)
        return False

    # --- watch -----------------------------------------------------------------------------
    def _unrecorded(self, ctx: AttemptContext) -> str | None:
        """Why the API has recorded nothing of this run for ``unrecorded_seconds``, or None."""
        seconds, problem = ctx.api.unrecorded()
        if seconds < ctx.settings.unrecorded_seconds:
            return None
        return f"the API could not record this run for {seconds:.0f} s ({problem})"

    def _track(self, ctx: AttemptContext) -> None:
        """Record new processes of the attempt (ranks appear a second or two after torchrun)."""
        if self.tree is not None and self.tree.refresh():
            ctx.registry.register(
                ctx.run_id, ctx.attempt, pgid=self.tree.root_pid, procs=self.tree.as_record()
            )

    def _watch(
        self, ctx: AttemptContext, proc: subprocess.Popen[bytes], shipper: RunShipper
    ) -> Outcome:
        tree = self.tree or ProcessTree(proc.pid)
        thread = ShipperThread(shipper, ctx.settings.ship_interval_seconds)
        thread.start()
        ctx.waker = waker = Waker(proc.pid)
        try:
            return self._watch_loop(ctx, proc, shipper, tree, thread, waker)
        finally:
            ctx.waker = None
            waker.close()

    def _watch_loop(
        self,
        ctx: AttemptContext,
        proc: subprocess.Popen[bytes],
        shipper: RunShipper,
        tree: ProcessTree,
        thread: ShipperThread,
        waker: Waker,
    ) -> Outcome:
        settings, fence_file = ctx.settings, ctx.paths.fence(ctx.attempt)
        cancelled = stopped = False
        stall: str | None = None
        unrecorded: str | None = None
        next_track = 0.0
        while proc.poll() is None:
            if time.monotonic() >= next_track:
                self._track(ctx)
                fence.touch(fence_file)  # still watching
                next_track = time.monotonic() + 0.5
                stall = stalled_reason(shipper, settings.stall_seconds)
                if stall is not None:
                    log.warning("run %s: %s; dumping stacks and stopping", ctx.run_id, stall)
                    ctx.note(stall)
                    dump_stacks(tree, ctx.note)
                    tree.stop(settings.cancel_grace_seconds, signal.SIGUSR2)
                    break
                unrecorded = self._unrecorded(ctx)
                if unrecorded is not None:
                    # Training nobody can see (or stop) is worse than stopped training: save a
                    # checkpoint at the next step (SIGTERM) and end the attempt.
                    log.warning("run %s: %s; stopping the training", ctx.run_id, unrecorded)
                    ctx.note(f"{unrecorded}: stopping the training (checkpoint first)")
                    with fence.kept(fence_file):
                        tree.stop(settings.stop_grace_seconds, signal.SIGTERM)
                    break
            ctx.stop_requested()
            if ctx.cancelled() or ctx.stopping.is_set():
                stopped = ctx.stopping.is_set() and not ctx.cancel.is_set()
                cancelled = not stopped
                why = "cancel requested" if cancelled else "worker stopping"
                log.info("run %s: %s; stopping %d process(es)", ctx.run_id, why, len(tree.alive()))
                # A cancel stops at once (SIGUSR2); a worker stop gives the ranks time to save
                # a checkpoint at the next step boundary (SIGTERM, worker.training.preemption).
                with fence.kept(fence_file):  # a save may take a while
                    took = tree.stop(
                        settings.cancel_grace_seconds if cancelled else settings.stop_grace_seconds,
                        signal.SIGUSR2 if cancelled else signal.SIGTERM,
                    )
                log.info("run %s: every process gone after %.2fs", ctx.run_id, took)
                break
            # Until the next tracking tick, the training's exit or a wake-up (cancel, stop):
            # two wake-ups a second instead of twenty (the registry's cancel and stop files,
            # written by the heartbeat and the worker's shutdown, are read at each).
            waker.wait(next_track - time.monotonic())
        returncode = proc.wait()
        # A rank may outlive torchrun (own session, hung): none may be left, whatever happened.
        tree.stop(settings.cancel_grace_seconds, signal.SIGKILL)
        thread.stop()
        if cancelled:  # the log ends with one plain line, not a launcher traceback
            ctx.note("cancelled on request")
        shipper.drain()
        if stall is not None:
            return Outcome.failed(FailureKind.stalled, stall)
        if unrecorded is not None:
            end = shipper.end_event or last_end_event(ctx.paths.events) or {}
            saved = f"; {end.get('reason')}" if end.get("status") == "preempted" else ""
            return Outcome.failed(FailureKind.unrecorded, f"stopped: {unrecorded}{saved}")
        if stopped:
            end = shipper.end_event or {}
            saved = f" ({end.get('reason')})" if end.get("status") == "preempted" else ""
            step = shipper.last_step if shipper.last_step is not None else "?"
            return Outcome.failed(
                FailureKind.worker_stopped, f"worker stopped: interrupted at step {step}{saved}"
            )
        outcome = outcome_from(shipper.end_event, returncode, cancelled, ctx.log_path)
        return explain(
            outcome, returncode, cancelled, ctx.log_path, ctx.paths.output_dir, ctx.started
        )
