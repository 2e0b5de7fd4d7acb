"""The worker protocol end to end over HTTP: claim, status, events, logs, cancel, resume, SSE."""

from __future__ import annotations

import io
import json
import math
import tarfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tests.support.api import SSEReader, claimed_run, create_run, worker_client
from tests.support.panel import Panel

Api = tuple[Panel, dict[str, Path]]


def _events(run_dir: Path, start_seq: int = 1) -> list[dict[str, Any]]:
    """A realistic events.jsonl: start, 20 logs, an eval and a checkpoint at step 20."""
    t0 = 1_700_000_000.0
    evs: list[dict[str, Any]] = [
        {
            "seq": start_seq,
            "time": t0,
            "kind": "start",
            "step": 0,
            "max_steps": 40,
            "world_size": 1,
            "tokens_per_step": 256,
            "resumed_from": None,
            "finetuning_type": "lora",
        },
    ]
    for i in range(1, 21):
        evs.append(
            {
                "seq": start_seq + i,
                "time": t0 + i * 0.5,
                "kind": "log",
                "step": i,
                "loss": 5.0 - 0.1 * i + (0.5 if i == 7 else 0.0),
                "learning_rate": 2e-3,
                "grad_norm": 1.0,
                "epoch": i / 40,
                "tokens_seen": 256 * i,
                "tokens_per_second": 512.0,
            }
        )
    ckpt = run_dir / "output" / "checkpoint-20"
    evs.append(
        {
            "seq": start_seq + 21,
            "time": t0 + 10.2,
            "kind": "eval",
            "step": 20,
            "eval_loss": 3.2,
            "perplexity": math.exp(3.2),
            "epoch": 0.5,
        }
    )
    evs.append(
        {
            "seq": start_seq + 22,
            "time": t0 + 10.5,
            "kind": "checkpoint",
            "step": 20,
            "path": str(ckpt),
            "name": "checkpoint-20",
        }
    )
    return evs


def test_claim_is_exclusive_and_keyed_by_attempt(api: Api) -> None:
    panel, _ = api
    with panel.client() as c, worker_client(panel) as w:
        run = create_run(c)
        wrong = w.post(f"/api/internal/runs/{run['id']}/claim", json={"attempt": 2, "worker": "a"})
        first = w.post(f"/api/internal/runs/{run['id']}/claim", json={"attempt": 1, "worker": "a"})
        second = w.post(f"/api/internal/runs/{run['id']}/claim", json={"attempt": 1, "worker": "b"})
        cancelled = create_run(c)
        c.post(f"/api/runs/{cancelled['id']}/cancel")
        late = w.post(
            f"/api/internal/runs/{cancelled['id']}/claim", json={"attempt": 1, "worker": "a"}
        )
        shown = c.get(f"/api/runs/{run['id']}").json()
    assert wrong.status_code == 409
    assert first.status_code == 200
    assert first.json()["config"]["training"]["max_steps"] == 40
    assert first.json()["run_dir"] == str(panel.data_dir / "runs" / run["id"])
    assert first.json()["resume_from"] is None
    assert second.status_code == 409 and late.status_code == 409
    assert shown["status"] == "starting" and shown["worker"] == "a"


def test_concurrent_claims_and_shipments(api: Api) -> None:
    """Eight workers race for one run: exactly one claim wins; racing resends store once."""
    panel, _ = api
    with panel.client() as c:
        run = create_run(c)
    rid = run["id"]

    leases: list[str] = []

    def claim(i: int) -> int:
        with worker_client(panel) as w:
            body = {"attempt": 1, "worker": f"racer-{i}"}
            r = w.post(f"/api/internal/runs/{rid}/claim", json=body)
            if r.status_code == 200:
                leases.append(r.json()["lease"])
            return r.status_code

    with ThreadPoolExecutor(8) as pool:
        codes = sorted(pool.map(claim, range(8)))
    assert codes == [200] + [409] * 7
    events = _events(panel.data_dir / "runs" / rid)

    def ship(_: int) -> int:
        with worker_client(panel, leases[0]) as w:
            body = {"attempt": 1, "events": events}
            return int(w.post(f"/api/internal/runs/{rid}/events", json=body).json()["accepted"])

    with ThreadPoolExecutor(6) as pool:
        accepted = list(pool.map(ship, range(6)))
    with panel.client() as c:
        stored = c.get(f"/api/runs/{rid}/events").json()
    assert sum(accepted) == len(events) and len(stored) == len(events)


