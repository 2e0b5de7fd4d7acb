"""The worker's start-up (``cpt-panel worker``): reap what a dead worker left, then consume.

Imported lazily by the CLI: the worker pulls in Celery, and the ``runs`` client needs none of it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys

from cpt_contract.broker import jobs_queue
from cpt_contract.settings import Settings
from worker.attempt.registry import worker_name

log = logging.getLogger("cpt.worker")


def reap_stale_runs(settings: Settings) -> list[str]:
    """Kill the training left behind by a worker of this box that died (kill -9, OOM).

    A record is left alone only while its task process (same pid *and* start time) still runs:
    a second live worker with the same name keeps its runs; a zombie or a reused pid does not.
    """
    from worker.attempt import instance, launcher
    from worker.attempt.proctree import ProcessTree
    from worker.attempt.registry import Registry

    registry = Registry.for_settings(settings)
    reaped = []
    for record in registry.active():
        if instance.task_alive(record):
            continue
        tree = ProcessTree.from_keys(record.get("procs") or [])
        pgid = record.get("pgid")
        killed = bool(tree.alive())
        tree.kill()
        tree.wait_gone(10.0)
        if isinstance(pgid, int) and launcher.kill_stale_group(pgid):
            killed = True
        if killed:
            reaped.append(str(record.get("run_id")))
        job = record.get("slurm_job")
        if isinstance(job, str) and job.isdigit() and settings.executor != "slurm":
            # Nobody will ship its events (this worker no longer runs Slurm): the run is
            # marked lost and can be resumed. A Slurm worker adopts its jobs (``adopt_jobs``).
            from worker.attempt.slurm import commands

            with contextlib.suppress(commands.SlurmError):
                commands.scancel(job)
                reaped.append(str(record.get("run_id")))
        with contextlib.suppress(ValueError):
            registry.unregister(str(record.get("run_id")))
    return reaped


def adoptable_jobs(settings: Settings) -> list[tuple[str, int, str]]:
    """(run id, attempt, job id) of this panel's Slurm jobs still pending or running whose
    watcher is gone: matched by job name and comment, their run dir in this worker's runs dir,
    no live task of this box on the run."""
    from worker.attempt import instance
    from worker.attempt.registry import Registry
    from worker.attempt.slurm import commands, script

    try:
        queued = commands.queued_jobs()
    except commands.SlurmError as exc:
        log.warning("Slurm did not list the queue (%s): no job adopted", exc)
        return []
    watched = {
        str(r.get("run_id"))
        for r in Registry.for_settings(settings).active()
        if instance.task_alive(r)
    }
    found = []
    for job_id, name, comment, _state in queued:
        mine = script.parse_comment(name, comment)
        if mine is None or mine[0] in watched:
            continue
        if not (settings.runs_dir / mine[0]).is_dir():
            continue  # another panel's run on the same cluster
        found.append((mine[0], mine[1], job_id))
    return found


def adopt_jobs(settings: Settings) -> list[subprocess.Popen[bytes]]:
    """A restarted Slurm worker takes its jobs back, one watcher process each (in the worker's
    process group, so it ends with it): the API answers whether each attempt is still current
    (adopted: shipped on from where the API has it) or superseded (its job is cancelled)."""
    procs = []
    for run_id, attempt, job in adoptable_jobs(settings):
        log.warning("run %s: taking back Slurm job %s (attempt %s)", run_id, job, attempt)
        argv = [sys.executable, "-m", "worker.agent.boot", "adopt", run_id, str(attempt), job]
        procs.append(subprocess.Popen(argv))
    return procs


def run_adoption(settings: Settings, run_id: str, attempt: int, job: str) -> None:
    from worker.attempt.runner import adopt_attempt

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    adopt_attempt(settings, run_id, attempt, job)


def start_job_slot() -> subprocess.Popen[bytes]:
    """The box's job slot: a one-at-a-time consumer of ``<queue>.jobs`` beside the training pool,
    so a merge or a tokenizer job never waits behind a days-long run. It dies with the worker."""
    from worker.attempt.launcher import _die_with_parent

    return subprocess.Popen(
        [sys.executable, "-m", "worker.agent.boot", "job-slot"],
        preexec_fn=_die_with_parent,  # safe: called before any thread starts
    )


def run_job_slot(settings: Settings) -> None:
    from worker.agent import tasks  # noqa: F401  (registers the tasks on the app)
    from worker.agent.celery_app import app

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    app.worker_main(
        [
            "worker",
            "--loglevel=INFO",
            "-Q",
            jobs_queue(settings.queue),
            "-c",
            "1",
            "-P",
            "solo",
            "-n",
            f"cpt-jobs-{os.getpid()}@{worker_name(settings)}",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ]
    )


def run_worker(settings: Settings) -> None:
    """Build the demo assets if asked, then consume ``settings.queue`` until stopped."""
    from celery.signals import worker_ready, worker_shutdown, worker_shutting_down

    from worker.agent.heartbeat import HeartbeatThread
    from worker.attempt import instance
    from worker.attempt.api_client import WorkerApi
    from worker.attempt.registry import Registry, worker_name

    # Before the pool forks: every task process inherits this instance's id.
    instance.new_instance()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # Ten ship requests a second per run would drown the worker log.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    for run_id in reap_stale_runs(settings):
        log.warning("killed the training of run %s left by a dead worker", run_id)
    if settings.executor == "slurm":
        adopt_jobs(settings)
    if settings.build_demo:
        from worker.demo_assets import ensure_demo_assets

        log.info("building the tiny-demo assets in %s (first start only)", settings.demo_dir)
        ensure_demo_assets(settings.demo_dir)

    from worker.agent import tasks  # noqa: F401  (registers the tasks on the app)
    from worker.agent.celery_app import app

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

    job_slot = start_job_slot()

    def _stop_job_slot(**_: object) -> None:
        if job_slot.poll() is None:
            job_slot.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                job_slot.wait(timeout=settings.cancel_grace_seconds + 5)

    worker_shutdown.connect(_stop_job_slot, weak=False)
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


if __name__ == "__main__":
    from cpt_contract.settings import get_settings

    if sys.argv[1:] == ["job-slot"]:
        run_job_slot(get_settings())
    elif len(sys.argv) == 5 and sys.argv[1] == "adopt" and sys.argv[3].isdigit():
        run_adoption(get_settings(), sys.argv[2], int(sys.argv[3]), sys.argv[4])
    else:
        sys.exit("usage: python -m worker.agent.boot job-slot | adopt RUN_ID ATTEMPT JOB_ID")
