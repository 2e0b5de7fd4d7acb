"""A real MLflow tracking server on this machine, for the trackers' tests: PyPI ``mlflow`` (the
full server) in its own venv (``~/.cache/cpt-panel-tests/mlflow-venv``, or
``CPT_TEST_MLFLOW_VENV``), installed on first use; the panel's venv has only ``mlflow-skinny``,
the client the HF Trainer's callback and these tests use."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.panel import free_port, kill_tree

MLFLOW_VERSION = "3.18.0"
MLFLOW_VENV = Path(
    os.environ.get(
        "CPT_TEST_MLFLOW_VENV", Path.home() / ".cache" / "cpt-panel-tests" / "mlflow-venv"
    )
)


def mlflow_cli() -> Path:
    cli = MLFLOW_VENV / "bin" / "mlflow"
    if cli.exists():
        return cli
    base = getattr(sys, "_base_executable", sys.executable)
    for cmd in (
        [base, "-m", "venv", str(MLFLOW_VENV)],
        [str(MLFLOW_VENV / "bin" / "pip"), "install", "-q", f"mlflow=={MLFLOW_VERSION}"],
    ):
        subprocess.run(cmd, check=True, timeout=900)
    return cli


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The tracking URI of a running ``mlflow server`` (SQLite store, local artifacts)."""
    root = tmp_path_factory.mktemp("mlflow")
    port = free_port()
    log = open(root / "server.log", "ab")
    proc = subprocess.Popen(
        [
            str(mlflow_cli()),
            "server",
            "--host=127.0.0.1",
            f"--port={port}",
            "--workers=1",
            f"--backend-store-uri=sqlite:///{root / 'mlflow.db'}",
            f"--default-artifact-root={root / 'artifacts'}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    try:
        while True:
            if proc.poll() is not None:
                raise AssertionError((root / "server.log").read_text()[-3000:])
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, (root / "server.log").read_text()[-3000:]
            time.sleep(0.5)
        yield url
    finally:
        kill_tree(proc)