def test_events_are_stored_exactly_and_idempotently(api: Api) -> None:
    panel, _ = api
    run = claimed_run(panel)
    sent = _events(panel.data_dir / "runs" / run["id"])
    url = f"/api/internal/runs/{run['id']}/events"
    with panel.client() as c, worker_client(panel, run["lease"]) as w:
        a = w.post(url, json={"attempt": 1, "events": sent[:10]}).json()
        b = w.post(url, json={"attempt": 1, "events": sent}).json()  # overlaps the first batch
        again = w.post(url, json={"attempt": 1, "events": sent}).json()
        stored = c.get(f"/api/runs/{run['id']}/events", params={"limit": 1000}).json()
        shown = c.get(f"/api/runs/{run['id']}").json()
        metrics = c.get(
            f"/api/runs/{run['id']}/metrics", params={"keys": "loss,eval_loss", "max_points": 10}
        ).json()
        full = c.get(f"/api/runs/{run['id']}/metrics").json()
    assert (a["accepted"], b["accepted"], again["accepted"]) == (10, len(sent) - 10, 0)
    assert not a["cancel_requested"]
    assert [e["data"] for e in stored] == sent  # every line, whole, once
    assert shown["step"] == 20 and shown["max_steps"] == 40 and shown["tokens_seen"] == 5120
    assert abs(shown["loss"] - 3.0) < 1e-9 and shown["eval_loss"] == 3.2
    assert abs(shown["perplexity"] - math.exp(3.2)) < 1e-9
    # 20 steps in 9.5 s over the last 10 log events -> 20 steps left take about 10 s
    assert shown["eta_seconds"] is not None and 5 < shown["eta_seconds"] <= 10.5
    loss = metrics["series"]["loss"]
    assert len(loss["step"]) <= 10 and loss["step"][0] == 1 and loss["step"][-1] == 20
    assert max(loss["value"]) == max(e["loss"] for e in sent if e["kind"] == "log")  # spike kept
    assert metrics["series"]["eval_loss"]["value"] == [3.2]
    assert metrics["series"]["eval_loss"]["tokens_seen"] == [5120]
    assert {"loss", "learning_rate", "grad_norm", "eval_loss", "perplexity"} <= set(full["keys"])
    assert len(full["series"]["loss"]["step"]) == 20


def test_logs_offsets_resend_and_tail(api: Api) -> None:
    panel, _ = api
    run = claimed_run(panel)
    url = f"/api/internal/runs/{run['id']}/logs"
    part1, part2 = "step 1 ✓ ಕನ್ನಡ\nstep 2\n", "step 3\nstep 4\n"
    n1 = len(part1.encode())
    with panel.client() as c, worker_client(panel, run["lease"]) as w:
        r1 = w.post(url, json={"attempt": 1, "offset": 0, "text": part1}).json()
        dup = w.post(url, json={"attempt": 1, "offset": 0, "text": part1}).json()
        r2 = w.post(url, json={"attempt": 1, "offset": n1, "text": part2}).json()
        whole = c.get(f"/api/runs/{run['id']}/logs").json()
        tail = c.get(f"/api/runs/{run['id']}/logs", params={"tail": 2}).json()
        page = c.get(f"/api/runs/{run['id']}/logs", params={"offset": 0, "limit": 10}).json()
        rest = c.get(f"/api/runs/{run['id']}/logs", params={"offset": page["next_offset"]}).json()
    assert r1["accepted_until"] == dup["accepted_until"] == n1
    assert r2["accepted_until"] == n1 + len(part2.encode())
    assert whole["text"] == part1 + part2 and whole["size"] == r2["accepted_until"]
    assert tail["text"] == part2 and tail["next_offset"] == whole["size"]
    # a page boundary never splits a character
    assert page["text"] + rest["text"] == part1 + part2


