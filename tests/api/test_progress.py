"""Honest progress through the real app (in-process, real SQLite): phases, a speed and an ETA
from measured training time plus measured evaluation/save time, a resume that starts at the
checkpoint's step, Started/Duration over attempts, and each attempt's launched argv."""

from __future__ import annotations

import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cpt_contract.protocol import LEASE_HEADER
from tests.api.test_inprocess import WORKER_TOKEN
from tests.api.test_inprocess import client as client

WORKER = {"Authorization": f"Bearer {WORKER_TOKEN}"}
TOKENS_PER_STEP = 100


class Attempt:
    """One attempt as a worker reports it: claim, running with its argv, then events."""

    def __init__(self, client: TestClient, rid: str, attempt: int, argv: list[str]) -> None:
        self.client, self.rid, self.attempt, self.seq = client, rid, attempt, 0
        claim = client.post(
            f"/api/internal/runs/{rid}/claim",
            json={"attempt": attempt, "worker": "w"},
            headers=WORKER,
        )
        assert claim.status_code == 200, claim.text
        self.headers = {**WORKER, LEASE_HEADER: claim.json()["lease"]}
        self.status("running", argv=argv)

    def status(self, status: str, **extra: Any) -> None:
        r = self.client.post(
            f"/api/internal/runs/{self.rid}/status",
            json={"attempt": self.attempt, "status": status, **extra},
            headers=self.headers,
        )
        assert r.status_code == 200, r.text

    def send(self, kind: str, step: int, **data: Any) -> dict[str, Any]:
        self.seq += 1
        event = {"seq": self.seq, "kind": kind, "step": step, "time": time.time(), **data}
        r = self.client.post(
            f"/api/internal/runs/{self.rid}/events",
            json={"attempt": self.attempt, "events": [event]},
            headers=self.headers,
        )
        assert r.status_code == 200, r.text
        return dict(self.client.get(f"/api/runs/{self.rid}").json())

    def logs(self, steps: range, seconds_per_step: float) -> dict[str, Any]:
        run: dict[str, Any] = {}
        for step in steps:
            run = self.send(
                "log",
                step,
                loss=3.0,
                interval_steps=1,
                train_seconds=seconds_per_step,
                tokens_per_second=TOKENS_PER_STEP / seconds_per_step,
            )
        return run


