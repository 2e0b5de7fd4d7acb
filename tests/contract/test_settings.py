"""Settings: the CPT_ environment, derived paths, and tokens kept on disk."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from cpt_contract.settings import Settings


def test_env_prefix_and_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CPT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CPT_ALLOWED_ROOTS", f"{tmp_path / 'models'}, {tmp_path / 'datasets'}")
    monkeypatch.delenv("CPT_DATABASE_URL", raising=False)
    monkeypatch.delenv("CPT_BROKER_URL", raising=False)
    s = Settings(_env_file=None)
    # Of the data dir, only what users made there: never the dir itself (keys, database).
    data = tmp_path.resolve()
    assert list(s.roots) == [
        data / "runs",
        data / "jobs",
        data / "datasets",  # cleaned datasets, downloaded datasets
        data / "demo",
        data / "models",  # what download and import jobs bring
        (tmp_path / "models").resolve(),
        (tmp_path / "datasets").resolve(),
    ]
    assert s.roots.state == (
        data,
        *(data / f"cpt-panel.db{x}" for x in ("", "-wal", "-shm", "-journal")),
    )
    assert s.sqlalchemy_url == f"sqlite:///{tmp_path.resolve() / 'cpt-panel.db'}"
    assert s.celery_broker_url == "filesystem://"
    assert s.effective_api_url == "http://127.0.0.1:8000"


def test_generated_tokens_persist_and_differ(tmp_path: Path) -> None:
    s = Settings(_env_file=None, data_dir=tmp_path, api_token=None, worker_token=None)
    api, worker = s.secret("api_token"), s.secret("worker_token")
    assert api != worker and len(api) >= 24
    # A second process (a new Settings) reads the same tokens back.
    again = Settings(_env_file=None, data_dir=tmp_path, api_token=None, worker_token=None)
    assert again.secret("api_token") == api
    assert (tmp_path / ".api_token").stat().st_mode & 0o077 == 0


def test_explicit_token_wins(tmp_path: Path) -> None:
    s = Settings(_env_file=None, data_dir=tmp_path, api_token="abc-0123456789abcdef")
    assert s.secret("api_token") == "abc-0123456789abcdef"
    assert not (tmp_path / ".api_token").exists()


def test_tokens_have_a_minimum_length_and_may_be_given_hashed(tmp_path: Path) -> None:
    import hashlib

    with pytest.raises(ValidationError, match="at least 16"):
        Settings(_env_file=None, data_dir=tmp_path, api_token="short")
    with pytest.raises(ValidationError, match="sha256:<64"):
        Settings(_env_file=None, data_dir=tmp_path, api_token="sha256:abc")
    token = "a-long-enough-token-123"
    digest = hashlib.sha256(token.encode()).hexdigest()
    hashed = Settings(_env_file=None, data_dir=tmp_path, api_token=f"sha256:{digest}")
    plain = Settings(_env_file=None, data_dir=tmp_path, api_token=token)
    assert hashed.secret_digest("api_token") == plain.secret_digest("api_token")
    with pytest.raises(ValueError, match="only a hash"):
        hashed.secret("api_token")  # a client needs the token itself
    assert Settings(_env_file=None, data_dir=tmp_path, api_token="").api_token is None


def test_bind_all_still_gives_a_reachable_api_url() -> None:
    assert (
        Settings(_env_file=None, host="0.0.0.0", port=9000).effective_api_url
        == "http://127.0.0.1:9000"
    )