def test_log_bytes_ride_along_with_events(api: Api) -> None:
    """One request for both: the events and the log part are stored in one transaction, and a
    resend of either is idempotent, as on their own routes."""
    panel, _ = api
    run = claimed_run(panel)
    sent = _events(panel.data_dir / "runs" / run["id"])
    url = f"/api/internal/runs/{run['id']}/events"
    part1, part2 = "step 1 ✓ ಕನ್ನಡ\n", "step 2\n"
    n1 = len(part1.encode())
    with panel.client() as c, worker_client(panel, run["lease"]) as w:
        a = w.post(
            url, json={"attempt": 1, "events": sent[:5], "log": {"offset": 0, "text": part1}}
        )
        again = w.post(
            url, json={"attempt": 1, "events": sent[:5], "log": {"offset": 0, "text": part1}}
        )
        b = w.post(
            url, json={"attempt": 1, "events": sent[5:], "log": {"offset": n1, "text": part2}}
        )
        alone = w.post(url, json={"attempt": 1, "events": sent[5:]})
        bad = w.post(url, json={"attempt": 1, "events": [], "log": {"offset": -1, "text": "x"}})
        log = c.get(f"/api/runs/{run['id']}/logs").json()
        stored = c.get(f"/api/runs/{run['id']}/events", params={"limit": 1000}).json()
    assert (a.json()["accepted"], a.json()["log_accepted_until"]) == (5, n1)
    assert (again.json()["accepted"], again.json()["log_accepted_until"]) == (0, n1)
    assert b.json()["log_accepted_until"] == n1 + len(part2.encode())
    assert alone.json()["log_accepted_until"] is None  # no log part, no log answer
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"][-2:] == ["log", "offset"]
    assert log["text"] == part1 + part2
    assert [e["data"] for e in stored] == sent


def test_checkpoints_listing_download_and_resume(api: Api) -> None:
    panel, _ = api
    run = claimed_run(panel)
    run_dir = panel.data_dir / "runs" / run["id"]
    ckpt = run_dir / "output" / "checkpoint-20"
    ckpt.mkdir(parents=True)
    (ckpt / "adapter_model.safetensors").write_bytes(b"\x01" * 70_000)
    (ckpt / "trainer_state.json").write_text('{"global_step": 20}')
    with panel.client() as c, worker_client(panel, run["lease"]) as w:
        w.post(
            f"/api/internal/runs/{run['id']}/events",
            json={"attempt": 1, "events": _events(run_dir)},
        )
        listing = c.get(f"/api/runs/{run['id']}/checkpoints").json()
        tar = c.get(f"/api/runs/{run['id']}/checkpoints/checkpoint-20/download")
        nope = c.get(f"/api/runs/{run['id']}/checkpoints/checkpoint-99/download")
        early = c.post(f"/api/runs/{run['id']}/resume", json={"checkpoint": "last"})
        w.post(
            f"/api/internal/runs/{run['id']}/status",
            json={"attempt": 1, "status": "failed", "reason": "boom"},
        )
        unknown = c.post(f"/api/runs/{run['id']}/resume", json={"checkpoint": "checkpoint-5"})
        resumed = c.post(f"/api/runs/{run['id']}/resume", json={"checkpoint": "last"})
        claim = w.post(f"/api/internal/runs/{run['id']}/claim", json={"attempt": 2, "worker": "w1"})
        stale = w.post(
            f"/api/internal/runs/{run['id']}/logs", json={"attempt": 1, "offset": 0, "text": "x"}
        )
        cmd = c.get(f"/api/runs/{run['id']}/command").json()
    assert len(listing) == 1
    item = listing[0]
    assert item["name"] == "checkpoint-20" and item["step"] == 20 and item["exists"]
    assert item["size_bytes"] == 70_000 + len('{"global_step": 20}')
    assert abs(item["eval_perplexity"] - math.exp(3.2)) < 1e-9 and item["eval_loss"] == 3.2
    assert tar.status_code == 200 and tar.headers["content-type"] == "application/x-tar"
    names = tarfile.open(fileobj=io.BytesIO(tar.content)).getnames()
    assert "checkpoint-20/adapter_model.safetensors" in names
    assert nope.status_code == 404
    assert (
        early.status_code == 409 and "cannot resume a run that is running" in early.json()["detail"]
    )
    assert unknown.status_code == 422 and unknown.json()["detail"][0]["loc"] == [
        "body",
        "checkpoint",
    ]
    assert resumed.status_code == 200
    assert resumed.json()["status"] == "queued" and resumed.json()["attempt"] == 2
    # The API passes the choice on; pretrain.py alone decides which checkpoint is complete.
    assert "resume_path" not in claim.json() and claim.json()["resume_from"] == "last"
    assert stale.json()["cancel_requested"] is True  # attempt 1 must stop: the run moved on
    assert cmd["argv"][cmd["argv"].index("--resume_from_checkpoint") + 1] == "last"


