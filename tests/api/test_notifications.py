"""Notifications through the real API (its outbox drained by its own background task) to a local
HTTP receiver and a real SMTP server (aiosmtpd), both started here; runs are ended by a pretend
worker over the internal API (the worker's side is not what is tested).

- a run that succeeds: the generic JSON body (summary + link), Slack's ``text``, Discord's
  ``content`` and an e-mail; a receiver that fails twice gets it on the third try; one that is
  always down is given up after ``CPT_NOTIFY_ATTEMPTS`` with the reason;
- a slow receiver never holds up the worker's reports;
- stalled (restarted automatically), cancelled, a per-run channel that hears only its run;
- an experiment whose runs have all ended, once;
- the webhook URL is kept encrypted (not in the database file, never answered); the test button.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cpt_contract.protocol import LEASE_HEADER
from tests.support.api import claimed_run, launch, worker_client
from tests.support.panel import Panel
from tests.support.receivers import Mailbox, Receiver, mailbox, receiver  # noqa: F401

PUBLIC = "https://panel.example.org"
ATTEMPTS = 3


@pytest.fixture
def panel_(tmp_path: Path, mailbox: Mailbox) -> Iterator[Panel]:  # noqa: F811
    env = {
        "CPT_NOTIFY_BACKOFF_SECONDS": "0.5",
        "CPT_NOTIFY_ATTEMPTS": str(ATTEMPTS),
        "CPT_SMTP_HOST": "127.0.0.1",
        "CPT_SMTP_PORT": str(mailbox.port),
        "CPT_SMTP_SECURITY": "none",
        "CPT_SMTP_FROM": "panel@example.org",
        "CPT_PUBLIC_URL": PUBLIC,
    }
    panel, assets = launch(tmp_path, extra_env=env)
    panel.assets = assets  # type: ignore[attr-defined]
    try:
        yield panel
    finally:
        panel.stop()


def _channel(panel: Panel, **body: Any) -> dict[str, Any]:
    with panel.client() as c:
        r = c.post("/api/notifications/channels", json=body)
    assert r.status_code == 201, r.text
    return dict(r.json())


def _end(panel: Panel, run: dict[str, Any], status: str, **extra: Any) -> float:
    """Report the attempt's end as its worker would; the seconds the report took."""
    started = time.monotonic()
    with worker_client(panel, run["lease"]) as w:
        r = w.post(
            f"/api/internal/runs/{run['id']}/status",
            json={"attempt": 1, "status": status, **extra},
            headers={LEASE_HEADER: run["lease"]},
        )
    assert r.status_code == 200, r.text
    return time.monotonic() - started


def _deliveries(panel: Panel, **params: Any) -> list[dict[str, Any]]:
    with panel.client() as c:
        return list(c.get("/api/notifications/deliveries", params=params).json())


def _wait_settled(panel: Panel, n: int, timeout: float = 60) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        got = _deliveries(panel)
        if len(got) >= n and all(d["status"] != "pending" for d in got):
            return got
        assert time.monotonic() < deadline, got
        time.sleep(0.2)


def test_a_finished_run_is_told_to_each_channel_with_retries(
    panel_: Panel,
    receiver: Receiver,  # noqa: F811
    mailbox: Mailbox,  # noqa: F811
) -> None:
    panel = panel_
    receiver.fail_first["/flaky"] = 2
    url = receiver.url
    channels = {
        "generic": _channel(panel, name="ops", kind="webhook", url=f"{url}/generic"),
        "slack": _channel(panel, name="slack", kind="webhook", url=f"{url}/slack", format="slack"),
        "discord": _channel(
            panel, name="discord", kind="webhook", url=f"{url}/discord", format="discord"
        ),
        "flaky": _channel(panel, name="flaky", kind="webhook", url=f"{url}/flaky"),
        "down": _channel(panel, name="down", kind="webhook", url=f"{url}/down"),
        "email": _channel(panel, name="mail", kind="email", to=["ml-team@example.org"]),
    }
    with panel.client() as c:
        listed = c.get("/api/notifications/channels").text
    assert "/generic" not in listed and channels["generic"]["host"] == "127.0.0.1"

    run = claimed_run(panel, name="kn-lora")
    _end(panel, run, "succeeded", reason="done")

    body = receiver.wait("/generic")[0]
    assert body["event"] == "succeeded" and body["run"]["id"] == run["id"]
    assert body["run"]["name"] == "kn-lora" and body["run"]["status"] == "succeeded"
    assert body["link"] == f"{PUBLIC}/#/runs/{run['id']}"
    slack = receiver.wait("/slack")[0]
    assert set(slack) == {"text"} and "kn-lora succeeded" in slack["text"]
    assert body["link"] in slack["text"]
    discord = receiver.wait("/discord")[0]
    assert "kn-lora succeeded" in discord["content"] and body["link"] in discord["content"]
    mail = mailbox.wait(1)[0]
    assert mail["To"] == "ml-team@example.org" and "kn-lora succeeded" in mail["Subject"]
    assert body["link"] in mail.get_payload()

    # Refused twice, taken on the third try; the dead one given up after ATTEMPTS tries.
    assert receiver.wait("/flaky")[0]["run"]["id"] == run["id"]
    settled = {d["channel_id"]: d for d in _wait_settled(panel, len(channels))}
    flaky = settled[channels["flaky"]["id"]]
    assert flaky["status"] == "delivered" and flaky["attempts"] == 3, flaky
    assert receiver.tries["/flaky"] == 3
    down = settled[channels["down"]["id"]]
    assert down["status"] == "failed" and down["attempts"] == ATTEMPTS, down
    assert "HTTP 500" in down["last_error"] and receiver.tries["/down"] == ATTEMPTS
    assert all(
        settled[c["id"]]["status"] == "delivered" and settled[c["id"]]["attempts"] == 1
        for k, c in channels.items()
        if k not in ("flaky", "down")
    )
    # The URL (which may carry a token) is sealed in the secret store, not in the database.
    db = b"".join(p.read_bytes() for p in panel.data_dir.glob("*.db*"))
    assert db and b"/generic" not in db and b"127.0.0.1:" not in db


