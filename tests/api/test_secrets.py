"""The secret store and the Hub token: values encrypted at rest under the panel's key (a changed
key, a value moved to another name or a flipped bit is refused, never decrypted into garbage);
the token checked on save against a real HTTP endpoint (``tests/support/hub_api.py``: the Hub's
account routes, which olah does not serve), never in an answer, a 422, the database's text or a
log; handed to a download job's claim and from there to the tool's environment only."""

from __future__ import annotations

import json
import logging
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from backend.core import crypto
from backend.core.db import get_engine
from backend.services import secrets
from cpt_contract.protocol import JobClaimOut
from cpt_contract.settings import Settings
from tests.support.api import INPROC_WORKER, client_for, settings_for
from tests.support.hub_api import HubApi
from worker.agent.jobs import tool_env

TOKEN = "hf_" + "ValidPanelToken" * 2
OTHER = "hf_" + "SomeoneElses" * 3


def test_sealed_values_open_only_with_their_key_and_name() -> None:
    key, other = bytes(range(32)), bytes(32)
    sealed = crypto.seal(key, "hf_secret ಕನ್ನಡ", context="hub_token")
    assert "hf_secret" not in sealed and sealed.startswith("v2.")
    assert crypto.unseal(key, sealed, context="hub_token") == "hf_secret ಕನ್ನಡ"
    # Random nonces: the same value never seals to the same text.
    assert crypto.seal(key, "hf_secret ಕನ್ನಡ", "hub_token") != sealed
    with pytest.raises(crypto.Undecryptable):
        crypto.unseal(other, sealed, context="hub_token")
    with pytest.raises(crypto.Undecryptable):
        crypto.unseal(key, sealed, context="smtp.password")
    raw = bytearray(crypto.base64.urlsafe_b64decode(sealed[3:]))
    raw[14] ^= 1  # one bit of the ciphertext
    flipped = "v2." + crypto.base64.urlsafe_b64encode(bytes(raw)).decode()
    with pytest.raises(crypto.Undecryptable):
        crypto.unseal(key, flipped, context="hub_token")
    assert crypto.unseal(key, crypto.seal(key, "", "x"), "x") == ""
    assert crypto.key_id(key) != crypto.key_id(other)


def test_the_store_keeps_values_encrypted_and_a_new_key_cannot_read_them(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    with client_for(settings):  # the lifespan migrates the database
        pass
    with Session(get_engine(settings)) as session:
        secrets.put(settings, session, "smtp.password", "p@ss word", meta={"host": "mail"})
        session.commit()
        assert secrets.get(settings, session, "smtp.password") == "p@ss word"
        info = secrets.info(settings, session, "smtp.password")
        assert info and info.readable and info.meta == {"host": "mail"}
        assert "p@ss" not in info.model_dump_json()
        assert secrets.get(settings, session, "nothing") is None
        with pytest.raises(ValueError):
            secrets.put(settings, session, "Bad Name", "x")
    # The key was generated once into the data dir's state, private, which no user path reaches.
    key_file = settings.resolved_data_dir / ".secret_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert not settings.roots.admits(key_file)
    db = sqlite3.connect(settings.resolved_data_dir / "cpt-panel.db")
    (sealed,) = db.execute("SELECT sealed FROM secrets WHERE name='smtp.password'").fetchone()
    assert "p@ss" not in sealed
    assert b"p@ss" not in (settings.resolved_data_dir / "cpt-panel.db").read_bytes()
    # Another key (CPT_SECRET_KEY set later): unreadable, said so, never garbage.
    rekeyed = settings.model_copy(update={"secret_key": "ab" * 32})
    with Session(get_engine(settings)) as session:
        info = secrets.info(rekeyed, session, "smtp.password")
        assert info and not info.readable
        with pytest.raises(secrets.SecretUnreadable, match="set it again"):
            secrets.get(rekeyed, session, "smtp.password")
        assert secrets.delete(session, "smtp.password") and not secrets.delete(session, "x")
        session.commit()


def test_a_secret_key_setting_is_64_hex_digits() -> None:
    assert Settings(_env_file=None, secret_key="").secret_key is None  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="openssl rand -hex 32"):
        Settings(_env_file=None, secret_key="short")  # type: ignore[call-arg]


@pytest.fixture
def hub_client(tmp_path: Path, hub_api: HubApi) -> Iterator[TestClient]:
    hub_api.accounts.users.update({TOKEN: "alice", OTHER: "bob"})
    hub_api.accounts.repos.update(
        {
            "org/open": {},
            "meta-llama/Gated-1B": {"gated": True, "readers": ["bob"]},
        }
    )
    settings = settings_for(tmp_path).model_copy(update={"hub_endpoint": hub_api.url})
    with client_for(settings) as c:
        yield c


