"""``cpt-panel up``: the API and one worker as children of one process (what ``make run`` starts)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from cpt_contract.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


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


def _print_first_password(settings: Settings) -> None:
    """The first admin's one-time password (made by the API at its first start), to a terminal
    only; the file goes once the admin sets its own password."""
    path = settings.resolved_data_dir / ".admin_password"
    if not path.exists():
        return
    if sys.stdout.isatty():
        print(f"           sign in as admin, password {path.read_text().strip()} (one-time)")
    else:
        print(f"           admin's one-time password: not printed, it is in {path}")


def run_up(settings: Settings) -> int:
    """API and one worker as children of this process; Ctrl-C (or SIGTERM) stops both.

    The children get their own sessions so that Ctrl-C reaches only this process, which then
    stops the worker first (its runs report "worker stopped" to a still-running API) and the
    API last. Should this process die, the children get SIGTERM (PR_SET_PDEATHSIG).
    """
    from worker.attempt.launcher import _die_with_parent

    # Create the tokens once, before two processes could race to generate different ones.
    token = (
        None if (settings.api_token or "").startswith("sha256:") else settings.secret("api_token")
    )
    settings.secret_digest("worker_token")
    env = {**os.environ, "CPT_DATA_DIR": str(settings.resolved_data_dir)}

    def spawn(command: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "cpt_cli.main", command],
            cwd=ROOT,
            env=env,
            start_new_session=True,
            preexec_fn=_die_with_parent,  # safe: no other threads run here yet
        )

    api, worker = spawn("serve"), spawn("worker")
    procs = [api, worker]
    url = settings.effective_api_url
    _wait_healthy(url, procs)
    # The token goes to a terminal only: redirected output ends up in log files.
    if token and sys.stdout.isatty():
        print(f"cpt-panel: {url}/  (access token: {token})", flush=True)
    else:
        print(f"cpt-panel: {url}/  (access token: not printed, output is not a terminal)")
    print(f"           token file: {settings.resolved_data_dir / '.api_token'}", flush=True)
    _print_first_password(settings)
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