def test_cancel_reaches_the_worker(api: Api) -> None:
    panel, _ = api
    run = claimed_run(panel, worker="gpu-box-1")
    rid = run["id"]
    with panel.client() as c, worker_client(panel, run["lease"]) as w:
        hb = {
            "name": "gpu-box-1",
            "host": "box",
            "queue": "q",
            "concurrency": 1,
            "cpu_only": True,
            "gpus": [],
            "current_runs": [rid],
        }
        before = w.post("/api/internal/workers/heartbeat", json=hb).json()
        cancelling = c.post(f"/api/runs/{rid}/cancel").json()
        after = w.post("/api/internal/workers/heartbeat", json=hb).json()
        ev = w.post(f"/api/internal/runs/{rid}/events", json={"attempt": 1, "events": []}).json()
        still = w.post(
            f"/api/internal/runs/{rid}/status", json={"attempt": 1, "status": "running"}
        ).json()
        done = w.post(
            f"/api/internal/runs/{rid}/status", json={"attempt": 1, "status": "cancelled"}
        )
        final = c.get(f"/api/runs/{rid}").json()
        workers = c.get("/api/workers").json()
    assert rid not in before["cancel"]
    assert cancelling["status"] == "cancelling"
    assert rid in after["cancel"] and ev["cancel_requested"] and still["cancel_requested"]
    assert done.status_code == 200 and final["status"] == "cancelled" and final["finished_at"]
    box = next(x for x in workers if x["name"] == "gpu-box-1")
    assert box["alive"] and box["current_runs"] == [rid] and box["cpu_only"]


def test_heartbeat_stops_orphans(api: Api) -> None:
    """A run the worker still lists although it is over in the database gets cancelled."""
    panel, _ = api
    run = claimed_run(panel, worker="box-2")
    rid = run["id"]
    hb = {"name": "box-2", "current_runs": [rid]}
    with worker_client(panel, run["lease"]) as w:
        running = w.post("/api/internal/workers/heartbeat", json=hb).json()
        w.post(f"/api/internal/runs/{rid}/status", json={"attempt": 1, "status": "failed"})
        over = w.post("/api/internal/workers/heartbeat", json=hb).json()
    assert rid not in running["cancel"] and rid in over["cancel"]


def test_a_report_without_the_claims_lease_is_403(api: Api) -> None:
    """The worker token alone reports on nothing: a run nobody claimed, or another's lease."""
    panel, _ = api
    other = claimed_run(panel)
    with panel.client() as c, worker_client(panel, other["lease"]) as w:
        run = create_run(c)
        r = w.post(
            f"/api/internal/runs/{run['id']}/status", json={"attempt": 1, "status": "succeeded"}
        )
        stolen = w.post(f"/api/internal/runs/{run['id']}/events", json={"attempt": 1, "events": []})
    assert r.status_code == 403 and "claimed" in r.json()["detail"]
    assert stolen.status_code == 403


def test_sse_pushes_status_metrics_and_logs(api: Api) -> None:
    panel, _ = api
    run = claimed_run(panel)
    rid = run["id"]
    events = _events(panel.data_dir / "runs" / rid)
    with panel.client() as c, worker_client(panel, run["lease"]) as w:
        with c.stream("GET", f"/api/runs/{rid}/stream", params={"ping": 1}) as stream:
            sse = SSEReader(stream)
            first = sse.read(1)
            t0 = time.monotonic()
            w.post(f"/api/internal/runs/{rid}/events", json={"attempt": 1, "events": events[:3]})
            w.post(
                f"/api/internal/runs/{rid}/logs",
                json={"attempt": 1, "offset": 0, "text": "hello\n"},
            )
            w.post(f"/api/internal/runs/{rid}/status", json={"attempt": 1, "status": "succeeded"})
            got = sse.read(6)
            latency = time.monotonic() - t0
        # a reconnect with after_seq replays what was missed, then goes live
        with c.stream(
            "GET", f"/api/runs/{rid}/stream", params={"after_seq": 1, "ping": 1}
        ) as replay:
            replayed = SSEReader(replay).read(3)
    assert first[0][0] == "status" and first[0][1]["id"] == rid
    kinds = [k for k, _ in got]
    metric_seqs = [d["seq"] for k, d in got if k == "metric"]
    assert metric_seqs == [1, 2, 3]
    assert ("log", {"attempt": 1, "offset": 0, "text": "hello\n"}) in got
    assert "status" in kinds and any(
        d.get("status") == "succeeded" for k, d in got if k == "status"
    )
    assert latency < 5
    assert [k for k, _ in replayed] == ["status", "metric", "metric"]
    assert [d["seq"] for _, d in replayed[1:]] == [2, 3]


