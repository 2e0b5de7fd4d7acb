"""All settings of the panel, read once from the environment (prefix ``CPT_``).

This module is the only place that names an environment variable the code reads;
``tests/test_compose.py`` checks that the compose file and ``.env.example`` agree with it.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from cpt_contract.limits import DEFAULT_QUEUE, QUEUE_PATTERN
from cpt_contract.outcomes import DEFAULT_FUTILE_ATTEMPTS
from cpt_contract.roots import Roots
from cpt_contract.slurm import TIME_PATTERN

#: Shortest token accepted (a generated one has 32 characters).
MIN_TOKEN_LENGTH = 16
#: A token may be given as its SHA-256 instead (``sha256:<64 hex>``): the API compares hashes.
TOKEN_HASH = re.compile(r"^sha256:[0-9a-f]{64}$")
#: ``CPT_SECRET_KEY``: 32 bytes as hex (the stored secrets' key, ``backend/core/crypto.py``).
SECRET_KEY = re.compile(r"^[0-9a-fA-F]{64}$")


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def write_private_once(path: Path, text: str) -> str:
    """Create ``path`` (mode 0600 from the start) holding ``text``, unless it exists; returns
    what the file holds. Written aside and hard-linked into place, so a racing process never
    reads a half-written file and both end up with the same content."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.link(tmp, path)
    except FileExistsError:
        return path.read_text().strip()
    finally:
        tmp.unlink(missing_ok=True)
    return text


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CPT_", env_file=".env", extra="ignore")

    data_dir: Path = Field(
        default=Path("./data"),
        description="Runs, logs, checkpoints, the SQLite database and the demo assets live here.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL. Default: SQLite in the data dir. PostgreSQL works too.",
    )
    broker_url: str | None = Field(
        default=None,
        description="Celery broker URL (redis://...). Default: an embedded filesystem broker.",
    )
    api_token: str | None = Field(
        default=None,
        description="Bearer token for the browser and CLI. Default: generated once into the data dir.",
    )
    worker_token: str | None = Field(
        default=None,
        description="Token the workers use on /api/internal. Default: generated once into the data dir.",
    )
    allowed_roots: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated roots for models, tokenizers, datasets and outputs (of the data dir, only runs, jobs, models, datasets and the demo: never its keys, tokens or database).",
    )
    host: str = Field(default="127.0.0.1", description="Address the API binds to.")
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated addresses of reverse proxies whose X-Forwarded-For is "
        "believed (the client address of rate limits and logs). Default: none, not even loopback.",
    )
    port: int = Field(default=8000, description="Port the API binds to.")
    api_url: str | None = Field(
        default=None,
        description="Where workers and the CLI reach the API. Default: http://{host}:{port}.",
    )
    queue: str = Field(
        default=DEFAULT_QUEUE,
        pattern=QUEUE_PATTERN,
        description="Celery queue this worker consumes (one per GPU box).",
    )
    worker_concurrency: int = Field(
        default=1, ge=1, description="Runs one worker box takes at once."
    )
    worker_name: str | None = Field(
        default=None, description="Worker name. Default: the host name."
    )
    heartbeat_seconds: float = Field(default=5.0, gt=0, description="Worker heartbeat period.")
    worker_lost_seconds: float = Field(
        default=60.0, gt=0, description="A run whose worker is silent this long is marked failed."
    )
    cancel_grace_seconds: float = Field(
        default=10.0, ge=0, description="SIGTERM to SIGKILL grace when a run is cancelled."
    )
    stop_grace_seconds: float = Field(
        default=120.0,
        ge=0,
        description="Worker stop (SIGTERM): time the ranks get to save a checkpoint before SIGKILL.",
    )
    low_disk_gb: float = Field(
        default=1.0,
        ge=0,
        description="A worker's data, runs or cache volume with less free space than this makes "
        "/api/health say degraded, naming the worker and the volume.",
    )
    futile_attempts: int = Field(
        default=DEFAULT_FUTILE_ATTEMPTS,
        ge=0,
        le=100,
        description="Attempts (or Slurm jobs) in a row that end without training past the step "
        "where the one before ended, after which a run is not restarted or resubmitted (0: no "
        "limit but max_restarts / CPT_SLURM_MAX_REQUEUES).",
    )
    unrecorded_seconds: float = Field(
        default=120.0,
        gt=0,
        description="The API could not record a run's reports this long (its database is "
        "full, or it is unreachable): the worker stops the training (saving a checkpoint) "
        "instead of letting it run unrecorded.",
    )
    resend_seconds: float = Field(
        default=60.0,
        gt=0,
        description="A queued run whose message was sent but not claimed this long is resent.",
    )
    stall_seconds: float | None = Field(
        default=None,
        gt=0,
        description="No training step this long fails the run as stalled "
        "(default: max(10 x median step time, 600 s)).",
    )
    ship_interval_seconds: float = Field(
        default=0.1, gt=0, description="How often the worker ships new events and log bytes."
    )
    use_cpu: bool | None = Field(
        default=None, description="Force CPU training. Default: CPU when no GPU is visible."
    )
    build_demo: bool = Field(
        default=True, description="Build the tiny-demo model and corpus on first start."
    )
    # --- the Slurm executor (a worker on a login node hands runs to sbatch) -----------------
    executor: Literal["local", "slurm"] = Field(
        default="local",
        description="How this worker runs training: local (torchrun here) or slurm (sbatch).",
    )
    slurm_partition: str | None = Field(
        default=None, description="Slurm partition. Default: the cluster's default partition."
    )
    slurm_account: str | None = Field(default=None, description="Slurm account (--account).")
    slurm_qos: str | None = Field(default=None, description="Slurm QoS (--qos).")
    slurm_time_limit: str | None = Field(
        default=None,
        pattern=TIME_PATTERN,
        description="Default --time of a job (minutes, H:M:S or D-H:M:S). Default: the partition's.",
    )
    slurm_extra_sbatch: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Extra #SBATCH options, separated by ';' (e.g. --constraint=a100;--exclusive).",
    )
    slurm_gpus: bool = Field(
        default=True,
        description="Compute nodes have GPUs: --gpus-per-node=nproc_per_node. false: CPU nodes.",
    )
    slurm_signal_grace_seconds: int = Field(
        default=120,
        ge=10,
        le=3600,
        description="--signal=B:TERM@N: seconds before the time limit when training saves and stops.",
    )
    slurm_max_requeues: int = Field(
        default=3,
        ge=0,
        le=100,
        description="How often a run that hit the time limit or was preempted is resubmitted.",
    )
    slurm_python: str | None = Field(
        default=None,
        description="Python on the compute nodes. Default: the worker's own (shared filesystem).",
    )
    slurm_poll_seconds: float = Field(
        default=1.0, gt=0, description="How often the worker asks Slurm about its jobs."
    )
    frontend_dist: Path | None = Field(
        default=None, description="Built frontend to serve at /. Default: frontend/dist."
    )
    # --- the Hub (download jobs) -----------------------------------------
    hub_endpoint: str | None = Field(
        default=None,
        description="Hugging Face Hub endpoint for downloads (a mirror). Default: huggingface.co.",
    )
    hub_token: str | None = Field(
        default=None,
        description="Hub token for gated/private repos, given to the download tool in its "
        "environment only (never an argv, a log or an answer). A token set in the panel's "
        "Settings (stored encrypted) comes first; the API checks this one, a worker uses its "
        "own when the panel has none.",
    )
    secret_key: str | None = Field(
        default=None,
        description="Key that encrypts the secrets the panel stores (the Hub token set in "
        "Settings): 32 random bytes as 64 hex digits ($(openssl rand -hex 32)). Default: "
        "generated once into the data dir (.secret_key); set it to keep the key off the "
        "database's disk. Changing it makes stored secrets unreadable: set them again.",
    )
    download_reserve_bytes: int = Field(
        default=2 * 1024**3,
        ge=0,
        description="A download starts only if what it fetches leaves this much disk free.",
    )
    # --- notifications (backend/services/notifications/) ---
    public_url: str | None = Field(
        default=None,
        description="The panel's address as people open it, for the links in notifications. "
        "Default: the API URL.",
    )
    smtp_host: str | None = Field(default=None, description="SMTP server for e-mail notifications.")
    smtp_port: int = Field(default=587, ge=1, le=65535, description="SMTP port.")
    smtp_user: str | None = Field(default=None, description="SMTP login (empty: no login).")
    smtp_password: str | None = Field(
        default=None,
        description="SMTP password; one set in the panel (stored encrypted) comes first.",
    )
    smtp_from: str | None = Field(default=None, description="Sender address of notifications.")
    smtp_security: Literal["starttls", "tls", "none"] = Field(
        default="starttls",
        description="starttls (port 587), tls (implicit, port 465) or none (a local relay).",
    )
    notify_attempts: int = Field(
        default=8, ge=1, le=100, description="Tries of one notification before it is given up."
    )
    notify_backoff_seconds: float = Field(
        default=15.0,
        gt=0,
        le=3600,
        description="Wait after a failed delivery, doubled after each further failure.",
    )

    @field_validator("api_token", "worker_token", mode="before")
    @classmethod
    def _token_form(cls, value: object) -> object:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None  # empty in .env: generated into the data dir
        if not isinstance(value, str):
            return value
        value = value.strip()
        if value.startswith("sha256:"):
            if not TOKEN_HASH.match(value):
                raise ValueError("a hashed token is sha256:<64 lowercase hex digits>")
            return value
        if len(value) < MIN_TOKEN_LENGTH:
            raise ValueError(
                f"the token has {len(value)} characters: use at least {MIN_TOKEN_LENGTH}, "
                "e.g. $(openssl rand -hex 24)"
            )
        return value

    @field_validator("secret_key", mode="before")
    @classmethod
    def _key_form(cls, value: object) -> object:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None  # empty in .env: generated into the data dir
        if isinstance(value, str) and not SECRET_KEY.match(value.strip()):
            raise ValueError(
                "the secret key is 64 hex digits (32 random bytes): $(openssl rand -hex 32)"
            )
        return value.strip() if isinstance(value, str) else value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_proxies(cls, value: object) -> object:
        if isinstance(value, str):
            return [p.strip() for p in value.split(",") if p.strip()]
        return value

    @field_validator("allowed_roots", mode="before")
    @classmethod
    def _split_roots(cls, value: object) -> object:
        if isinstance(value, str):
            return [Path(p.strip()) for p in value.split(",") if p.strip()]
        return value

    @field_validator(
        "slurm_partition",
        "slurm_account",
        "slurm_qos",
        "slurm_time_limit",
        "slurm_python",
        "stall_seconds",
        "public_url",
        "smtp_host",
        "smtp_user",
        "smtp_password",
        "smtp_from",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # Compose passes unset optional variables as "": the same as not set.
        return None if value == "" else value

    @field_validator("slurm_extra_sbatch", mode="before")
    @classmethod
    def _split_sbatch(cls, value: object) -> object:
        if isinstance(value, str):
            return [p.strip() for p in value.replace("\n", ";").split(";") if p.strip()]
        return value

    @field_validator("slurm_extra_sbatch")
    @classmethod
    def _check_sbatch(cls, value: list[str]) -> list[str]:
        for item in value:
            if not item.startswith("-"):
                raise ValueError(f"slurm_extra_sbatch: {item!r} is not an sbatch option (-x/--x)")
        return value

    # --- derived values -------------------------------------------------
    @property
    def resolved_data_dir(self) -> Path:
        return self.data_dir.expanduser().resolve()

    @property
    def runs_dir(self) -> Path:
        return self.resolved_data_dir / "runs"

    @property
    def jobs_dir(self) -> Path:
        """One directory per job (its log, its result.json, what it writes)."""
        return self.resolved_data_dir / "jobs"

    @property
    def data_cache_dir(self) -> Path:
        """Tokenized block caches, shared by every run of this box (keyed by content)."""
        return self.resolved_data_dir / "cache"

    @property
    def models_dir(self) -> Path:
        """Where Hub downloads and GGUF imports of models land (``<data dir>/models``)."""
        return self.resolved_data_dir / "models"

    @property
    def datasets_dir(self) -> Path:
        """Where a clean job puts a new dataset when it names no other datasets root, and where
        Hub downloads of datasets land."""
        return self.resolved_data_dir / "datasets"

    @property
    def demo_dir(self) -> Path:
        return self.resolved_data_dir / "demo"

    @property
    def sqlalchemy_url(self) -> str:
        return self.database_url or f"sqlite:///{self.resolved_data_dir / 'cpt-panel.db'}"

    @property
    def celery_broker_url(self) -> str:
        return self.broker_url or "filesystem://"

    @property
    def effective_api_url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        return (self.api_url or f"http://{host}:{self.port}").rstrip("/")

    @property
    def roots(self) -> Roots:
        """Where user-supplied paths are accepted: what users made in the data dir (runs, job
        outputs, cleaned datasets, the demo, the models and datasets downloads or imports
        brought) and ``allowed_roots``; never the rest of the data dir (keys, tokens, database,
        broker, caches, a download's ``.partial`` dir aside), nor a SQLite database kept
        elsewhere."""
        shared = (self.runs_dir, self.jobs_dir, self.datasets_dir, self.demo_dir, self.models_dir)
        state = [self.resolved_data_dir]
        url = self.sqlalchemy_url
        if url.startswith("sqlite:///"):
            db = Path(url.removeprefix("sqlite:///")).resolve()
            state += [db, Path(f"{db}-wal"), Path(f"{db}-shm"), Path(f"{db}-journal")]
        allowed = [*shared, *(r.expanduser().resolve() for r in self.allowed_roots)]
        return Roots(tuple(allowed), tuple(state), shared)

    def _explicit(self, name: str) -> str | None:
        if name not in ("api_token", "worker_token"):
            raise KeyError(name)
        return self.api_token if name == "api_token" else self.worker_token

    def secret(self, name: str) -> str:
        """The API or worker token itself (what a client sends): from the environment, else
        generated once into ``<data dir>/.<name>`` (mode 0600, for the CLI on the same box)."""
        explicit = self._explicit(name)
        if explicit and explicit.startswith("sha256:"):
            raise ValueError(
                f"CPT_{name.upper()} holds only a hash: a client needs the token itself "
                "(set the plain token where this runs)"
            )
        if explicit:
            return explicit
        path = self.resolved_data_dir / f".{name}"
        if path.exists():
            if path.stat().st_mode & 0o077:
                path.chmod(0o600)
            return path.read_text().strip()
        return write_private_once(path, secrets.token_urlsafe(24))

    def secret_digest(self, name: str) -> bytes:
        """SHA-256 of the token: what the API compares a presented token's hash against."""
        explicit = self._explicit(name)
        if explicit and explicit.startswith("sha256:"):
            return bytes.fromhex(explicit.removeprefix("sha256:"))
        return token_digest(self.secret(name))


@lru_cache
def get_settings() -> Settings:
    return Settings()
