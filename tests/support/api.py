"""Fixtures for the API tests: one real server (``python -m cpt_cli.main serve``) shared
by the API test modules (tests must not assume an empty database).

No torch: the "models" are directories with a config.json, which is all the API checks.
Registered as a plugin by tests/conftest.py, so test modules just name the fixtures.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from cpt_contract.protocol import LEASE_HEADER
from tests.support.panel import Panel, start_panel


def make_assets(root: Path) -> dict[str, Path]:
    """Stand-ins for a model, a tokenizer and a corpus (the API only checks they exist)."""
    model, tok, corpus = root / "models" / "tiny-llama", root / "tok" / "extended", root / "corpus"
    for d in (model, tok, corpus):
        d.mkdir(parents=True, exist_ok=True)
    (model / "config.json").write_text(json.dumps({"model_type": "llama"}))
    (model / "pytorch_model.bin").write_bytes(b"")  # a model dir has weights (only named here)
    (tok / "tokenizer.json").write_text("{}")
    (tok / "vocab.txt").write_text("a\nb\n")  # a tokenizer file, not a corpus
    (corpus / "kn.txt").write_text("ಕನ್ನಡ ಪಠ್ಯ\n" * 10)
    return {"root": root, "model": model, "tokenizer": tok, "corpus": corpus}


def make_demo(data_dir: Path) -> None:
    """What the tiny-demo preset points at (normally built by the worker on first start)."""
    demo = data_dir / "demo"
    for sub, name in (("tiny-llama", "config.json"), ("tokenizer-extended", "tokenizer.json")):
        (demo / sub).mkdir(parents=True, exist_ok=True)
        (demo / sub / name).write_text('{"model_type": "llama"}' if sub == "tiny-llama" else "{}")
    (demo / "tiny-llama" / "model.safetensors").write_bytes(b"")
    (demo / "corpus").mkdir(parents=True, exist_ok=True)
    (demo / "corpus" / "a.txt").write_text("hello world\n")


def launch(tmp: Path, extra_env: dict[str, str] | None = None) -> tuple[Panel, dict[str, Path]]:
    assets = make_assets(tmp / "assets")
    data_dir = tmp / "data"
    make_demo(data_dir)
    panel = start_panel(
        data_dir, broker_url=None, allowed_roots=[assets["root"]], extra_env=extra_env
    )
    return panel, assets


_shared: dict[str, tuple[Panel, dict[str, Path]]] = {}


@pytest.fixture(scope="module")
def api(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Panel, dict[str, Path]]:
    """The shared server, started on first use and stopped when the session ends.

    (A fixture imported into several modules is a separate fixture in each, so the sharing
    is done here rather than by the fixture's scope.)
    """
    if "api" not in _shared:
        panel, assets = launch(tmp_path_factory.mktemp("api"))
        _shared["api"] = (panel, assets)
        request.config.add_cleanup(panel.stop)
    return _shared["api"]


def worker_client(panel: Panel, lease: str | None = None) -> httpx.Client:
    """The worker token; with the lease a claim answered, for that run's reports."""
    client = panel.client(token=panel.worker_token)
    if lease:
        client.headers[LEASE_HEADER] = lease
    return client


def create_run(client: httpx.Client, **config: Any) -> dict[str, Any]:
    r = client.post("/api/runs", json={"preset": "tiny-demo", "config": config})
    assert r.status_code == 201, r.text
    return r.json()


def claimed_run(
    panel: Panel, worker: str = "w1", queue: str | None = None, name: str | None = None
) -> dict[str, Any]:
    """A run a (pretend) worker has claimed and reported running; ``lease`` is its claim's.
    ``queue``: one no real worker serves, so none races the pretend one to the claim."""
    with panel.client() as c, worker_client(panel) as w:
        config: dict[str, Any] = {"training": {"max_steps": 40}}
        if queue is not None:
            config["launch"] = {"queue": queue}
        r = c.post("/api/runs", json={"preset": "tiny-demo", "config": config, "name": name})
        assert r.status_code == 201, r.text
        run = r.json()
        r = w.post(f"/api/internal/runs/{run['id']}/claim", json={"attempt": 1, "worker": worker})
        assert r.status_code == 200, r.text
        lease = r.json()["lease"]
        r = w.post(
            f"/api/internal/runs/{run['id']}/status",
            json={"attempt": 1, "status": "running"},
            headers={LEASE_HEADER: lease},
        )
        assert r.status_code == 200, r.text
        return {**c.get(f"/api/runs/{run['id']}").json(), "lease": lease}


class SSEReader:
    """Reads server-sent events off one streaming response (pings are comments, skipped)."""

    def __init__(self, response: httpx.Response) -> None:
        self._lines = response.iter_lines()

    def read(self, want: int, timeout: float = 10) -> list[tuple[str, Any]]:
        """Up to ``want`` events; gives up after ``timeout`` (checked per line: use ?ping=1)."""
        out: list[tuple[str, Any]] = []
        event, data = "message", []
        deadline = time.monotonic() + timeout
        for line in self._lines:
            if time.monotonic() > deadline:
                break
            if line.startswith(":"):
                continue
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
            elif line == "" and data:
                out.append((event, json.loads("\n".join(data))))
                event, data = "message", []
                if len(out) >= want:
                    break
        return out


# --- an in-process panel (the real app through TestClient, a real SQLite database) -----------

INPROC_TOKEN, INPROC_WORKER_TOKEN = "inproc-token-0123456789", "inproc-worker-0123456789"
INPROC_AUTH = {"Authorization": f"Bearer {INPROC_TOKEN}"}
INPROC_WORKER = {"Authorization": f"Bearer {INPROC_WORKER_TOKEN}"}


def settings_for(tmp_path: Path, *roots: Path) -> Any:
    """Settings of an in-process panel whose data dir is ``tmp_path/data``, ``roots`` allowed."""
    from cpt_contract.settings import Settings

    return Settings(
        data_dir=tmp_path / "data",
        api_token=INPROC_TOKEN,
        worker_token=INPROC_WORKER_TOKEN,
        allowed_roots=list(roots),
        build_demo=False,
    )


def client_for(settings: Any) -> Any:
    """The real app on ``settings`` (a ``TestClient``: enter it, the lifespan runs the
    migrations). Imported here, not at the top: this plugin loads for every tier."""
    from fastapi.testclient import TestClient

    from backend.api.deps import app_settings
    from backend.main import create_app

    make_demo(settings.resolved_data_dir)
    app = create_app(settings)
    app.dependency_overrides[app_settings] = lambda: settings
    return TestClient(app, headers=INPROC_AUTH)
