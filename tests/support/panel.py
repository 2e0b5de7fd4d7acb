"""Fixtures: real Redis, a real API (uvicorn), a real Celery worker, a tiny local Llama.

Nothing here is mocked. Fixtures that start processes kill them (and their children) at the end.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
#: Cache of built test assets, shared across sessions (rebuilt when the builder changes).
ASSET_CACHE = Path(os.environ.get("CPT_TEST_CACHE", Path.home() / ".cache" / "cpt-panel-tests"))
REDIS_URL = os.environ.get("CPT_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def kill_tree(proc: subprocess.Popen[bytes]) -> None:
    """Terminate a process started with start_new_session=True and everything under it."""
    import signal

    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The real Redis on 127.0.0.1:6379, DB 15; .ci/run starts it when nothing answers."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.exceptions.ConnectionError as exc:  # pragma: no cover - environment problem
        pytest.fail(
            f"Redis is not reachable at {REDIS_URL}: {exc}. Start redis-server (see .ci/run)."
        )
    return REDIS_URL


@pytest.fixture(scope="session")
def tiny_assets() -> dict[str, Path]:
    """A tiny Llama, its tokenizer, an extended tokenizer and a real-text corpus, built locally once."""
    from worker import demo_assets

    return demo_assets.ensure_demo_assets(ASSET_CACHE / "demo")


@dataclass
class Panel:
    """A running panel: API (uvicorn) and optionally a Celery worker, sharing one data dir."""

    url: str
    token: str
    worker_token: str
    data_dir: Path
    env: dict[str, str]
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def client(self, token: str | None = "default") -> httpx.Client:
        headers = {}
        if token is not None:
            headers["Authorization"] = f"Bearer {self.token if token == 'default' else token}"
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def start_worker(
        self, concurrency: int = 1, extra_env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        env = {**self.env, "CPT_WORKER_CONCURRENCY": str(concurrency), **(extra_env or {})}
        log = open(self.data_dir / f"worker-{len(self.procs)}.log", "ab")
        proc = subprocess.Popen(
            [sys.executable, "-m", "cpt_cli.main", "worker"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs.append(proc)
        _wait_for_worker(self, timeout=60)
        return proc

    def stop(self) -> None:
        for proc in reversed(self.procs):
            kill_tree(proc)


def _wait_for_worker(panel: Panel, timeout: float) -> None:
    deadline = time.time() + timeout
    with panel.client() as c:
        while time.time() < deadline:
            r = c.get("/api/workers")
            if r.status_code == 200 and any(w.get("alive") for w in r.json()):
                return
            time.sleep(0.3)
    raise AssertionError(
        "worker did not send a heartbeat in time; see worker log in " + str(panel.data_dir)
    )


def start_panel(
    data_dir: Path,
    *,
    broker_url: str | None,
    allowed_roots: list[Path] | None = None,
    extra_env: dict[str, str] | None = None,
) -> Panel:
    port = free_port()
    token, worker_token = (
        "test-token-" + uuid.uuid4().hex[:8],
        "worker-token-" + uuid.uuid4().hex[:8],
    )
    env = {
        **os.environ,
        "CPT_DATA_DIR": str(data_dir),
        "CPT_API_TOKEN": token,
        "CPT_WORKER_TOKEN": worker_token,
        "CPT_HOST": "127.0.0.1",
        "CPT_PORT": str(port),
        "CPT_QUEUE": "test-"
        + uuid.uuid4().hex[:8],  # isolates concurrent test sessions on one Redis
        "CPT_ALLOWED_ROOTS": ",".join(str(p) for p in (allowed_roots or [])),
        "CPT_BUILD_DEMO": "false",
        "CPT_HEARTBEAT_SECONDS": "1",
        "PYTHONUNBUFFERED": "1",
        **(extra_env or {}),
    }
    if broker_url:
        env["CPT_BROKER_URL"] = broker_url
    else:
        env.pop("CPT_BROKER_URL", None)
    data_dir.mkdir(parents=True, exist_ok=True)
    log = open(data_dir / "api.log", "ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "cpt_cli.main", "serve"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    panel = Panel(
        url=f"http://127.0.0.1:{port}",
        token=token,
        worker_token=worker_token,
        data_dir=data_dir,
        env=env,
        procs=[proc],
    )
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError("API exited early:\n" + (data_dir / "api.log").read_text()[-4000:])
        try:
            if httpx.get(panel.url + "/api/health", timeout=1).status_code == 200:
                return panel
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    panel.stop()
    raise AssertionError(
        "API did not become healthy:\n" + (data_dir / "api.log").read_text()[-4000:]
    )


@pytest.fixture(scope="session")
def panel(
    tmp_path_factory: pytest.TempPathFactory, redis_url: str, tiny_assets: dict[str, Path]
) -> Iterator[Panel]:
    """API + one Celery worker (concurrency 1) on the real Redis, shared by the end-to-end tests."""
    data_dir = tmp_path_factory.mktemp("panel")
    p = start_panel(data_dir, broker_url=redis_url, allowed_roots=[tiny_assets["root"]])
    try:
        p.start_worker(concurrency=1)
        yield p
    finally:
        p.stop()


@pytest.fixture
def api_only(tmp_path: Path, tiny_assets: dict[str, Path]) -> Iterator[Panel]:
    """Just the API (embedded broker, no worker): for validation and auth tests."""
    p = start_panel(tmp_path / "data", broker_url=None, allowed_roots=[tiny_assets["root"]])
    try:
        yield p
    finally:
        p.stop()


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    d = tmp_path / "work"
    d.mkdir()
    return d


def copy_tree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst
