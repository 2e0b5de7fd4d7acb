"""``cpt-panel worker`` (a Celery worker plus its heartbeat) and ``cpt-panel up`` (API + worker).

Imported lazily by the CLI: the worker pulls in Celery, the API pulls in FastAPI, and the
``runs`` client needs neither.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from backend.core.config import Settings

log = logging.getLogger("cpt.worker")
ROOT = Path(__file__).resolve().parents[2]


def reap_stale_runs(settings: Settings) -> list[str]:
    """Kill the training left behind by a worker of this box that died (kill -9, OOM).

    Only records whose task process is gone are touched, so a second live worker with the
    same name keeps its runs.
    """
    from worker import launcher
    from worker.registry import Registry

    registry = Registry.for_settings(settings)
    reaped = []
    for record in registry.active():
        task_pid = record.get("task_pid")
        if isinstance(task_pid, int) and psutil.pid_exists(task_pid):
            continue
        pgid = record.get("pgid")
        if isinstance(pgid, int) and launcher.kill_stale_group(pgid):
            reaped.append(str(record.get("run_id")))
        with contextlib.suppress(ValueError):
            registry.unregister(str(record.get("run_id")))
    return reaped


def run_worker(settings: Settings) -> None:
    """Build the demo assets if asked, then consume ``settings.queue`` until stopped."""
    from celery.signals import worker_ready, worker_shutdown, worker_shutting_down

    from worker.api_client import WorkerApi
    from worker.heartbeat import HeartbeatThread
    from worker.registry import Registry, worker_name

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # Ten ship requests a second per run would drown the worker log.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    for run_id in reap_stale_runs(settings):
        log.warning("killed the training of run %s left by a dead worker", run_id)
    if settings.build_demo:
        from worker.demo_assets import ensure_demo_assets

        log.info("building the tiny-demo assets in %s (first start only)", settings.demo_dir)
        ensure_demo_assets(settings.demo_dir)

    from worker import tasks  # noqa: F401  (registers the tasks on the app)
    from worker.celery_app import app

    api = WorkerApi(settings.effective_api_url, settings.secret("worker_token"))
    heartbeat = HeartbeatThread(settings, api, Registry.for_settings(settings))

    # Start beating only once the pool has forked: a thread in the parent during fork is
    # a classic deadlock source, and "alive" should mean "consuming".
    def _ready(**_: object) -> None:
        heartbeat.start()

    def _shutdown(**_: object) -> None:
        heartbeat.stop()

    registry = Registry.for_settings(settings)

    def _shutting_down(**_: object) -> None:
        # A warm shutdown would wait for runs that may take days: stop them now instead;
        # each task reports its run failed ("the worker stopped"), resumable from a checkpoint.
        for run_id in registry.request_stop_all():
            log.warning("worker stopping: stopping run %s", run_id)

    worker_ready.connect(_ready, weak=False)
    worker_shutting_down.connect(_shutting_down, weak=False)
    worker_shutdown.connect(_shutdown, weak=False)
    name = worker_name(settings)
    log.info(
        "worker %s: queue %s, concurrency %s, API %s",
        name,
        settings.queue,
        settings.worker_concurrency,
        settings.effective_api_url,
    )
    app.worker_main(
        [
            "worker",
            "--loglevel=INFO",
            "-Q",
            settings.queue,
            "-c",
            str(settings.worker_concurrency),
            "-P",
            "prefork",
            "-n",
            f"cpt-{os.getpid()}@{name}",
            # No broker chatter between workers: runs are coordinated through the API.
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ]
    )


def _wait_healthy(url: str, procs: list[subprocess.Popen[bytes]], timeout: float = 60) -> None:
    """Wait for /api/health so the URL is printed after the components' start-up chatter."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and all(p.poll() is None for p in procs):
        try:
            if httpx.get(url + "/api/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)


def _stop(proc: subprocess.Popen[bytes], timeout: float) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def run_up(settings: Settings) -> int:
    """API and one worker as children of this process; Ctrl-C (or SIGTERM) stops both.

    The children get their own sessions so that Ctrl-C reaches only this process, which then
    stops the worker first (its runs report "worker stopped" to a still-running API) and the
    API last. Should this process die, the children get SIGTERM (PR_SET_PDEATHSIG).
    """
    from worker.launcher import _die_with_parent

    # Create the tokens once, before two processes could race to generate different ones.
    token = settings.secret("api_token")
    settings.secret("worker_token")
    env = {**os.environ, "CPT_DATA_DIR": str(settings.resolved_data_dir)}

    def spawn(command: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "backend.cli", command],
            cwd=ROOT,
            env=env,
            start_new_session=True,
            preexec_fn=_die_with_parent,  # safe: no other threads run here yet
        )

    api, worker = spawn("serve"), spawn("worker")
    procs = [api, worker]
    url = settings.effective_api_url
    _wait_healthy(url, procs)
    print(f"cpt-panel: {url}/  (access token: {token})", flush=True)
    print(f"           token file: {settings.resolved_data_dir / '.api_token'}", flush=True)
    print("           Ctrl-C stops the API and the worker.", flush=True)

    def _interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    # Explicit: a shell starts background jobs with SIGINT ignored.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    code = 0
    try:
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
        code = next(p.returncode for p in procs if p.returncode is not None) or 1
        print("cpt-panel: a component exited; stopping the other", file=sys.stderr)
    except KeyboardInterrupt:
        print("cpt-panel: stopping the worker, then the API", file=sys.stderr, flush=True)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not skip the cleanup
    _stop(worker, timeout=settings.cancel_grace_seconds + 20)
    _stop(api, timeout=10)
    return code
