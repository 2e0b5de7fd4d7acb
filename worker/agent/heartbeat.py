"""The worker's heartbeat: a thread in the worker's main process.

Every ``settings.heartbeat_seconds`` it tells the API who this worker is, which GPUs it has
(and which run holds each) and which runs it is executing. The answer lists runs whose cancel
was requested; those get a cancel marker that the run's task polls.
"""

from __future__ import annotations

import logging
import shutil
import socket
import threading
from pathlib import Path

import httpx

from cpt_contract.protocol import HeartbeatIn, Volume
from cpt_contract.settings import Settings
from worker.attempt import gpu, instance
from worker.attempt.api_client import ApiUnavailable, Conflict, WorkerApi
from worker.attempt.registry import Registry, worker_name

log = logging.getLogger(__name__)


def is_cpu_only(settings: Settings, gpus: list[gpu.GpuInfo]) -> bool:
    return bool(settings.use_cpu) or not gpus


def volumes(settings: Settings) -> list[Volume]:
    """Free space where this worker writes (data, runs, cache) and reads (each allowed root):
    the API's health and its submit check read these, since the worker's disks are not the
    API's."""
    places: list[tuple[str, Path]] = [
        ("data", settings.resolved_data_dir),
        ("runs", settings.runs_dir),
        ("cache", settings.data_cache_dir),
        *(("root", r.expanduser().resolve()) for r in settings.allowed_roots),
    ]
    out = []
    for name, path in places:
        try:
            usage = shutil.disk_usage(path)
        except OSError:
            continue  # not made yet, or gone: nothing to report
        free, total = usage.free, usage.total
        out.append(Volume(name=name, path=str(path), free_bytes=free, total_bytes=total))  # type: ignore[arg-type]
    return out


def heartbeat_body(settings: Settings, registry: Registry) -> HeartbeatIn:
    # Only this instance's records: a dead predecessor's runs must not look alive.
    current = [r["run_id"] for r in registry.active() if instance.is_mine(r)]
    if settings.executor == "slurm":
        # A login node: its own GPUs do not matter; the cluster's partitions do (sinfo).
        from worker.attempt.slurm.cluster import cluster_report

        return HeartbeatIn(
            name=worker_name(settings),
            host=socket.gethostname(),
            queue=settings.queue,
            concurrency=settings.worker_concurrency,
            cpu_only=bool(settings.use_cpu) or not settings.slurm_gpus,
            gpus=[],
            current_runs=current,
            executor="slurm",
            cluster=cluster_report(settings),
            instance=instance.current(),
            volumes=volumes(settings),
        )
    gpus = gpu.holders(registry.gpu_lock_dir, gpu.list_gpus())
    return HeartbeatIn(
        name=worker_name(settings),
        host=socket.gethostname(),
        queue=settings.queue,
        concurrency=settings.worker_concurrency,
        cpu_only=is_cpu_only(settings, gpus),
        gpus=[g.to_dict() for g in gpus],
        current_runs=current,
        instance=instance.current(),
        volumes=volumes(settings),
    )


def beat_once(api: WorkerApi, settings: Settings, registry: Registry) -> list[str]:
    """One heartbeat; returns the run ids to cancel (marked in the registry already)."""
    answer = api.heartbeat(heartbeat_body(settings, registry))
    cancel = list(answer.cancel)
    active = {r["run_id"] for r in registry.active() if instance.is_mine(r)}
    for run_id in cancel:
        if run_id in active:
            registry.request_cancel(run_id)
    return cancel


class HeartbeatThread(threading.Thread):
    def __init__(self, settings: Settings, api: WorkerApi, registry: Registry) -> None:
        super().__init__(name="heartbeat", daemon=True)
        self.settings, self.api, self.registry = settings, api, registry
        self._stop_event = threading.Event()

    def run(self) -> None:
        failing = False
        while not self._stop_event.is_set():
            try:
                beat_once(self.api, self.settings, self.registry)
                if failing:
                    log.info("heartbeat: the API answers again")
                failing = False
            except (ApiUnavailable, Conflict, httpx.HTTPError) as exc:
                if not failing:  # once per outage, not once per beat
                    log.warning("heartbeat failed (will keep trying): %s", exc)
                failing = True
            except Exception:  # a heartbeat bug must never kill the worker's liveness loop
                log.exception("heartbeat crashed; retrying")
            self._stop_event.wait(self.settings.heartbeat_seconds)

    def stop(self) -> None:
        self._stop_event.set()
