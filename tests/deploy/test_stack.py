"""`docker compose up` for real: the images built from docker/*.Dockerfile and the stack of
docker-compose.yml run on a real Docker engine, then used through the published port only.

Run by ``make test-compose`` (``-m compose``; the normal run deselects these tests), which starts
an engine when none answers and makes the base images first (``scripts/docker-local.sh``). What
differs from a user's GPU box, and only that: the base images are locally made Debian ones with a
CPU torch (build args set in .env: nothing can be pulled here), the worker reserves no GPU
(``tests/deploy/compose.cpu.yml``: this machine has neither a GPU nor the NVIDIA runtime) and trains
with ``CPT_USE_CPU=true``. The GPU path itself (CUDA torch, NCCL, nvidia-smi inside the worker) is
``bench/gpu_check.sh``'s on a GPU box.

One stack for the whole module, in this order: the previous release started and used, the
upgrade to this tree, the tiny demo with a checkpoint download and a cancel, a worker restart
mid-run, a second worker box on its own queue, down/up, backup and restore (the commands of
docs/deploy.md). Facts (build and start times, image sizes, idle memory) are written to
test-artifacts/compose-facts.json.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cpt_contract.statuses import TERMINAL_STATUSES
from tests.support.compose import (
    CPU_OVERRIDE,
    LOCAL_BASES,
    ROOT,
    Stack,
    free_port,
    host_address,
    training_processes,
    wait_run,
    write_env,
)

pytestmark = [pytest.mark.compose, pytest.mark.timeout(3600)]

TERMINAL = {s.value for s in TERMINAL_STATUSES}
SERVICES = ["redis", "api", "worker"]
PROJECT = "cpt-test"
FACTS: dict[str, Any] = {}
#: Short runs on this CPU: no evaluation pass, the tiny demo otherwise as users get it.
QUICK = {"training": {"eval_steps": None}}


# ----- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def engine() -> str:
    host = os.environ.get("DOCKER_HOST", "")
    proc = subprocess.run(["docker", "version"], capture_output=True, text=True, timeout=30)
    if not host or proc.returncode != 0:
        pytest.fail(
            "no Docker engine answers at DOCKER_HOST: run `make test-compose` "
            "(scripts/docker-local.sh starts one)\n" + proc.stderr
        )
    for image in set(LOCAL_BASES.values()) - {"cpu"}:
        found = subprocess.run(["docker", "image", "inspect", image], capture_output=True)
        assert found.returncode == 0, f"{image} missing: run scripts/docker-local.sh"
    return host


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("compose")
    for sub in ("models", "datasets"):
        (path / sub).mkdir()
    return path


@pytest.fixture(scope="module")
def values(workdir: Path) -> dict[str, str]:
    return {
        "CPT_API_TOKEN": "composetesttoken-" + os.urandom(8).hex(),
        "CPT_WORKER_TOKEN": "composeworker-" + os.urandom(8).hex(),
        "REDIS_PASSWORD": "redis" + os.urandom(8).hex(),
        **LOCAL_BASES,
        "MODELS_DIR": str(workdir / "models"),
        "DATASETS_DIR": str(workdir / "datasets"),
        # Published on every address: the second worker box reaches both through this host.
        "PANEL_BIND": "0.0.0.0",
        "PANEL_PORT": str(free_port()),
        "REDIS_BIND": "0.0.0.0",
        "REDIS_PORT": str(free_port()),
        "CPT_USE_CPU": "true",
        "WORKER_SHM_SIZE": "1gb",
        "IMAGE_PREFIX": "cpt-test",
        "IMAGE_TAG": "head",
    }


@pytest.fixture(scope="module")
def stack(engine: str, workdir: Path, values: dict[str, str]) -> Iterator[Stack]:
    env = write_env(workdir / "head.env", values)
    s = Stack(PROJECT, [ROOT / "docker-compose.yml", CPU_OVERRIDE], env, workdir, values)
    s.compose("down", "-v", "--remove-orphans")  # what a failed earlier run may have left
    try:
        yield s
    finally:
        if not os.environ.get("CPT_KEEP_STACK"):
            s.compose("down", "-v", "--remove-orphans", check=False)
        out = ROOT / "test-artifacts" / "compose-facts.json"
        out.parent.mkdir(exist_ok=True)
        out.write_text(json.dumps(FACTS, indent=2) + "\n")
        print("\n".join(s.log))
        print(json.dumps(FACTS, indent=2))


def previous_release() -> str:
    """The newest commit whose migrations are some of this tree's, not all: upgrading from it
    must run the rest. Found by the files it holds, not by the commit that added the newest
    file: migrations renumbered while branches were merged were added more than once, and the
    commit before such an addition can hold a numbering this tree no longer knows."""
    versions = "backend/migrations/versions"

    def migrations(ref: str) -> set[str]:
        try:
            names = git("ls-tree", "--name-only", f"{ref}:{versions}").split()
        except subprocess.CalledProcessError:  # before the folder existed
            return set()
        return {n for n in names if n.endswith(".py") and n[:4].isdigit()}

    current = migrations("HEAD")
    for commit in git("log", "--first-parent", "--format=%H", "--", versions).split():
        for ref in (commit, f"{commit}~1"):
            found = migrations(ref)
            if found and found < current:
                return git("rev-parse", ref)
    raise AssertionError(f"no commit holds only some of this tree's migrations: {sorted(current)}")


def git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.strip()


def old_tree(workdir: Path, commit: str) -> Path:
    """That commit's files (git archive). A release older than the base-image build args cannot
    be built without a registry: it gets this tree's packaging (docker/, the compose files,
    .dockerignore, pyproject.toml's extras (the worker image's demo corpus packages) and the
    lock (it pins what the Debian base's Python 3.11.2 needs beyond the dev venv's)) and keeps
    its own code and migrations."""
    dest = workdir / f"release-{commit[:8]}"
    dest.mkdir()
    archive = subprocess.run(["git", "archive", commit], cwd=ROOT, check=True, capture_output=True)
    tarfile.open(fileobj=io.BytesIO(archive.stdout)).extractall(dest, filter="data")
    if "ARG PYTHON_IMAGE" not in (dest / "docker" / "api.Dockerfile").read_text():
        packaging = ("docker", "docker-compose.yml", "docker-compose.worker.yml", ".dockerignore")
        for rel in (*packaging, "pyproject.toml", "requirements.lock"):
            src, dst = ROOT / rel, dest / rel
            if src.is_dir():
                subprocess.run(["rm", "-rf", str(dst)], check=True)
                subprocess.run(["cp", "-a", str(src), str(dst)], check=True)
            else:
                dst.write_bytes(src.read_bytes())
    return dest


# ----- what the tests look at ---------------------------------------------------------------------


def launch(stack: Stack, name: str, config: dict[str, Any] | None = None) -> dict[str, Any]:
    body = {"name": name, "preset": "tiny-demo", "config": config or QUICK}
    with stack.client() as c:
        r = c.post("/api/runs", json=body)
    assert r.status_code == 201, r.text
    return dict(r.json())


def succeeded(
    stack: Stack, run_id: str, timeout: float = 900, service: str = "worker"
) -> dict[str, Any]:
    run = wait_run(stack, run_id, lambda r: r["status"] in TERMINAL, timeout, "final", service)
    assert run["status"] == "succeeded", f"{run}\n{stack.logs(service, 80)}"
    return run


def snapshot(stack: Stack, run_id: str) -> dict[str, Any]:
    """Everything a user sees of a finished run: record, metrics, log, checkpoints."""
    with stack.client() as c:
        run = c.get(f"/api/runs/{run_id}").json()
        metrics = c.get(f"/api/runs/{run_id}/metrics", params={"max_points": 100000}).json()
        log = c.get(f"/api/runs/{run_id}/logs", params={"attempt": 1}).json()["text"]
        ckpts = c.get(f"/api/runs/{run_id}/checkpoints").json()
    keep = ("id", "status", "attempt", "step", "max_steps", "loss", "eval_loss", "output_dir")
    return {
        "run": {k: run[k] for k in keep},
        "metrics": metrics["series"],
        "log": log,
        "checkpoints": [(c["name"], c["step"], c["size_bytes"], c["exists"]) for c in ckpts],
    }


def download(stack: Stack, run_id: str, name: str) -> list[str]:
    """The checkpoint's tar over the published port: its member names."""
    with (
        stack.client() as c,
        c.stream("GET", f"/api/runs/{run_id}/checkpoints/{name}/download") as r,
    ):
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"].startswith("application/x-tar")
        data = b"".join(r.iter_bytes())
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return [m.name for m in tar.getmembers() if m.isfile() and m.size > 0]


