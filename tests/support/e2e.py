"""Helpers for the end-to-end tests (real API, real Celery worker, real torchrun on the tiny model)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil

from cpt_contract.runconfig.schema import deep_merge
from cpt_contract.statuses import TERMINAL_STATUSES
from tests.support.panel import Panel, start_panel

TERMINAL = {s.value for s in TERMINAL_STATUSES}


def tiny_config(assets: dict[str, Path], **training: Any) -> dict[str, Any]:
    """The tiny-demo preset pointed at the test assets; short and without a long final eval."""
    base: dict[str, Any] = {
        "model": {
            "model_name_or_path": str(assets["model"]),
            "tokenizer_name_or_path": str(assets["tokenizer_extended"]),
        },
        "data": {"dataset_dir": str(assets["corpus"]), "max_eval_samples": 8},
        "training": {"max_steps": 8, "save_steps": 4, "logging_steps": 1, "eval_steps": None},
    }
    return deep_merge(base, {"training": training}) if training else base


def submit(panel: Panel, config: dict[str, Any], name: str) -> dict[str, Any]:
    with panel.client() as c:
        r = c.post("/api/runs", json={"name": name, "preset": "tiny-demo", "config": config})
    assert r.status_code == 201, r.text
    return dict(r.json())


def get_run(panel: Panel, run_id: str) -> dict[str, Any]:
    with panel.client() as c:
        r = c.get(f"/api/runs/{run_id}")
    assert r.status_code == 200, r.text
    return dict(r.json())


def wait_for(panel: Panel, run_id: str, ok: Any, timeout: float, what: str) -> dict[str, Any]:
    """Poll the run until ``ok(run)``; fail with the worker log tail otherwise."""
    deadline = time.monotonic() + timeout
    run: dict[str, Any] = {}
    while time.monotonic() < deadline:
        run = get_run(panel, run_id)
        if ok(run):
            return run
        time.sleep(0.2)
    raise AssertionError(
        f"run {run_id} never became {what} in {timeout}s: {run}\n{worker_log_tail(panel)}"
    )


def wait_final(panel: Panel, run_id: str, timeout: float = 180) -> dict[str, Any]:
    return wait_for(panel, run_id, lambda r: r["status"] in TERMINAL, timeout, "final")


def worker_log_tail(panel: Panel, chars: int = 3000) -> str:
    logs = sorted(panel.data_dir.glob("worker-*.log"))
    return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-chars:]}" for p in logs)


def run_dir(panel: Panel, run_id: str) -> Path:
    return panel.data_dir / "runs" / run_id


def file_events(panel: Panel, run_id: str) -> list[dict[str, Any]]:
    path = run_dir(panel, run_id) / "output" / "events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def api_events(panel: Panel, run_id: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    with panel.client() as c:
        while True:
            after = out[-1]["seq"] if out else 0
            r = c.get(f"/api/runs/{run_id}/events", params={"after_seq": after, "limit": 1000})
            assert r.status_code == 200, r.text
            page = r.json()
            if not page:
                return out
            out += page


def api_log(panel: Panel, run_id: str, attempt: int) -> str:
    text, offset = [], 0
    with panel.client() as c:
        while True:
            r = c.get(
                f"/api/runs/{run_id}/logs",
                params={"offset": offset, "limit": 65536, "attempt": attempt},
            )
            assert r.status_code == 200, r.text
            chunk = r.json()
            text.append(chunk["text"])
            if chunk["next_offset"] >= chunk["size"] or chunk["next_offset"] == offset:
                return "".join(text)
            offset = chunk["next_offset"]


def training_processes(run_dir_: Path) -> list[psutil.Process]:
    """torchrun and its ranks for one run: every process whose argv names the run's dir."""
    found = []
    needle = str(run_dir_)
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(proc.info.get("cmdline") or [])
        if needle in cmdline and ("torch.distributed.run" in cmdline or "pretrain.py" in cmdline):
            found.append(proc)
    return found


def alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    living = []
    for proc in procs:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                living.append(proc)
        except psutil.NoSuchProcess:
            continue
    return living


@contextmanager
def embedded_panel(data_dir: Path, assets: dict[str, Any], **env: str) -> Iterator[Panel]:
    """API and one worker slot on the embedded broker, the demo assets allowed, ``env`` set."""
    panel = start_panel(data_dir, broker_url=None, allowed_roots=[assets["root"]], extra_env=env)
    try:
        panel.start_worker(concurrency=1)
        yield panel
    finally:
        panel.stop()
