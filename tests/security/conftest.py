"""The security tier's in-process panel: the real app (``TestClient``), a real SQLite database,
a data dir holding the panel's real state files, and an allowed root with real assets."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from backend.api.deps import app_settings
from backend.main import create_app
from cpt_contract.settings import Settings
from tests.support.api import make_assets, make_demo

TOKEN, WORKER_TOKEN = "security-token-0123456789", "security-worker-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
WORKER = {"Authorization": f"Bearer {WORKER_TOKEN}"}


@pytest.fixture
def assets(tmp_path: Path) -> dict[str, Path]:
    return make_assets(tmp_path / "assets")


def settings_for(tmp_path: Path, *roots: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        api_token=TOKEN,
        worker_token=WORKER_TOKEN,
        allowed_roots=list(roots),
        build_demo=False,
    )


@pytest.fixture
def settings(tmp_path: Path, assets: dict[str, Path]) -> Settings:
    return settings_for(tmp_path, assets["root"])


def client_for(settings: Settings) -> TestClient:
    make_demo(settings.resolved_data_dir)
    app = create_app(settings)
    app.dependency_overrides[app_settings] = lambda: settings
    return TestClient(app, headers=AUTH)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with client_for(settings) as c:
        yield c