def test_runs_stream_announces_changes(api: Api) -> None:
    panel, _ = api
    with panel.client() as c, c.stream("GET", "/api/runs/stream", params={"ping": 1}) as stream:
        sse = SSEReader(stream)
        ready = sse.read(1)
        run = create_run(c)
        # Other runs of this shared server may change meanwhile (e.g. a lost worker): find ours.
        ours = []
        for _ in range(20):
            got = sse.read(1, timeout=5)
            ours = [d for k, d in got if k == "run" and d["id"] == run["id"]]
            if ours or not got:
                break
    assert ready[0][0] == "ready"
    assert ours and ours[0]["status"] == "queued"


def test_the_shipper_sends_waiting_log_bytes_with_its_events(api: Api, tmp_path: Path) -> None:
    """The worker's real shipper against the real API: log bytes that the log interval would
    hold back go out with the events of the same tick; alone, they wait for the interval."""
    from worker.attempt.api_client import WorkerApi
    from worker.attempt.shipper import RunShipper

    panel, _ = api
    run = claimed_run(panel)
    events_path, log_path = tmp_path / "events.jsonl", tmp_path / "attempt-1.log"
    events_path.write_text("")
    log_path.write_text("loading\n")
    worker = WorkerApi(panel.url, panel.worker_token)
    worker.use_lease(run["id"], run["lease"])
    shipper = RunShipper(
        worker, run["id"], 1, events_path, log_path, log_interval=3600, keepalive=None
    )
    shipper._last_log = time.monotonic()  # as if a log POST had just gone out
    with panel.client() as c:
        assert not shipper.ship_once()  # log bytes alone wait for the interval
        assert c.get(f"/api/runs/{run['id']}/logs").json()["text"] == ""
        event = {"seq": 1, "time": time.time(), "kind": "log", "step": 1, "loss": 2.0}
        events_path.write_text(json.dumps(event) + "\n")
        assert shipper.ship_once()
        assert c.get(f"/api/runs/{run['id']}/logs").json()["text"] == "loading\n"
        assert shipper.log_offset == len(b"loading\n")
        assert [e["seq"] for e in c.get(f"/api/runs/{run['id']}/events").json()] == [1]
    worker.close()


def test_the_shipped_record_lags_at_most_a_second_and_drain_completes_it(
    api: Api, tmp_path: Path
) -> None:
    """The acknowledged offsets go to disk at most once a second while shipping (a rename per
    request cost the worker more than the request's own I/O) and always at ``drain``; what a
    crash leaves unrecorded is re-shipped by the next attempt and stored once."""
    from worker.attempt.api_client import WorkerApi
    from worker.attempt.shipper import STATE_SAVE_SECONDS, RunShipper

    panel, _ = api
    run = claimed_run(panel)
    events_path, log_path = tmp_path / "events.jsonl", tmp_path / "attempt-1.log"
    state = tmp_path / "shipped-1.json"
    log_path.write_text("")
    worker = WorkerApi(panel.url, panel.worker_token)
    worker.use_lease(run["id"], run["lease"])
    shipper = RunShipper(
        worker, run["id"], 1, events_path, log_path, state_path=state, keepalive=None
    )

    def add(seq: int) -> None:
        with events_path.open("a") as f:
            f.write(json.dumps({"seq": seq, "time": time.time(), "kind": "log", "step": seq}))
            f.write("\n")

    add(1)
    assert shipper.ship_once()
    first = json.loads(state.read_text())["events_offset"]
    assert first == events_path.stat().st_size  # the first shipment is recorded at once
    add(2)
    assert shipper.ship_once()
    assert json.loads(state.read_text())["events_offset"] == first  # within the second: not yet
    shipper.drain()  # nothing new to send, but the record is completed
    assert json.loads(state.read_text())["events_offset"] == events_path.stat().st_size
    add(3)
    time.sleep(STATE_SAVE_SECONDS)
    assert shipper.ship_once()  # a second later: recorded again
    assert json.loads(state.read_text())["events_offset"] == events_path.stat().st_size
    with panel.client() as c:
        assert [e["seq"] for e in c.get(f"/api/runs/{run['id']}/events").json()] == [1, 2, 3]
    worker.close()
