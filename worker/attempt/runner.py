"""One attempt of one run, from claim to final status (called by the ``run_training`` task).

Steps: claim → prepare the run dir → decide CPU/GPU and check the request fits this box →
launch torchrun in its own process group → ship events/log while watching for cancel →
drain the shippers → report the final state with a one-line reason.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

from cpt_contract.fit import fit_problems
from cpt_contract.outcomes import END_EVENT_KINDS, EndStatus, FailureKind, Outcome
from cpt_contract.protocol import CancelAnswer, ClaimOut
from cpt_contract.roots import PathRefused, Roots, check_user_path
from cpt_contract.run_paths import RunPaths
from cpt_contract.runconfig.argv import LaunchContext, display_command, torchrun_argv
from cpt_contract.runconfig.schema import DEEPSPEED_FILES, RunConfig
from cpt_contract.settings import Settings
from worker import fence
from worker.attempt import gpu, instance, launcher, rootcause
from worker.attempt.api_client import ApiUnavailable, Conflict, WorkerApi, shared_api
from worker.attempt.proctree import ProcessTree
from worker.attempt.registry import Registry, check_run_id, worker_name
from worker.attempt.shipper import RunShipper, ShipperThread, ship_leftovers
from worker.attempt.stall import dump_stacks, stalled_reason
from worker.attempt.waker import Waker
from worker.exit_codes import EXIT_BAD_INPUT

log = logging.getLogger(__name__)

#: The repository root (this file is worker/attempt/runner.py).
ROOT = Path(__file__).resolve().parents[2]
DS_CONFIG_DIR = ROOT / "worker" / "ds_configs"
PRETRAIN = ROOT / "worker" / "pretrain.py"
#: Environment variables the training process must not inherit (it needs no API access).
SECRET_ENV = ("CPT_API_TOKEN", "CPT_WORKER_TOKEN", "CPT_HUB_TOKEN", "HF_TOKEN")


class Refused(Exception):
    """The run cannot start on this worker; the message is the user-facing reason."""


# --- decisions (pure, unit-testable) ---------------------------------------------------
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


def check_paths(config: RunConfig, roots: Roots) -> None:
    """Every path of the config, and every file inside it, must stay under this box's roots
    (checked again here: a link may have appeared since the API checked, and a remote box
    has its own roots)."""
    for key, raw in config.path_fields().items():
        try:
            check_user_path(raw, roots)
        except PathRefused as exc:
            raise Refused(f"{'.'.join(key)}: {exc}") from None


_ERROR_LINE = re.compile(r"([A-Za-z_][\w.]*(Error|Exception|Interrupt)\b.*|.*\berror\b.*)", re.I)


def last_error_line(log_path: Path, max_bytes: int = 64 * 1024) -> str | None:
    """The last line of the log that looks like an error (torchrun's summary skipped)."""
    try:
        with open(log_path, "rb") as f:
            f.seek(max(0, log_path.stat().st_size - max_bytes))
            lines = f.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        text = re.sub(r"^\[rank\d+\]:\s*", "", line.strip())
        if not text or "ChildFailedError" in text or text.startswith(("error_file", "traceback")):
            continue
        if _ERROR_LINE.fullmatch(text):
            return text[:300]
    return None


def outcome_from(
    end_event: dict[str, Any] | None, returncode: int, cancelled: bool, log_path: Path
) -> Outcome:
    """The attempt's end from the training's own end event, else from its exit."""
    if cancelled:
        return Outcome.cancelled()
    if end_event is not None:
        status = str(end_event.get("status", "failed"))
        reason = end_event.get("reason") or None
        if status == "succeeded":
            return Outcome.succeeded(reason)
        if status == "cancelled":
            return Outcome.cancelled(reason or "cancelled")
        kind = END_EVENT_KINDS.get(status)
        if kind is None:  # "failed": the exit code says whether the input was at fault
            kind = FailureKind.bad_input if returncode == EXIT_BAD_INPUT else FailureKind.error
        if reason and status not in ("failed", "preempted") and status not in reason.lower():
            reason = f"{status}: {reason}"  # the words people read keep the kind too
        if status == "preempted":  # SIGTERM from outside (scancel, a container stop)
            reason = f"preempted: {reason}"
        return Outcome.failed(kind, reason or status)
    if returncode == 0:
        return Outcome.succeeded()
    if returncode in (-9, 137):
        return Outcome.failed(
            FailureKind.crashed, "killed (SIGKILL: out of host memory, or stopped from outside)"
        )
    error = last_error_line(log_path)
    kind = FailureKind.bad_input if returncode == EXIT_BAD_INPUT else FailureKind.error
    return Outcome.failed(kind, f"exit code {returncode}" + (f": {error}" if error else ""))


def last_end_event(events_path: Path, max_bytes: int = 64 * 1024) -> dict[str, Any] | None:
    """The newest ``end`` event in events.jsonl (when the API could not be told of it)."""
    try:
        with open(events_path, "rb") as f:
            f.seek(max(0, events_path.stat().st_size - max_bytes))
            lines = f.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        with contextlib.suppress(ValueError):
            event = json.loads(line)
            if isinstance(event, dict) and event.get("kind") == "end":
                return event
    return None


#: A rank killed by one of these was interrupted (OOM killer, a crash, kill -9): worth a restart.
_CRASH_SIGNALS = ("SIGKILL", "SIGSEGV", "SIGBUS", "SIGABRT", "SIGTERM", "SIGHUP")


def explain(
    outcome: Outcome,
    returncode: int,
    cancelled: bool,
    log_path: Path,
    output_dir: Path,
    since: float,
) -> Outcome:
    """Name the first failing rank (torchrun's root cause), not the secondary error rank 0 saw."""
    if cancelled or returncode == 0 or outcome.status == EndStatus.succeeded:
        return outcome
    if outcome.kind in (
        FailureKind.diverged,
        FailureKind.oom,
        FailureKind.disk_full,
        FailureKind.preempted,
    ):
        return outcome  # rank 0 knew exactly why
    root = rootcause.from_log(log_path)
    if root is None or (root.rank == 0 and root.signal is None and outcome.status == "failed"):
        return outcome
    reason = root.describe(rootcause.rank_note(output_dir, root.rank, since))
    if root.signal in _CRASH_SIGNALS:
        return Outcome.failed(FailureKind.crashed, reason)
    return Outcome.failed(outcome.kind or FailureKind.error, reason)


def child_env(
    use_cpu: bool, nproc: int, concurrency: int, lease: gpu.GpuLease | None, roots: Roots
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SECRET_ENV}
    # The readers check every file they open against this box's roots (``open_regular``).
    env.update(roots.env())
    env["PYTHONUNBUFFERED"] = "1"
    # The script imports worker.* modules: make the repo importable whatever the cwd.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    if use_cpu:
        env["DS_ACCELERATOR"] = "cpu"
        env["CUDA_VISIBLE_DEVICES"] = ""  # CPU forced on a GPU box: keep the GPUs out of it
    elif lease is not None:
        env["CUDA_VISIBLE_DEVICES"] = lease.cuda_visible_devices
    if "OMP_NUM_THREADS" not in os.environ:
        # Share the cores among every rank of every concurrent run instead of oversubscribing.
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // (nproc * concurrency)))
    return env


# --- the attempt ----------------------------------------------------------------------
class RunAttempt:
    def __init__(self, settings: Settings, api: WorkerApi, run_id: str, attempt: int) -> None:
        self.settings, self.api = settings, api
        self.run_id, self.attempt = check_run_id(run_id), attempt
        self.registry = Registry.for_settings(settings)
        self.paths = RunPaths.of(settings.runs_dir, run_id)
        # Shared by all runs (as the API's command preview shows): a corpus is tokenized once.
        self.cache_dir = settings.data_cache_dir
        self.log_path = self.paths.log(attempt)
        self.cancel = threading.Event()
        self.stopping = threading.Event()  # the worker itself is shutting down
        self.lease: gpu.GpuLease | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.tree: ProcessTree | None = None
        self.started = time.time()
        #: Wakes the watch loop (a cancel, the worker stopping); set while it watches.
        self.waker: Waker | None = None

    def request_cancel(self) -> None:
        self.cancel.set()
        self.wake()

    def wake(self) -> None:
        """Have the watch loop look now (a cancel or a stop request just arrived)."""
        waker = self.waker  # one read: the watch loop may drop it meanwhile
        if waker is not None:
            waker.wake()

    def _cancelled(self) -> bool:
        if not self.cancel.is_set() and self.registry.cancel_requested(self.run_id):
            self.cancel.set()
        return self.cancel.is_set()

    def _note(self, text: str) -> None:
        """A line of our own in the attempt log (shipped like torchrun's output)."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "a", encoding="utf-8") as f:
            f.write(f"[cpt-panel] {text}\n")

    def _report(self, outcome: Outcome) -> None:
        # While the worker stops, don't hold its shutdown for long if the API is gone too.
        retry_for = 15.0 if self.stopping.is_set() else 600.0
        try:
            self.api.status(
                self.run_id,
                self.attempt,
                outcome.status,
                reason=outcome.reason,
                retry_for=retry_for,
                kind=outcome.kind,
            )
        except (Conflict, ApiUnavailable) as exc:
            log.error("run %s: could not report %s: %s", self.run_id, outcome.status, exc)

    def _ship_final(self, shipper: RunShipper) -> None:
        shipper.drain()

    def execute(self) -> Outcome | None:
        """Run the attempt; None when the claim was refused (cancelled meanwhile or a repeat)."""
        try:
            claim = self.api.claim(
                self.run_id, self.attempt, worker_name(self.settings), instance.current()
            )
        except Conflict as exc:
            log.info(
                "run %s attempt %s: not claimed (%s); dropping", self.run_id, self.attempt, exc
            )
            return None
        self.registry.register(self.run_id, self.attempt)
        self._ship_leftovers()
        shipper = RunShipper(
            self.api,
            self.run_id,
            self.attempt,
            self.paths.events,
            self.log_path,
            events_offset=self.paths.events.stat().st_size if self.paths.events.exists() else 0,
            state_path=self.paths.shipped_state(self.attempt),
            on_cancel=self.request_cancel,
            keepalive=self._still_running,
        )
        try:
            try:
                outcome = self._launch_and_watch(claim, shipper)
            except Refused as exc:
                self._note(f"not started: {exc}")
                self._ship_final(shipper)
                outcome = Outcome.failed(FailureKind.refused, str(exc))
            except Exception as exc:  # a worker bug must not leave the run "starting" forever
                log.exception("run %s attempt %s: worker error", self.run_id, self.attempt)
                outcome = self._fail_on_error(exc, shipper)
            self._report(outcome)
            return outcome
        finally:
            # The GPUs are free only once no process of the attempt is left to hold them.
            if self.tree is not None:
                self.tree.stop(self.settings.cancel_grace_seconds, signal.SIGKILL)
            if self.lease is not None:
                self.lease.release()
            self.registry.unregister(self.run_id)

    def _launch_and_watch(self, claim: ClaimOut, shipper: RunShipper) -> Outcome:
        """The executor's part of the attempt (``worker.attempt.executors``): here, torchrun on this box."""
        proc = self._prepare_and_launch(claim)
        if proc is None:  # cancelled before the launch (e.g. while waiting for GPUs)
            return Outcome.cancelled()
        return self._watch(proc, shipper)

    def _ship_leftovers(self) -> None:
        if self.attempt == 1:
            return
        try:
            sent = ship_leftovers(self.api, self.run_id, self.paths, self.attempt)
        except OSError as exc:  # best effort: the new attempt must start regardless
            log.warning("run %s: earlier attempts' leftovers not shipped: %s", self.run_id, exc)
            return
        if sent:
            log.info("run %s: shipped %d events an earlier attempt left", self.run_id, sent)

    def _still_running(self) -> CancelAnswer:
        """Repeat ``running`` (harmless per the contract); the answer carries cancel_requested."""
        if self.proc is None or self.proc.poll() is not None:
            return CancelAnswer(cancel_requested=False)
        return self.api.status(self.run_id, self.attempt, "running", pid=self.proc.pid, retry_for=0)

    def _fail_on_error(self, exc: Exception, shipper: RunShipper) -> Outcome:
        reason = f"worker error: {type(exc).__name__}: {' '.join(str(exc).split())}"[:300]
        if self.tree is not None:
            self.tree.stop(self.settings.cancel_grace_seconds, signal.SIGUSR2)
        with contextlib.suppress(Exception):
            self._note(reason)
            self._ship_final(shipper)
        return Outcome.failed(FailureKind.error, reason)

    def _write_run_files(self, claim: ClaimOut, *dirs: Path) -> tuple[RunConfig, str | None]:
        """The claimed config, validated and written to the run dir with its DeepSpeed JSON
        (the path the argv names), after making the attempt's directories and ``dirs``."""
        try:
            config = RunConfig.model_validate(claim.config)
        except ValueError as exc:
            raise Refused(f"invalid run config: {str(exc).splitlines()[0]}") from exc
        paths = self.paths
        for d in (paths.output_dir, self.cache_dir, self.log_path.parent, *dirs):
            d.mkdir(parents=True, exist_ok=True)
        paths.config.write_text(json.dumps(config.model_dump(mode="json"), indent=2))
        if config.launch.deepspeed == "none":
            return config, None
        name = DEEPSPEED_FILES[config.launch.deepspeed]
        if not (DS_CONFIG_DIR / name).is_file():
            raise Refused(f"DeepSpeed config {name} is missing on this worker")
        shutil.copyfile(DS_CONFIG_DIR / name, paths.ds_config)
        return config, str(paths.ds_config)

    def _prepare_and_launch(self, claim: ClaimOut) -> subprocess.Popen[bytes] | None:
        config, ds_config = self._write_run_files(claim)
        paths = self.paths

        gpus = gpu.list_gpus()
        if self.settings.use_cpu is False and not gpus:
            raise Refused("CPT_USE_CPU=false but no GPU is visible on this worker")
        use_cpu = bool(self.settings.use_cpu) or not gpus
        check_fits(config, use_cpu, len(gpus))
        check_paths(config, self.settings.roots)

        # ``last`` or ``checkpoint-N`` goes through as it is: only pretrain.py decides which
        # checkpoint is complete (worker/training/checkpoints.py), so nothing here guesses.
        checkpoint = claim.resume_from

        if not use_cpu and not self._wait_for_gpus(gpus, config.launch.nproc_per_node):
            return None  # cancelled while waiting for GPUs
        ctx = LaunchContext(
            output_dir=str(paths.output_dir),
            data_cache_dir=str(self.cache_dir),
            deepspeed_config=ds_config,
            use_cpu=use_cpu,
            python=sys.executable,
            script=str(PRETRAIN),
            resume_from_checkpoint=checkpoint,
            master_port=launcher.free_port(),
            node_rank=0 if config.launch.nnodes > 1 else None,
            run_id=self.run_id,
        )
        argv = torchrun_argv(config, ctx)
        device = (
            "CPU" if use_cpu else f"GPU {self.lease.cuda_visible_devices if self.lease else ''}"
        )
        self._note(f"attempt {self.attempt} on {worker_name(self.settings)} ({device})")
        if checkpoint:
            self._note(f"resuming from {checkpoint}")
        self._note("$ " + display_command(argv))
        env = child_env(
            use_cpu,
            config.launch.nproc_per_node,
            self.settings.worker_concurrency,
            self.lease,
            self.settings.roots,
        )
        if self._cancelled():
            return None
        # torchrun's own failure lands here (errors.record); one file per attempt.
        env["TORCHELASTIC_ERROR_FILE"] = str(self.log_path.with_suffix(".error.json"))
        # The ranks stop, saving nothing, if this worker stops watching them (frozen).
        fence.touch(self.paths.fence(self.attempt))
        env[fence.FILE_ENV] = str(self.paths.fence(self.attempt))
        env[fence.SECONDS_ENV] = str(self.settings.worker_lost_seconds * fence.SHARE_OF_LOST_WINDOW)
        self.started = time.time()
        proc = self.proc = launcher.start(argv, self.log_path, env, cwd=paths.run_dir)
        self.tree = ProcessTree(proc.pid)
        self.registry.register(
            self.run_id, self.attempt, pgid=proc.pid, procs=self.tree.as_record()
        )
        try:
            answer = self.api.status(self.run_id, self.attempt, "running", pid=proc.pid, argv=argv)
        except Conflict as exc:
            # The API no longer wants this attempt (e.g. marked lost): stop at once.
            log.warning("run %s: running refused (%s); stopping", self.run_id, exc)
            self.cancel.set()
        else:
            if answer.cancel_requested:
                self.cancel.set()
        return proc

    def _unrecorded(self) -> str | None:
        """Why the API has recorded nothing of this run for ``unrecorded_seconds``, or None."""
        seconds, problem = self.api.unrecorded()
        if seconds < self.settings.unrecorded_seconds:
            return None
        return f"the API could not record this run for {seconds:.0f} s ({problem})"

    def _wait_for_gpus(self, gpus: list[gpu.GpuInfo], count: int) -> bool:
        """Wait until ``count`` GPUs are free (other runs on the box hold them); False if cancelled."""
        announced = False
        while not self._cancelled():
            self.lease = gpu.try_allocate(self.registry.gpu_lock_dir, gpus, count, self.run_id)
            if self.lease is not None:
                return True
            if not announced:
                self._note(f"waiting for {count} free GPU(s) on this worker")
                announced = True
            time.sleep(1.0)
        return False

    def _track(self) -> None:
        """Record new processes of the attempt (ranks appear a second or two after torchrun)."""
        if self.tree is not None and self.tree.refresh():
            self.registry.register(
                self.run_id, self.attempt, pgid=self.tree.root_pid, procs=self.tree.as_record()
            )

    def _watch(self, proc: subprocess.Popen[bytes], shipper: RunShipper) -> Outcome:
        tree = self.tree or ProcessTree(proc.pid)
        thread = ShipperThread(shipper, self.settings.ship_interval_seconds)
        thread.start()
        self.waker = waker = Waker(proc.pid)
        try:
            return self._watch_loop(proc, shipper, tree, thread, waker)
        finally:
            self.waker = None
            waker.close()

    def _watch_loop(
        self,
        proc: subprocess.Popen[bytes],
        shipper: RunShipper,
        tree: ProcessTree,
        thread: ShipperThread,
        waker: Waker,
    ) -> Outcome:
        cancelled = stopped = False
        stall: str | None = None
        unrecorded: str | None = None
        next_track = 0.0
        while proc.poll() is None:
            if time.monotonic() >= next_track:
                self._track()
                fence.touch(self.paths.fence(self.attempt))  # still watching
                next_track = time.monotonic() + 0.5
                stall = stalled_reason(shipper, self.settings.stall_seconds)
                if stall is not None:
                    log.warning("run %s: %s; dumping stacks and stopping", self.run_id, stall)
                    self._note(stall)
                    dump_stacks(tree, self._note)
                    tree.stop(self.settings.cancel_grace_seconds, signal.SIGUSR2)
                    break
                unrecorded = self._unrecorded()
                if unrecorded is not None:
                    # Training nobody can see (or stop) is worse than stopped training: save a
                    # checkpoint at the next step (SIGTERM) and end the attempt.
                    log.warning("run %s: %s; stopping the training", self.run_id, unrecorded)
                    self._note(f"{unrecorded}: stopping the training (checkpoint first)")
                    with fence.kept(self.paths.fence(self.attempt)):
                        tree.stop(self.settings.stop_grace_seconds, signal.SIGTERM)
                    break
            if self.registry.stop_requested(self.run_id):
                self.stopping.set()
            if self._cancelled() or self.stopping.is_set():
                stopped = self.stopping.is_set() and not self.cancel.is_set()
                cancelled = not stopped
                why = "cancel requested" if cancelled else "worker stopping"
                log.info("run %s: %s; stopping %d process(es)", self.run_id, why, len(tree.alive()))
                # A cancel stops at once (SIGUSR2); a worker stop gives the ranks time to save
                # a checkpoint at the next step boundary (SIGTERM, worker.training.preemption).
                with fence.kept(self.paths.fence(self.attempt)):  # a save may take a while
                    took = tree.stop(
                        self.settings.cancel_grace_seconds
                        if cancelled
                        else self.settings.stop_grace_seconds,
                        signal.SIGUSR2 if cancelled else signal.SIGTERM,
                    )
                log.info("run %s: every process gone after %.2fs", self.run_id, took)
                break
            # Until the next tracking tick, the training's exit or a wake-up (cancel, stop):
            # two wake-ups a second instead of twenty (the registry's cancel and stop files,
            # written by the heartbeat and the worker's shutdown, are read at each).
            waker.wait(next_track - time.monotonic())
        returncode = proc.wait()
        # A rank may outlive torchrun (own session, hung): none may be left, whatever happened.
        tree.stop(self.settings.cancel_grace_seconds, signal.SIGKILL)
        thread.stop()
        if cancelled:  # the log ends with one plain line, not a launcher traceback
            self._note("cancelled on request")
        self._ship_final(shipper)
        if stall is not None:
            return Outcome.failed(FailureKind.stalled, stall)
        if unrecorded is not None:
            end = shipper.end_event or last_end_event(self.paths.events) or {}
            saved = f"; {end.get('reason')}" if end.get("status") == "preempted" else ""
            return Outcome.failed(FailureKind.unrecorded, f"stopped: {unrecorded}{saved}")
        if stopped:
            end = shipper.end_event or {}
            saved = f" ({end.get('reason')})" if end.get("status") == "preempted" else ""
            step = shipper.last_step if shipper.last_step is not None else "?"
            return Outcome.failed(
                FailureKind.worker_stopped, f"worker stopped: interrupted at step {step}{saved}"
            )
        outcome = outcome_from(shipper.end_event, returncode, cancelled, self.log_path)
        outcome = explain(
            outcome, returncode, cancelled, self.log_path, self.paths.output_dir, self.started
        )
        log.info(
            "run %s attempt %s: %s (%s)", self.run_id, self.attempt, outcome.status, outcome.reason
        )
        return outcome


def run_attempt(settings: Settings, run_id: str, attempt: int) -> Outcome | None:
    """Entry point of the task: SIGTERM to the pool process (worker shutdown) stops the run cleanly."""
    from worker.attempt.executors import attempt_class  # CPT_EXECUTOR: local or slurm

    api = shared_api(settings.effective_api_url, settings.secret("worker_token"))
    runner = attempt_class(settings)(settings, api, run_id, attempt)

    def _on_term(signum: int, frame: FrameType | None) -> None:
        runner.stopping.set()
        runner.wake()

    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _on_term) if in_main_thread else None
    try:
        return runner.execute()
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
