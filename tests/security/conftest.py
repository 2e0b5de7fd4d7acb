"""The security tier's in-process panel: the real app (``TestClient``), a real SQLite database,
a data dir holding the panel's real state files, and an allowed root with real assets."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cpt_contract.settings import Settings
from tests.support.api import (
    INPROC_AUTH,
    INPROC_TOKEN,
    INPROC_WORKER,
    INPROC_WORKER_TOKEN,
    client_for,
    make_assets,
    settings_for,
)

TOKEN, WORKER_TOKEN = INPROC_TOKEN, INPROC_WORKER_TOKEN
AUTH, WORKER = INPROC_AUTH, INPROC_WORKER


@pytest.fixture
def assets(tmp_path: Path) -> dict[str, Path]:
    return make_assets(tmp_path / "assets")


@pytest.fixture
def settings(tmp_path: Path, assets: dict[str, Path]) -> Settings:
    return settings_for(tmp_path, assets["root"])


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with client_for(settings) as c:
        yield c
