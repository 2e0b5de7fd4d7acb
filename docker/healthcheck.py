#!/usr/bin/env python3
"""Container health checks for the cpt-panel images. Standard library only.

    healthcheck.py api      GET http://127.0.0.1:$CPT_PORT/api/health answers {"status": "ok"}
                            (this container's API, whatever CPT_API_URL says).
    healthcheck.py worker   a `cpt-panel worker` process is alive in this container, the
                            broker answers PING (Redis, with the URL's password) and the
                            API answers /api/health.

Exit status 0 = healthy, 1 = unhealthy (Docker's convention); one line on stdout says why.
It reads the same CPT_* variables as the panel (see cpt_contract/settings.py) but imports
nothing from it: a check every 30 s must not pay for pydantic, Celery or torch imports, and
must keep working when the app itself is wedged.
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import sys
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import unquote, urlsplit

#: Seconds per network step; Docker kills the whole check after the compose timeout anyway.
TIMEOUT = 5.0


class Unhealthy(Exception):
    pass


def api_url(local: bool = False) -> str:
    """Same rule as Settings.effective_api_url; ``local``: the API of this container."""
    explicit = os.environ.get("CPT_API_URL")
    if explicit and not local:
        return explicit.rstrip("/")
    host = os.environ.get("CPT_HOST") or "127.0.0.1"
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1"
    return f"http://{host}:{os.environ.get('CPT_PORT') or '8000'}"


def check_api(base: str) -> str:
    url = f"{base}/api/health"
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as resp:
            body = json.loads(resp.read() or b"{}")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise Unhealthy(f"API {url}: {exc}") from exc
    if not isinstance(body, dict) or body.get("status") != "ok":
        raise Unhealthy(f"API {url} answered {body!r}")
    if body.get("database", "ok") != "ok":
        raise Unhealthy(f"API {url}: database {body.get('database')!r}")
    return f"API ok ({url})"


def _resp_command(*parts: str) -> bytes:
    out = [f"*{len(parts)}\r\n".encode()]
    for part in parts:
        raw = part.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(raw), raw))
    return b"".join(out)


def _read_line(sock: socket.socket) -> bytes:
    buf = b""
    while not buf.endswith(b"\r\n"):
        chunk = sock.recv(1)
        if not chunk:
            raise Unhealthy("broker closed the connection")
        buf += chunk
    return buf[:-2]


def check_broker(url: str | None) -> str:
    if not url:
        return "broker: embedded (no CPT_BROKER_URL)"
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme.startswith("filesystem") or scheme.startswith("sqla") or scheme == "memory":
        return f"broker: {scheme} (local, nothing to reach)"
    default_port = {"redis": 6379, "rediss": 6379, "amqp": 5672, "pyamqp": 5672}.get(scheme)
    host, port = parts.hostname, parts.port or default_port
    if not host or not port:
        raise Unhealthy(f"cannot parse broker URL scheme {scheme!r}")
    try:
        sock = socket.create_connection((host, port), timeout=TIMEOUT)
    except OSError as exc:
        raise Unhealthy(f"broker {host}:{port}: {exc}") from exc
    with sock:
        if scheme not in ("redis", "rediss"):
            return f"broker {host}:{port} reachable"
        stream: socket.socket = sock
        if scheme == "rediss":
            stream = ssl.create_default_context().wrap_socket(sock, server_hostname=host)
        stream.settimeout(TIMEOUT)
        if parts.password:
            user = unquote(parts.username or "")
            auth = (
                ("AUTH", user, unquote(parts.password))
                if user
                else ("AUTH", unquote(parts.password))
            )
            stream.sendall(_resp_command(*auth))
            reply = _read_line(stream)
            if reply != b"+OK":
                raise Unhealthy(f"broker {host}:{port} AUTH: {reply.decode(errors='replace')}")
        stream.sendall(_resp_command("PING"))
        reply = _read_line(stream)
        if reply != b"+PONG":
            raise Unhealthy(f"broker {host}:{port} PING: {reply.decode(errors='replace')}")
    return f"broker {host}:{port} PONG"


def _is_worker_argv(argv: list[str]) -> bool:
    """`cpt-panel worker ...` or `python -m cpt_cli.main worker ...`."""
    for i, arg in enumerate(argv[:-1]):
        if (Path(arg).name == "cpt-panel" or arg == "cpt_cli.main") and argv[i + 1] == "worker":
            return True
    return False


def worker_pids(proc: Path = Path("/proc")) -> list[int]:
    found = []
    me = os.getpid()
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            argv = (entry / "cmdline").read_bytes().rstrip(b"\0").split(b"\0")
            stat = (entry / "stat").read_text()
        except OSError:  # the process went away meanwhile
            continue
        state = stat.rsplit(")", 1)[-1].split()[0] if ")" in stat else "?"
        if state in ("Z", "X"):
            continue
        if _is_worker_argv([a.decode(errors="replace") for a in argv]):
            found.append(int(entry.name))
    return sorted(found)


def check_worker_process() -> str:
    pids = worker_pids()
    if not pids:
        raise Unhealthy("no live `cpt-panel worker` process in this container")
    return "worker pid " + ",".join(map(str, pids))


def main(argv: list[str]) -> int:
    mode = argv[1] if len(argv) > 1 else ""
    try:
        if mode == "api":
            lines = [check_api(api_url(local=True))]
        elif mode == "worker":
            lines = [
                check_worker_process(),
                check_broker(os.environ.get("CPT_BROKER_URL")),
                check_api(api_url()),
            ]
        else:
            print("usage: healthcheck.py api|worker", file=sys.stderr)
            return 2
    except Unhealthy as exc:
        print(f"unhealthy: {exc}")
        return 1
    print("healthy: " + "; ".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