def test_phases_speed_eta_resume_duration_and_argv(client: TestClient) -> None:
    training = {"max_steps": 40, "eval_steps": 10, "save_steps": 10, "logging_steps": 1}
    r = client.post("/api/runs", json={"preset": "tiny-demo", "config": {"training": training}})
    assert r.status_code == 201, r.text
    rid = r.json()["id"]
    output = r.json()["output_dir"]

    one = Attempt(client, rid, 1, ["python", "-m", "torch.distributed.run", "attempt-1"])
    first_start = client.get(f"/api/runs/{rid}").json()["started_at"]
    run = one.send("phase", 0, phase="preparing_data")
    assert run["phase"] == "preparing_data" and run["phase_since"]
    one.send("phase", 0, phase="loading_model", previous="preparing_data", previous_seconds=3)
    one.send("start", 0, max_steps=40, tokens_per_step=TOKENS_PER_STEP)
    one.send("phase", 0, phase="training", previous="loading_model", previous_seconds=5)
    run = one.logs(range(1, 11), 0.5)
    assert run["tokens_per_second"] == 200 and run["phase"] == "training"
    # An evaluation of 20 s: its log events would not make training look slower.
    run = one.send("phase", 10, phase="evaluating", previous="training", previous_seconds=5)
    assert run["phase"] == "evaluating" and run["step"] == 10
    one.send("eval", 10, eval_loss=2.0, perplexity=7.39, seconds=20)
    run = one.send("phase", 10, phase="training", previous="evaluating", previous_seconds=20)
    # 30 steps at 0.5 s plus 3 evaluations (steps 20, 30, 40) at the measured 20 s.
    assert abs(run["eta_seconds"] - (30 * 0.5 + 3 * 20)) < 1, run
    assert run["eta_until"]
    one.send("checkpoint", 10, path=f"{output}/checkpoint-10", name="checkpoint-10", seconds=2)
    run = one.send("phase", 10, phase="training", previous="saving", previous_seconds=2)
    run = one.logs(range(11, 21), 0.5)
    assert run["tokens_per_second"] == 200
    # Evaluating at step 20: the ETA keeps this evaluation's measured time, it does not freeze
    # at "10 s left for 20 steps".
    run = one.send("phase", 20, phase="evaluating", previous="training", previous_seconds=5)
    expected = 20 * 0.5 + 2 * 20 + 20 + 3 * 2  # steps, evals at 30/40, this one, saves 30/40/end
    assert abs(run["eta_seconds"] - expected) < 1.5, run
    one.send("end", 20, status="cancelled", reason="cancelled on request")
    one.status("cancelled", reason="cancelled on request")
    ended = client.get(f"/api/runs/{rid}").json()
    assert ended["phase"] is None and ended["eta_seconds"] is None
    first_duration = ended["duration_seconds"]
    assert first_duration is not None and first_duration >= 0

    # Resume from checkpoint-10: the progress says 10 at once, the old speed is gone.
    r = client.post(f"/api/runs/{rid}/resume", json={"checkpoint": "checkpoint-10"})
    assert r.status_code == 200, r.text
    assert r.json()["step"] == 10 and r.json()["tokens_per_second"] is None
    assert r.json()["first_started_at"] == first_start
    two = Attempt(client, rid, 2, ["python", "-m", "torch.distributed.run", "attempt-2"])
    run = two.send("phase", 0, phase="preparing_data")
    assert run["step"] == 10, "a phase marker at step 0 must not move the progress back"
    run = two.send("start", 10, max_steps=40, tokens_per_step=TOKENS_PER_STEP, resumed_from="x")
    assert run["step"] == 10
    run = two.logs(range(11, 12), 1.0)
    # One 1-s interval is not yet a measured speed (progress.MIN_SPEED_SECONDS): none is shown,
    # neither the last attempt's nor this interval's own.
    assert run["step"] == 11 and run["tokens_per_second"] is None and run["eta_seconds"] is None
    run = two.logs(range(12, 16), 1.0)
    assert run["step"] == 15 and run["tokens_per_second"] == 100
    assert run["first_started_at"] == first_start, "Started is the first attempt's start"
    assert run["started_at"] != first_start
    assert run["duration_seconds"] >= first_duration
    assert run["attempts_seconds"] == first_duration

    cmd = client.get(f"/api/runs/{rid}/command").json()
    assert [a["attempt"] for a in cmd["attempts"]] == [1, 2]
    assert cmd["attempts"][0]["argv"][-1] == "attempt-1"
    assert cmd["attempts"][1]["argv"][-1] == "attempt-2"
    assert cmd["attempts"][1]["command"].endswith("attempt-2")

    # The charts' attempt boundary, and no timing field charted as a metric.
    metrics = client.get(f"/api/runs/{rid}/metrics").json()
    assert metrics["attempts"] == [{"attempt": 2, "step": 10, "tokens_seen": 10 * TOKENS_PER_STEP}]
    assert not {"train_seconds", "interval_steps", "seconds"} & set(metrics["keys"])


