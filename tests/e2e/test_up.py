"""``cpt-panel up`` (what ``make run`` starts): API and worker in one tree, token printed, Ctrl-C stops all."""

from __future__ import annotations

import os
import pty
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import httpx
import psutil
import pytest

from tests.support.panel import ROOT, free_port, kill_tree

pytestmark = pytest.mark.slow


def _copy(fd: int, path: Path) -> None:
    with path.open("ab") as out:
        while True:
            try:
                data = os.read(fd, 65536)
            except OSError:
                return  # the terminal closed: every process holding it exited
            if not data:
                return
            out.write(data)
            out.flush()


def test_up_serves_api_and_worker_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CPT_")}
    env |= {
        "CPT_DATA_DIR": str(tmp_path / "data"),
        "CPT_PORT": str(port),
        "CPT_BUILD_DEMO": "false",
        "CPT_QUEUE": "up-" + uuid.uuid4().hex[:8],
        "CPT_HEARTBEAT_SECONDS": "1",
        "PYTHONUNBUFFERED": "1",
    }
    # A terminal, as with `make run`: the token is printed to a terminal only, never to a file.
    master, terminal = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "cpt_cli.main", "up"],
        cwd=ROOT,
        env=env,
        stdout=terminal,
        stderr=terminal,
        start_new_session=True,
    )
    os.close(terminal)
    threading.Thread(target=_copy, args=(master, tmp_path / "up.log"), daemon=True).start()
    try:
        token = None
        deadline = time.monotonic() + 90
        alive = False
        while time.monotonic() < deadline and not alive:
            time.sleep(0.3)
            assert proc.poll() is None, (tmp_path / "up.log").read_text()
            text = (tmp_path / "up.log").read_text(errors="replace")
            match = re.search(rf"http://127\.0\.0\.1:{port}/\s+\(access token: (\S+)\)", text)
            if match is None:
                continue
            token = match.group(1)
            try:
                r = httpx.get(
                    f"http://127.0.0.1:{port}/api/workers",
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=2,
                )
            except httpx.HTTPError:
                continue
            alive = r.status_code == 200 and any(w["alive"] for w in r.json())
        assert alive, (tmp_path / "up.log").read_text()
        assert token == (tmp_path / "data" / ".api_token").read_text().strip()
        # Private: the data dir, the token file and the database are the panel user's only.
        data = tmp_path / "data"
        for path in (data, data / "runs", data / ".api_token", data / "cpt-panel.db"):
            assert path.stat().st_mode & 0o077 == 0, (path, oct(path.stat().st_mode))
        # The token went to the terminal only: no log file of the API or the worker has it.
        # The first admin's one-time password: printed to the terminal, in a 0600 file, in no
        # log, and it signs in.
        text = (tmp_path / "up.log").read_text(errors="replace")
        printed = re.search(r"sign in as admin, password (\S+) \(one-time\)", text)
        assert printed, text
        password = printed.group(1)
        assert password == (data / ".admin_password").read_text().strip()
        assert (data / ".admin_password").stat().st_mode & 0o077 == 0
        r = httpx.post(
            f"http://127.0.0.1:{port}/api/session",
            json={"name": "admin", "password": password},
            timeout=10,
        )
        assert r.status_code == 200 and r.json()["role"] == "admin", r.text
        for log in data.rglob("*.log"):
            assert token not in log.read_text(errors="replace"), log
            assert password not in log.read_text(errors="replace"), log
        tree = [proc.pid] + [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
        assert len(tree) >= 3  # up, the API, the worker (and its pool)

        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        assert proc.wait(timeout=40) == 0
        deadline = time.monotonic() + 10
        while any(
            psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE
            for p in tree
        ):
            assert time.monotonic() < deadline, "processes left after Ctrl-C"
            time.sleep(0.1)
    finally:
        kill_tree(proc)  # type: ignore[arg-type]
