"""Recovery loop (worker lost, re-enqueue on start) and serving the built frontend."""

from __future__ import annotations

import base64
import json
import threading
import time
from pathlib import Path

import httpx

from tests.support.api import claimed_run, create_run, launch, worker_client
from tests.support.panel import start_panel


def _messages_for(data_dir: Path, run_id: str) -> int:
    queue = data_dir / "broker" / "queue"
    bodies = [
        json.loads(base64.b64decode(json.loads(p.read_text())["body"])) for p in queue.iterdir()
    ]
    return sum(1 for args, _kwargs, _embed in bodies if args[0] == run_id)


def test_worker_lost_and_requeue_on_restart(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text("<html>cpt-panel spa</html>")
    (dist / "assets" / "app.js").write_text("console.log('app')")
    env = {"CPT_WORKER_LOST_SECONDS": "2", "CPT_FRONTEND_DIST": str(dist)}
    panel, assets = launch(tmp_path, extra_env=env)
    stop = threading.Event()
    try:
        lost = claimed_run(panel, worker="ghost")
        alive = claimed_run(panel, worker="alive-box")
        orphan = claimed_run(panel, worker="alive-box")  # the box is up but does not list it
        with worker_client(panel) as w:
            w.post(
                "/api/internal/workers/heartbeat",
                json={"name": "ghost", "current_runs": [lost["id"]]},
            )

            def beat() -> None:  # a healthy worker keeps its run alive
                with worker_client(panel) as hb:
                    while not stop.is_set():
                        hb.post(
                            "/api/internal/workers/heartbeat",
                            json={"name": "alive-box", "current_runs": [alive["id"]]},
                        )
                        stop.wait(0.5)

            threading.Thread(target=beat, daemon=True).start()
        with panel.client() as c:
            deadline = time.time() + 15
            while time.time() < deadline and any(
                c.get(f"/api/runs/{r['id']}").json()["attempt"] != 2 for r in (lost, orphan)
            ):
                time.sleep(0.3)
            failed = c.get(f"/api/runs/{lost['id']}").json()
            healthy = c.get(f"/api/runs/{alive['id']}").json()
            orphaned = c.get(f"/api/runs/{orphan['id']}").json()
            workers = {x["name"]: x for x in c.get("/api/workers").json()}
            waiting = create_run(c)
            # The built frontend: files as they are, SPA routes get index.html, /api stays JSON.
            index = httpx.get(panel.url + "/")
            deep = httpx.get(panel.url + "/runs/r-123/metrics")
            asset = httpx.get(panel.url + "/assets/app.js")
            api_404 = httpx.get(panel.url + "/api/nope")
            escape = httpx.get(panel.url + "/assets/..%2F..%2Fetc%2Fpasswd")
        # Lost = interrupted: restarted automatically as attempt 2, the reason kept per attempt.
        assert failed["status"] == "queued" and failed["attempt"] == 2, failed
        assert failed["attempt_log"][0]["reason"].startswith("worker lost")
        assert failed["attempt_log"][0]["restarted"] is True
        assert "attempt 2" in failed["status_reason"]
        assert healthy["status"] == "running"
        assert orphaned["status"] == "queued", orphaned
        assert "is alive but" in orphaned["attempt_log"][0]["reason"]
        assert workers["alive-box"]["alive"] and not workers["ghost"]["alive"]
        assert "cpt-panel spa" in index.text and "cpt-panel spa" in deep.text
        assert asset.text == "console.log('app')"
        assert api_404.status_code == 404 and api_404.json() == {"detail": "Not Found"}
        assert "root:" not in escape.text
        assert _messages_for(panel.data_dir, waiting["id"]) == 1
    finally:
        stop.set()
        panel.stop()
    # A restart sends the message of every run still queued again (the claim dedups).
    again = start_panel(
        panel.data_dir,
        broker_url=None,
        allowed_roots=[assets["root"]],
        extra_env={**env, "CPT_QUEUE": panel.env["CPT_QUEUE"]},
    )
    try:
        deadline = time.time() + 10
        while time.time() < deadline and _messages_for(panel.data_dir, waiting["id"]) < 2:
            time.sleep(0.2)
        assert _messages_for(panel.data_dir, waiting["id"]) == 2
    finally:
        again.stop()
