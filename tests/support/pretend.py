"""A pretend worker for experiment tests: it claims a run on a queue no worker serves and ships
the events a training run writes (so every number is known), makes a checkpoint directory and
tells the panel, and claims an ``evaluate`` job queued through ``POST /api/jobs`` and reports the
result document the evaluate job writes, so the panel stores the scores the way it always does.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from cpt_contract.protocol import LEASE_HEADER
from tests.support.api import worker_client
from tests.support.panel import Panel

SHA = "ab" * 32


class Pretend:
    """Claims one run and ships its events as pretrain.py writes them."""

    def __init__(self, panel: Panel, run_id: str) -> None:
        self.panel, self.rid, self.seq = panel, run_id, 0
        with worker_client(panel) as w:
            r = w.post(f"/api/internal/runs/{run_id}/claim", json={"attempt": 1, "worker": "wx"})
            assert r.status_code == 200, r.text
            self.lease = r.json()["lease"]
        self.status("running")

    def status(self, status: str, reason: str | None = None) -> dict[str, Any]:
        with worker_client(self.panel, self.lease) as w:
            r = w.post(
                f"/api/internal/runs/{self.rid}/status",
                json={"attempt": 1, "status": status, "reason": reason},
            )
        assert r.status_code == 200, r.text
        return dict(r.json())

    def send(self, kind: str, step: int, **data: Any) -> dict[str, Any]:
        self.seq += 1
        event = {"seq": self.seq, "kind": kind, "step": step, "time": time.time(), **data}
        with worker_client(self.panel, self.lease) as w:
            r = w.post(
                f"/api/internal/runs/{self.rid}/events",
                json={"attempt": 1, "events": [event]},
                headers={LEASE_HEADER: self.lease},
            )
        assert r.status_code == 200, r.text
        return dict(r.json())

    def start(self, sha: str = SHA) -> None:
        sets = [
            {
                "name": n,
                "role": role,
                "documents": 5,
                "characters": 80,
                "exact": True,
                "text_sha256": sha,
            }
            for n, role in (("kn", "target"), ("en", "retain"))
        ]
        self.send(
            "start", 0, trainable_params=1000, total_params=5000, world_size=2, eval_sets=sets
        )

    def eval(self, step: int, kn: float, en: float, tokens: int | None = None) -> dict[str, Any]:
        if tokens is not None:
            self.send("log", step, loss=kn, tokens_seen=tokens)
        return self.send("eval", step, eval_kn_bits_per_char=kn, eval_en_bits_per_char=en)


def checkpoint(panel: Panel, pretend: Pretend, step: int) -> str:
    """A checkpoint directory in the run's output dir and the event that tells the panel."""
    with panel.client() as c:
        out = Path(c.get(f"/api/runs/{pretend.rid}").json()["output_dir"])
    path = out / f"checkpoint-{step}"
    path.mkdir(parents=True, exist_ok=True)
    pretend.send("checkpoint", step, name=path.name, path=str(path))
    return path.name


def evaluate(panel: Panel, run_id: str, checkpoint: str, tasks: list[dict[str, Any]]) -> None:
    """An evaluate job queued through ``POST /api/jobs``; a pretend worker claims it and reports
    the result document the evaluate job writes, so the panel stores the scores itself."""
    with panel.client() as c:
        params = {"run_id": run_id, "checkpoint": checkpoint, "tasks": ["xnli_en"]}
        r = c.post("/api/jobs", json={"kind": "evaluate", "params": params})
        assert r.status_code == 201, r.text
        job_id = r.json()["id"]
    with worker_client(panel) as w:
        r = w.post(f"/api/internal/jobs/{job_id}/claim", json={"worker": "wx"})
        assert r.status_code == 200, r.text
        lease = r.json()["lease"]
    with worker_client(panel, lease) as w:
        r = w.post(
            f"/api/internal/jobs/{job_id}/status",
            json={"status": "succeeded", "reason": "finished", "result": {"tasks": tasks}},
        )
        assert r.status_code == 200, r.text


def task(name: str, samples: int, **metrics: tuple[float, float | None]) -> dict[str, Any]:
    return {
        "task": name,
        "samples": samples,
        "num_fewshot": 0,
        "metrics": [{"metric": m, "value": v, "stderr": e} for m, (v, e) in metrics.items()],
    }