def schema_version(stack: Stack) -> tuple[str, int]:
    """The database's Alembic version and its metric-level rows (read in the API container)."""
    out = stack.exec_python(
        "api",
        "import sqlite3; db = sqlite3.connect('/data/cpt-panel.db');"
        "print(db.execute('select version_num from alembic_version').fetchone()[0]);"
        "print(db.execute('select count(*) from metric_levels').fetchone()[0])",
    ).split()
    return out[0], int(out[1])


def image_facts(stack: Stack) -> None:
    for service in ("api", "worker"):
        ref = f"{stack.values['IMAGE_PREFIX']}-{service}:{stack.values['IMAGE_TAG']}"
        size = subprocess.run(
            ["docker", "image", "inspect", "--format", "{{.Size}}", ref],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        FACTS[f"image_{service}_mb"] = round(int(size) / 1e6)


def idle_memory(stack: Stack) -> None:
    ids = stack.compose("ps", "-q").stdout.split()
    out = subprocess.run(
        ["docker", "stats", "--no-stream", "--format", "{{.Name}}\t{{.MemUsage}}", *ids],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    for line in out.splitlines():
        name, usage = line.split("\t")
        service = re.sub(rf"^{PROJECT}[-_](\w+)[-_]\d+$", r"\1", name)
        FACTS[f"idle_memory_{service}"] = usage.split("/")[0].strip()


def build(stack: Stack, label: str) -> None:
    """api, then worker: one build at a time (the machine is shared)."""
    for service in ("api", "worker"):
        started = time.monotonic()
        stack.compose("build", service, timeout=3000)
        FACTS[f"build_{label}_{service}_s"] = round(time.monotonic() - started, 1)


def up(stack: Stack, label: str) -> None:
    started = time.monotonic()
    stack.compose("up", "-d", "--no-build", timeout=900)
    stack.wait_healthy(SERVICES)
    FACTS[f"up_to_healthy_{label}_s"] = round(time.monotonic() - started, 1)


def doc_block(marker: str) -> str:
    """The bash block that follows `<!-- test: MARKER -->` in docs/deploy.md."""
    text = (ROOT / "docs" / "deploy.md").read_text()
    m = re.search(rf"<!-- test: {marker} -->\s*```bash\n(.*?)```", text, re.S)
    assert m, f"docs/deploy.md has no `<!-- test: {marker} -->` bash block"
    return m.group(1)


# ----- the tests, in order, on one stack -------------------------------------------------------------


def test_upgrade_from_the_previous_release(
    stack: Stack, workdir: Path, values: dict[str, str]
) -> None:
    commit = previous_release()
    tree = old_tree(workdir, commit)
    old_values = {**values, "IMAGE_TAG": "previous"}
    old = Stack(
        PROJECT,
        [tree / "docker-compose.yml", CPU_OVERRIDE],
        write_env(workdir / "previous.env", old_values),
        workdir,
        old_values,
    )
    build(old, "previous")
    up(old, "previous")
    run = launch(old, "before the upgrade")
    succeeded(old, run["id"])
    before = snapshot(old, run["id"])
    version_before, _ = schema_version(old)
    assert before["checkpoints"] and before["metrics"]["loss"]["step"]

    build(stack, "head")
    image_facts(stack)
    up(stack, "upgrade")
    version, levels = schema_version(stack)
    assert version != version_before, f"the migration after {version_before} did not run"
    newest = sorted(p.stem for p in (ROOT / "backend/migrations/versions").glob("0*.py"))[-1]
    assert version == newest
    assert snapshot(stack, run["id"]) == before  # the old run, its metrics, log and checkpoints
    # Once: a restarted API finds the schema current and rebuilds nothing.
    stack.compose("restart", "api")
    stack.wait_healthy(SERVICES)
    assert schema_version(stack) == (version, levels)
    assert snapshot(stack, run["id"]) == before
    time.sleep(5)
    idle_memory(stack)


def test_tiny_demo_through_the_published_port(stack: Stack) -> None:
    with stack.client(token=None) as anon:
        assert anon.get("/api/health").json()["status"] == "ok"
        assert anon.get("/api/runs").status_code == 401
        page = anon.get("/")
        assert page.status_code == 200 and "<html" in page.text.lower()  # the UI is served
    with stack.client(token="wrong-token-0123456789") as bad:
        assert bad.get("/api/runs").status_code == 401
    with stack.client() as c:
        workers = c.get("/api/workers").json()
    assert any(w["alive"] and w["queue"] == "gpu" and w["cpu_only"] for w in workers), workers

    run = launch(stack, "tiny demo")
    done = succeeded(stack, run["id"])
    assert done["step"] == done["max_steps"] and done["loss"] is not None
    with stack.client() as c:
        ckpts = c.get(f"/api/runs/{run['id']}/checkpoints").json()
    assert ckpts and all(ck["exists"] for ck in ckpts)
    names = download(stack, run["id"], ckpts[-1]["name"])
    assert any(n.endswith("adapter_model.safetensors") for n in names), names
    assert any(n.endswith("trainer_state.json") for n in names), names

    # A long run cancelled while it trains: no process of it is left in the worker container.
    long = launch(stack, "cancelled", {"training": {"max_steps": 5000, "eval_steps": None}})
    wait_run(
        stack,
        long["id"],
        lambda r: r["status"] == "running" and (r["step"] or 0) >= 2,
        600,
        "training",
    )
    assert training_processes(stack), "the running training is not visible in the container"
    with stack.client() as c:
        assert c.post(f"/api/runs/{long['id']}/cancel").status_code == 200
    wait_run(stack, long["id"], lambda r: r["status"] == "cancelled", 120, "cancelled")
    deadline = time.monotonic() + 15
    while (left := training_processes(stack)) and time.monotonic() < deadline:
        time.sleep(1)
    assert left == [], left


def test_worker_restart_mid_run_resumes(stack: Stack) -> None:
    config = {"training": {"max_steps": 160, "save_steps": 1000, "eval_steps": None}}
    run = launch(stack, "restarted worker", config)
    wait_run(
        stack,
        run["id"],
        lambda r: r["status"] == "running" and (r["step"] or 0) >= 5,
        600,
        "training",
    )
    started = time.monotonic()
    stack.compose("restart", "worker", timeout=300)
    FACTS["restart_worker_s"] = round(time.monotonic() - started, 1)
    done = succeeded(stack, run["id"])
    assert done["attempt"] >= 2, done
    assert done["attempt_log"][0]["restarted"], done["attempt_log"]
    with stack.client() as c:
        starts = c.get(f"/api/runs/{run['id']}/events", params={"kind": "start"}).json()
    resumed = [e["data"]["resumed_from"] for e in starts if e["attempt"] >= 2]
    assert resumed and resumed[0] and "checkpoint-" in resumed[0], starts


def test_a_second_worker_box_on_its_own_queue(
    stack: Stack, workdir: Path, values: dict[str, str]
) -> None:
    """docs/deploy.md "Scale-out": docker-compose.worker.yml pointed at the first box's published
    API and Redis (this host's address, as another box would), with its own queue."""
    host = host_address()
    box_values = {
        **{
            k: values[k]
            for k in (*LOCAL_BASES, "MODELS_DIR", "DATASETS_DIR", "IMAGE_PREFIX", "IMAGE_TAG")
        },
        "CPT_API_URL": f"http://{host}:{values['PANEL_PORT']}",
        "CPT_BROKER_URL": f"redis://:{values['REDIS_PASSWORD']}@{host}:{values['REDIS_PORT']}/0",
        "CPT_WORKER_TOKEN": values["CPT_WORKER_TOKEN"],
        "CPT_WORKER_NAME": "box-2",
        "CPT_QUEUE": "box-2",
        "CPT_USE_CPU": "true",
        "WORKER_SHM_SIZE": "1gb",
    }
    box = Stack(
        f"{PROJECT}-box2",
        [ROOT / "docker-compose.worker.yml", CPU_OVERRIDE],
        write_env(workdir / "box2.env", box_values),
        workdir,
        box_values,
    )
    box.compose("down", "-v", "--remove-orphans")
    try:
        box.compose("up", "-d", "--no-build")
        box.wait_healthy(["worker"])  # its health check reaches the API and Redis
        with stack.client() as c:
            workers = {w["name"]: w for w in c.get("/api/workers").json()}
        assert workers.get("box-2", {}).get("alive") and workers["box-2"]["queue"] == "box-2", (
            workers
        )
        run = launch(stack, "on box 2", {**QUICK, "launch": {"queue": "box-2"}})
        try:
            done = succeeded(stack, run["id"])
        except AssertionError as e:
            raise AssertionError(f"{e}\n--- box 2:\n{box.logs('worker', 80)}") from None
        assert done["worker"] == "box-2", done
        where = "import os, sys; print(os.path.isdir(sys.argv[1]))"
        out_dir = done["output_dir"]
        assert (
            box.compose("exec", "-T", "worker", "python", "-c", where, out_dir).stdout.strip()
            == "True"
        )
        assert (
            stack.compose("exec", "-T", "worker", "python", "-c", where, out_dir).stdout.strip()
            == "False"
        )
    finally:
        box.compose("down", "-v", "--remove-orphans", check=False)


def finished_runs(stack: Stack) -> dict[str, dict[str, Any]]:
    with stack.client() as c:
        items = c.get("/api/runs", params={"limit": 100}).json()["items"]
    return {r["id"]: snapshot(stack, r["id"]) for r in items if r["status"] in TERMINAL}


def on_this_box(runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A succeeded run whose newest checkpoint is on the API's volume (not on box 2's)."""
    return next(
        s
        for s in runs.values()
        if s["run"]["status"] == "succeeded" and s["checkpoints"] and s["checkpoints"][-1][3]
    )


def test_down_and_up_keep_runs_metrics_logs_checkpoints(stack: Stack) -> None:
    before = finished_runs(stack)
    assert len(before) >= 4
    stack.compose("down", timeout=300)
    assert stack.compose("ps", "-q").stdout.strip() == ""
    up(stack, "restart")
    assert finished_runs(stack) == before
    demo = on_this_box(before)
    assert download(stack, demo["run"]["id"], demo["checkpoints"][-1][0])


def test_backup_and_restore_with_the_documented_commands(stack: Stack, workdir: Path) -> None:
    before = finished_runs(stack)
    backups = workdir / "backups"
    backups.mkdir()
    stack.shell(doc_block("backup"), cwd=backups)
    files = list(backups.iterdir())
    assert files and all(f.stat().st_size > 0 for f in files), files
    stack.wait_healthy(SERVICES)  # the backup restarts what it stopped
    # A new machine: no containers, no volumes; then the documented restore.
    stack.compose("down", "-v", timeout=300)
    stack.shell(doc_block("restore"), cwd=backups)
    stack.wait_healthy(SERVICES)
    assert finished_runs(stack) == before
    demo = on_this_box(before)
    assert download(stack, demo["run"]["id"], demo["checkpoints"][-1][0])