def test_the_hub_token_is_checked_on_save_and_never_answered(
    hub_client: TestClient, hub_api: HubApi, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    c = hub_client
    assert c.get("/api/settings/hub").json() == {
        "set": False, "source": None, "readable": True, "updated_at": None,
        "endpoint": hub_api.url, "check": None,
    }  # fmt: skip
    assert c.get("/api/settings/hub", headers={"Authorization": ""}).status_code == 401
    # A token the Hub refuses: 422 at the field, nothing stored.
    r = c.put("/api/settings/hub/token", json={"token": "hf_" + "Wrong" * 8})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "token"], r.text
    assert "refused the token" in r.text and "Wrong" not in r.text
    assert c.get("/api/settings/hub").json()["set"] is False
    # Malformed input: 422s at their field that never echo the token.
    for body, field in (
        ({"token": "hf_two words"}, "token"),
        ({"token": TOKEN, "repo": "not a repo"}, "repo"),
        ({"token": 12345678901234}, "token"),
        ({"tokn": TOKEN}, "tokn"),
    ):
        r = c.put("/api/settings/hub/token", json=body)
        assert r.status_code == 422, r.text
        assert field in [e["loc"][-1] for e in r.json()["detail"]], r.text
        assert "two words" not in r.text and TOKEN not in r.text and "12345678901234" not in r.text
    # A valid token: stored, answered as who it is, never as itself.
    r = c.put("/api/settings/hub/token", json={"token": f"  {TOKEN}\n", "repo": "org/open"})
    assert r.status_code == 200, r.text
    state = r.json()
    assert state["set"] and state["source"] == "panel" and state["readable"]
    assert state["check"]["result"] == "valid" and state["check"]["user"] == "alice"
    assert state["check"]["message"] == "valid as user alice, with access to org/open"
    assert hub_api.accounts.requests[-1]["token"] == TOKEN  # the stripped token reached the Hub
    # A gated repo this account has not accepted: stored, said so.
    r = c.post("/api/settings/hub/check", json={"repo": "meta-llama/Gated-1B"})
    assert r.json()["check"]["result"] == "no_access"
    assert "no access to meta-llama/Gated-1B (HTTP 403" in r.json()["check"]["message"]
    assert c.get("/api/settings/hub").json()["check"]["result"] == "no_access"
    r = c.post("/api/settings/hub/check", json={"repo": "org/missing"})
    assert "HTTP 404" in r.json()["check"]["message"]
    # Replaced by another account's token, which may read the gated repo.
    r = c.put("/api/settings/hub/token", json={"token": OTHER, "repo": "meta-llama/Gated-1B"})
    assert r.json()["check"]["user"] == "bob" and r.json()["check"]["result"] == "valid"
    every_answer = "".join(
        c.get(p).text for p in ("/api/settings/hub", "/api/jobs", "/openapi.json", "/api/health")
    )
    assert TOKEN not in every_answer and OTHER not in every_answer
    assert TOKEN not in caplog.text and OTHER not in caplog.text
    # Deleted: not set (this API has no CPT_HUB_TOKEN).
    assert c.delete("/api/settings/hub/token").json()["set"] is False
    r = c.post("/api/settings/hub/check", json={})
    assert r.status_code == 422 and "no Hub token is set" in r.text


def test_an_endpoint_that_cannot_check_stores_the_token_unchecked(tmp_path: Path) -> None:
    # Nothing listens on this port: the check says so, and the token is kept.
    settings = settings_for(tmp_path).model_copy(update={"hub_endpoint": "http://127.0.0.1:9"})
    with client_for(settings) as c:
        r = c.put("/api/settings/hub/token", json={"token": TOKEN})
        assert r.status_code == 200, r.text
        assert r.json()["check"]["result"] == "unchecked"
        assert r.json()["check"]["message"].startswith("could not check at http://127.0.0.1:9")


def test_a_download_claim_carries_the_token_to_the_tool_environment_only(
    hub_client: TestClient, tmp_path: Path
) -> None:
    c = hub_client
    assert c.put("/api/settings/hub/token", json={"token": TOKEN}).status_code == 200
    job = c.post("/api/jobs", json={"kind": "download", "params": {"repo_id": "org/open"}})
    assert job.status_code == 201, job.text
    r = c.post(
        f"/api/internal/jobs/{job.json()['id']}/claim", json={"worker": "w"}, headers=INPROC_WORKER
    )
    claim = JobClaimOut.model_validate(r.json())
    assert claim.hub_token == TOKEN and TOKEN not in repr(claim)
    assert TOKEN not in json.dumps(claim.params)
    worker_settings = Settings(_env_file=None, hub_token="hf_worker_own_token_123")  # type: ignore[call-arg]
    assert tool_env(worker_settings, "download", claim.hub_token)["HF_TOKEN"] == TOKEN
    assert tool_env(worker_settings, "download", None)["HF_TOKEN"] == "hf_worker_own_token_123"
    assert tool_env(worker_settings, "scan", TOKEN) == {}
    # A job that does not talk to the Hub gets no token.
    corpus = (tmp_path / "data" / "demo" / "corpus").resolve()
    scan = c.post("/api/jobs", json={"kind": "scan", "params": {"paths": [str(corpus)]}})
    assert scan.status_code == 201, scan.text
    r = c.post(
        f"/api/internal/jobs/{scan.json()['id']}/claim", json={"worker": "w"}, headers=INPROC_WORKER
    )
    assert r.status_code == 200 and r.json()["hub_token"] is None