def test_samples_across_a_resume_come_from_the_attempt_that_owns_the_step(
    client: TestClient,
) -> None:
    """Attempt 1 sampled at steps 0, 10 and 20 and was resumed from checkpoint-10: its step-20
    samples are hidden (the steps after the resume are attempt 2's, even before it reaches them),
    step 10 stays attempt 1's."""
    training = {"max_steps": 40, "eval_steps": 10, "save_steps": 10, "logging_steps": 1}
    created = client.post(
        "/api/runs", json={"preset": "tiny-demo", "config": {"training": training}}
    ).json()
    rid, output = created["id"], created["output_dir"]
    one = Attempt(client, rid, 1, ["attempt-1"])
    one.send("start", 0, max_steps=40, tokens_per_step=TOKENS_PER_STEP)
    for step in (0, 10, 20):
        one.send("sample", step, set="en", prompt="The", text=f" one@{step}", mode="greedy")
    one.send("checkpoint", 10, name="checkpoint-10", path=f"{output}/checkpoint-10")
    one.send("end", 21, status="cancelled", reason="cancelled on request")
    one.status("cancelled", reason="cancelled on request")
    r = client.post(f"/api/runs/{rid}/resume", json={"checkpoint": "checkpoint-10"})
    assert r.status_code == 200, r.text
    two = Attempt(client, rid, 2, ["attempt-2"])
    two.send("start", 10, max_steps=40, tokens_per_step=TOKENS_PER_STEP, resumed_from="x")
    two.send("sample", 30, set="en", prompt="The", text=" two@30", mode="greedy")
    got = client.get(f"/api/runs/{rid}/samples").json()
    assert got["steps"] == [0, 10, 30]  # step 20 was attempt 1's, past its resume point
    assert [(s["attempt"], s["text"]) for s in got["samples"]] == [
        (1, " one@0"),
        (1, " one@10"),
        (2, " two@30"),
    ]


def test_a_run_shorter_than_the_speed_window_still_ends_with_its_measured_speed(
    client: TestClient,
) -> None:
    training = {"max_steps": 3, "logging_steps": 1}
    r = client.post("/api/runs", json={"preset": "tiny-demo", "config": {"training": training}})
    rid = r.json()["id"]
    one = Attempt(client, rid, 1, ["attempt-1"])
    one.send("start", 0, max_steps=3, tokens_per_step=TOKENS_PER_STEP)
    run = one.logs(range(1, 4), 0.1)
    assert run["tokens_per_second"] is None, "0.3 s of training is not a measured speed yet"
    run = one.send("end", 3, status="succeeded")
    # The whole attempt is all the measuring there will be: 3 steps in 0.3 s.
    assert run["tokens_per_second"] == pytest.approx(3 * TOKENS_PER_STEP / 0.3)
    assert run["eta_seconds"] is None


def test_the_speed_window_is_found_past_many_other_events(client: TestClient) -> None:
    """The last log intervals are looked for just below the batch's newest event first
    (progress.RECENT_SEQS), then over the whole attempt when too few are there."""
    from backend.services.progress import RECENT_SEQS

    training = {"max_steps": 100, "logging_steps": 1}
    r = client.post("/api/runs", json={"preset": "tiny-demo", "config": {"training": training}})
    rid = r.json()["id"]
    one = Attempt(client, rid, 1, ["attempt-1"])
    one.send("start", 0, max_steps=100, tokens_per_step=TOKENS_PER_STEP)
    assert one.logs(range(1, 21), 1.0)["tokens_per_second"] == 100
    # More events than the first look covers, none of them a log (e.g. warnings).
    others = [
        {"seq": one.seq + 1 + i, "kind": "warning", "step": 20, "message": "x"}
        for i in range(RECENT_SEQS + 5)
    ]
    one.seq += len(others)
    r = client.post(
        f"/api/internal/runs/{rid}/events",
        json={"attempt": 1, "events": others},
        headers=one.headers,
    )
    assert r.status_code == 200 and r.json()["accepted"] == len(others), r.text
    # One new interval alone (1 s) is not a speed: the 20 before the warnings count too.
    assert one.logs(range(21, 22), 1.0)["tokens_per_second"] == 100
    # 20 faster intervals fill the window from the newest events.
    assert one.logs(range(22, 42), 0.5)["tokens_per_second"] == 200
