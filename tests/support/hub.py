"""A real Hub-compatible endpoint on this machine: PyPI ``olah`` (a Hub mirror server) serving,
offline, local git repos that the tests create (``local_hub.add_repo``). ``huggingface_hub``'s own
client downloads from it (``HF_ENDPOINT``) through the Hub's revision, tree and resolve routes; no
part of ``huggingface_hub`` is mocked.

olah lives in its own venv (``~/.cache/cpt-panel-tests/olah-venv``, or ``CPT_TEST_OLAH_VENV``),
installed on first use, because it pins ``psutil<6`` and the panel's venv does not allow that.
Offline, olah answers 401 for a repo or revision it does not hold, as the Hub does for a private
or missing repo.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.panel import Panel, free_port, kill_tree, start_panel

OLAH_VERSION = "0.5.4"
#: The Hub token the hub panel's worker is given (the tests look for it in logs and answers).
HUB_TOKEN = "hf_paneltest_" + "s3cr3t" * 4
OLAH_VENV = Path(
    os.environ.get("CPT_TEST_OLAH_VENV", Path.home() / ".cache" / "cpt-panel-tests" / "olah-venv")
)


def olah_cli() -> Path:
    cli = OLAH_VENV / "bin" / "olah-cli"
    if cli.exists():
        return cli
    base = getattr(sys, "_base_executable", sys.executable)
    for cmd in (
        [base, "-m", "venv", str(OLAH_VENV)],
        [str(OLAH_VENV / "bin" / "pip"), "install", "-q", f"olah=={OLAH_VERSION}"],
    ):
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            pytest.fail(f"could not install olah ({' '.join(cmd)}):\n{done.stderr[-2000:]}")
    return cli


@dataclass
class LocalHub:
    url: str
    mirrors: Path

    def add_repo(
        self,
        repo_id: str,
        files: dict[str, bytes | Path],
        repo_type: str = "model",
        tags: tuple[str, ...] = (),
    ) -> str:
        """A git repo at ``<mirrors>/<models|datasets>/<org>/<name>`` with ``files`` committed on
        ``main`` (a Path is copied); returns the commit."""
        repo = self.mirrors / f"{repo_type}s" / repo_id
        if repo.exists():
            shutil.rmtree(repo)
        repo.mkdir(parents=True)
        for name, body in files.items():
            target = repo / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(body, Path):
                shutil.copy(body, target)
            else:
                target.write_bytes(body)
        git = ["git", "-C", str(repo), "-c", "user.email=t@example.org", "-c", "user.name=t"]
        for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "files"]):
            subprocess.run([*git, *args], check=True, capture_output=True)
        for tag in tags:
            subprocess.run([*git, "tag", tag], check=True, capture_output=True)
        head = subprocess.run(
            [*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True
        )
        return head.stdout.strip()


@pytest.fixture(scope="session")
def local_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalHub]:
    root = tmp_path_factory.mktemp("hub")
    port = free_port()
    mirrors = root / "mirrors"
    mirrors.mkdir()
    config = root / "olah.toml"
    config.write_text(
        f"""[basic]
host = "127.0.0.1"
port = {port}
repos-path = "{root / "cache"}"
hf-scheme = "https"
hf-netloc = "huggingface.co"
hf-lfs-netloc = "cdn-lfs.huggingface.co"
mirror-scheme = "http"
mirror-netloc = "127.0.0.1:{port}"
mirror-lfs-netloc = "127.0.0.1:{port}"
mirrors-path = ["{mirrors}"]

[accessibility]
offline = true
"""
    )
    log = (root / "olah.log").open("wb")
    proc = subprocess.Popen(
        [str(olah_cli()), "-c", str(config)],
        cwd=root, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(url + "/", timeout=1)
            break
        except httpx.HTTPError:
            if proc.poll() is not None or time.monotonic() > deadline:
                kill_tree(proc)
                pytest.fail(f"olah did not start:\n{(root / 'olah.log').read_text()[-3000:]}")
            time.sleep(0.2)
    try:
        yield LocalHub(url, mirrors)
    finally:
        kill_tree(proc)
        log.close()


@pytest.fixture(scope="module")
def hub_panel(
    tmp_path_factory: pytest.TempPathFactory,
    redis_url: str,
    tiny_assets: dict[str, Path],
    local_hub: LocalHub,
) -> Iterator[Panel]:
    """API + one worker whose downloads go to ``local_hub`` with ``HUB_TOKEN`` set."""
    data_dir = tmp_path_factory.mktemp("hub-panel")
    env = {"CPT_HUB_ENDPOINT": local_hub.url, "CPT_HUB_TOKEN": HUB_TOKEN}
    p = start_panel(
        data_dir, broker_url=redis_url, allowed_roots=[tiny_assets["root"]], extra_env=env
    )
    try:
        p.start_worker(concurrency=1)
        yield p
    finally:
        p.stop()