def test_a_slow_receiver_does_not_hold_up_ingest_and_each_event_reaches_its_channels(
    panel_: Panel,
    receiver: Receiver,  # noqa: F811
) -> None:
    panel = panel_
    receiver.slow["/slow"] = 6.0
    _channel(panel, name="slow", kind="webhook", url=f"{receiver.url}/slow", events=["failed"])
    everything = ["succeeded", "failed", "stalled", "cancelled"]
    _channel(panel, name="all", kind="webhook", url=f"{receiver.url}/all", events=everything)
    first = claimed_run(panel)
    _end(panel, first, "failed", reason="exit code 1", kind="error")
    receiver.wait("/all", 1)
    time.sleep(0.5)  # the drain is now inside the slow receiver's 6 s
    stalled = claimed_run(panel)
    mine = _channel(
        panel, name="mine", kind="webhook", url=f"{receiver.url}/mine", run_id=stalled["id"]
    )
    assert mine["run_id"] == stalled["id"]
    took = _end(panel, stalled, "failed", reason="no step for 600 s", kind="stalled")
    assert took < 4.0, f"the worker's report waited {took:.1f} s on a delivery"
    cancelled = claimed_run(panel)
    with panel.client() as c:
        assert c.post(f"/api/runs/{cancelled['id']}/cancel").status_code in (200, 202)
    _end(panel, cancelled, "cancelled", reason="cancelled on request")

    got = receiver.wait("/all", 3)
    events = {b["run"]["id"]: b["event"] for b in got}
    assert events == {first["id"]: "failed", stalled["id"]: "stalled", cancelled["id"]: "cancelled"}
    stall = next(b for b in got if b["run"]["id"] == stalled["id"])
    assert "restarting automatically" in (stall["run"]["status_reason"] or "")
    # The per-run channel hears its own run only; the slow one still got its message.
    assert [b["run"]["id"] for b in receiver.wait("/mine", 1)] == [stalled["id"]]
    assert receiver.wait("/slow", 1, timeout=30)[0]["event"] == "failed"


def test_the_test_button_and_bad_channels(
    panel_: Panel,
    receiver: Receiver,  # noqa: F811
    mailbox: Mailbox,  # noqa: F811
) -> None:
    panel = panel_
    good = _channel(panel, name="ok", kind="webhook", url=f"{receiver.url}/ok", format="slack")
    down = _channel(panel, name="down", kind="webhook", url=f"{receiver.url}/down")
    mail = _channel(panel, name="mail", kind="email", to=["a@example.org"])
    with panel.client() as c:
        r = c.post(f"/api/notifications/channels/{good['id']}/test")
        assert r.json() == {"delivered": True, "error": None}
        assert "Test message" in receiver.wait("/ok")[0]["text"]
        r = c.post(f"/api/notifications/channels/{down['id']}/test")
        assert r.json() == {"delivered": False, "error": "webhook answered HTTP 500"}
        assert c.post(f"/api/notifications/channels/{mail['id']}/test").json()["delivered"]
        assert "Test message" in mailbox.wait(1)[0]["Subject"]

        r = c.post("/api/notifications/channels", json={"name": "x", "kind": "webhook"})
        assert r.status_code == 422 and "url" in r.text
        r = c.post("/api/notifications/channels", json={"name": "x", "kind": "email"})
        assert r.status_code == 422 and "to:" in r.text
        r = c.post(
            "/api/notifications/channels",
            json={"name": "x", "kind": "email", "to": ["a@b.org"], "run_id": "nope"},
        )
        assert r.status_code == 404
        assert c.delete(f"/api/notifications/channels/{down['id']}").status_code == 204
        ids = [ch["id"] for ch in c.get("/api/notifications/channels").json()]
        assert down["id"] not in ids and good["id"] in ids
        # The SMTP password: write-only.
        r = c.put("/api/settings/smtp/password", json={"password": "hunter2-secret"})
        assert r.status_code == 200 and r.json()["password_set"] is True
        assert "hunter2" not in r.text and "hunter2" not in c.get("/api/settings/smtp").text


def test_an_experiment_whose_runs_all_ended_is_told_once(
    panel_: Panel,
    receiver: Receiver,  # noqa: F811
) -> None:
    from tests.api.test_experiments import _spec

    panel = panel_
    _channel(
        panel, name="exp", kind="webhook", url=f"{receiver.url}/exp", events=["experiment_finished"]
    )
    with panel.client() as c:
        r = c.post("/api/experiments", json=_spec(panel.assets, "nobody-serves-this"))  # type: ignore[attr-defined]
        assert r.status_code == 201, r.text
        exp = r.json()
        assert c.post(f"/api/experiments/{exp['id']}/launch").status_code == 200
        assert c.post(f"/api/experiments/{exp['id']}/cancel").status_code == 200
    body = receiver.wait("/exp", 1)[0]
    assert body["event"] == "experiment_finished" and body["experiment"]["id"] == exp["id"]
    assert body["experiment"]["status"] == "incomplete"
    assert body["experiment"]["runs"] == {"cancelled": 4}
    assert body["link"] == f"{PUBLIC}/#/experiments/{exp['id']}"
    time.sleep(2)  # the drain runs every 0.25 s: a second message would be here by now
    assert len(receiver.got["/exp"]) == 1
