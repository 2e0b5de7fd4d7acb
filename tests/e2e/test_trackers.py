"""A run that also reports to MLflow, TensorBoard, W&B and Trackio (``training.report_to``),
through the real worker: a real MLflow tracking server started here (the run's metrics read back
through MLflow's API equal the panel's), TensorBoard's event files read back with tensorboard's
reader, W&B in offline mode (its run directory read back) and Trackio locally (its SQLite project
in the run's output dir, read back with Trackio's API). The trackers' settings are the panel's
secrets: they reach the ranks' environment, never the argv, the log or an answer. A run
interrupted and resumed keeps one MLflow run."""

from __future__ import annotations

import math
import signal
import uuid
from pathlib import Path

import pytest

from tests.support.e2e import (
    api_events,
    run_dir,
    submit,
    tiny_config,
    training_processes,
    wait_final,
    wait_for,
)
from tests.support.mlflow_server import mlflow_server  # noqa: F401
from tests.support.panel import Panel
from tests.support.trackio_log import trackio_runs
from tests.support.wandb_log import history

pytestmark = pytest.mark.slow

WANDB_KEY = "wandb-test-key-" + "0" * 25


def _panel_losses(panel: Panel, run_id: str) -> dict[int, float]:
    with panel.client() as c:
        events = c.get(f"/api/runs/{run_id}/events", params={"kind": "log"}).json()
    return {e["step"]: e["data"]["loss"] for e in events if e["data"].get("loss") is not None}


def _close(a: dict[int, float], b: dict[int, float]) -> bool:
    return a.keys() == b.keys() and all(math.isclose(a[k], b[k], rel_tol=1e-6) for k in a)


def test_a_run_reports_to_mlflow_tensorboard_and_wandb(
    panel: Panel,
    tiny_assets: dict[str, Path],
    mlflow_server: str,  # noqa: F811
) -> None:
    experiment = "cpt-" + uuid.uuid4().hex[:8]
    settings = {
        "mlflow": {"tracking_uri": mlflow_server, "experiment": experiment},
        "wandb": {"mode": "offline", "project": "cpt-test", "api_key": WANDB_KEY},
    }
    with panel.client() as c:
        for tracker, values in settings.items():
            r = c.put(f"/api/settings/trackers/{tracker}", json={"values": values})
            assert r.status_code == 200, r.text
        assert WANDB_KEY not in r.text and mlflow_server not in r.text
        state = {t["tracker"]: t for t in r.json()}
        assert state["wandb"]["set"]["api_key"] and state["wandb"]["plain"]["mode"] == "offline"
        bad = c.put("/api/settings/trackers/wandb", json={"values": {"mode": "sometimes"}})
        assert bad.status_code == 422 and "mode" in str(bad.json()["detail"][0]["loc"])
        # Setting one keeps the others (the key need not be typed again).
        r = c.put("/api/settings/trackers/wandb", json={"values": {"entity": "lab"}})
        wandb = next(t for t in r.json() if t["tracker"] == "wandb")
        assert wandb["set"]["api_key"] and wandb["plain"] == {
            "project": "cpt-test",
            "entity": "lab",
            "mode": "offline",
        }
    try:
        config = tiny_config(tiny_assets, max_steps=6, logging_steps=1)
        config["training"]["report_to"] = ["mlflow", "tensorboard", "wandb"]
        run = wait_final(panel, submit(panel, config, "trackers")["id"])
        with panel.client() as c:
            log = c.get(f"/api/runs/{run['id']}/logs").text
        assert run["status"] == "succeeded", (run, log[-3000:])
        ours = _panel_losses(panel, run["id"])
        assert sorted(ours) == [1, 2, 3, 4, 5, 6], ours

        # MLflow: the run's metrics through MLflow's own API.
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=mlflow_server)
        exp = client.get_experiment_by_name(experiment)
        assert exp is not None
        (mlrun,) = client.search_runs([exp.experiment_id])
        theirs = {m.step: m.value for m in client.get_metric_history(mlrun.info.run_id, "loss")}
        print("MLflow loss by step:", theirs)
        print("panel loss by step: ", ours)
        assert _close(theirs, ours), (theirs, ours)
        assert mlrun.data.params.get("learning_rate") is not None

        # TensorBoard: the event files under the run's output dir, with tensorboard's reader.
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

        out = Path(run["output_dir"])
        (logdir,) = {p.parent for p in out.glob("runs/*/events.out.tfevents.*")}
        acc = EventAccumulator(str(logdir))
        acc.Reload()
        tb = {e.step: e.value for e in acc.Scalars("train/loss")}
        assert _close(tb, ours), (tb, ours)

        # W&B offline: its run directory's transaction log, as `wandb sync` would send it.
        (wlog,) = list(out.glob("wandb/offline-run-*/run-*.wandb"))
        rows = history(wlog)
        wb = {r["train/global_step"]: r["train/loss"] for r in rows if "train/loss" in r}
        assert _close(wb, ours), (wb, ours)

        # The keys went through the environment only.
        with panel.client() as c:
            argv = c.get(f"/api/runs/{run['id']}/command").text
        assert "--report_to=mlflow,tensorboard,wandb" in argv
        for secret in (WANDB_KEY, mlflow_server):
            assert secret not in argv and secret not in log
        config_file = Path(run["output_dir"]).parent / "config.json"
        if config_file.exists():
            assert WANDB_KEY not in config_file.read_text()
    finally:
        with panel.client() as c:
            for tracker in settings:
                c.delete(f"/api/settings/trackers/{tracker}")


def test_a_run_reports_to_trackio_in_its_output_dir(
    panel: Panel, tiny_assets: dict[str, Path]
) -> None:
    """Trackio with no Space: its project's SQLite file lands in the run's output dir (the
    worker's ``TRACKIO_DIR``, not ``~/.cache/huggingface/trackio``), named by the panel's
    setting, and holds the panel's loss at every step."""
    project = "cpt-" + uuid.uuid4().hex[:8]
    with panel.client() as c:
        r = c.put("/api/settings/trackers/trackio", json={"values": {"project": project}})
        assert r.status_code == 200, r.text
    try:
        config = tiny_config(tiny_assets, max_steps=6, logging_steps=1)
        config["training"]["report_to"] = ["trackio"]
        run = wait_final(panel, submit(panel, config, "trackio")["id"])
        with panel.client() as c:
            log = c.get(f"/api/runs/{run['id']}/logs").text
        assert run["status"] == "succeeded", (run, log[-3000:])
        ours = _panel_losses(panel, run["id"])
        assert sorted(ours) == [1, 2, 3, 4, 5, 6], ours

        trackio_dir = Path(run["output_dir"]) / "trackio"
        assert (trackio_dir / f"{project}.db").is_file(), sorted(trackio_dir.parent.iterdir())
        assert not (Path.home() / ".cache" / "huggingface" / "trackio" / f"{project}.db").exists()
        runs = trackio_runs(trackio_dir, project)
        # One run, named by the panel's run id: the final evaluation went into it too.
        assert list(runs) == [run["id"]], list(runs)
        rows = runs[run["id"]]
        assert any("eval/validation_loss" in r for r in rows), rows[-1]
        theirs = {int(r["train/global_step"]): r["train/loss"] for r in rows if "train/loss" in r}
        print("Trackio loss by step:", theirs)
        assert _close(theirs, ours), (theirs, ours)
    finally:
        with panel.client() as c:
            c.delete("/api/settings/trackers/trackio")


def test_an_interrupted_run_resumed_keeps_one_mlflow_run(
    panel: Panel,
    tiny_assets: dict[str, Path],
    mlflow_server: str,  # noqa: F811
) -> None:
    """SIGTERM to the rank after the first checkpoint (a preemption): it saves at the next step
    boundary, the panel restarts the run as attempt 2 from that checkpoint, and attempt 2 goes
    on in attempt 1's MLflow run: one MLflow run, every step's loss in it once, equal to the
    panel's."""
    experiment = "cpt-" + uuid.uuid4().hex[:8]
    with panel.client() as c:
        values = {"tracking_uri": mlflow_server, "experiment": experiment}
        r = c.put("/api/settings/trackers/mlflow", json={"values": values})
        assert r.status_code == 200, r.text
    try:
        steps = 60
        config = tiny_config(tiny_assets, max_steps=steps, save_steps=4, logging_steps=1)
        config["training"]["report_to"] = ["mlflow"]
        rid = submit(panel, config, "mlflow resumed")["id"]
        rdir = run_dir(panel, rid)
        wait_for(panel, rid, lambda r: (r["step"] or 0) >= 5, 180, "past the first checkpoint")
        rank = [
            p
            for p in training_processes(rdir)
            if "torch.distributed.run" not in " ".join(p.cmdline())
        ]
        assert len(rank) == 1, rank
        rank[0].send_signal(signal.SIGTERM)
        run = wait_final(panel, rid, timeout=300)
        assert run["status"] == "succeeded" and run["attempt"] == 2, run
        assert run["attempt_log"][0]["reason"].startswith("preempted"), run["attempt_log"]
        events = api_events(panel, rid)
        saved = max(e["step"] for e in events if e["attempt"] == 1 and e["kind"] == "checkpoint")
        start2 = next(e for e in events if e["attempt"] == 2 and e["kind"] == "start")
        assert start2["data"]["resumed_from"].endswith(f"checkpoint-{saved}"), start2
        assert 4 <= saved < steps, saved
        ours = _panel_losses(panel, rid)
        assert sorted(ours) == list(range(1, steps + 1)), ours

        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=mlflow_server)
        exp = client.get_experiment_by_name(experiment)
        assert exp is not None
        mlruns = client.search_runs([exp.experiment_id])
        assert len(mlruns) == 1, [m.info.run_id for m in mlruns]
        (mlrun,) = mlruns
        history = client.get_metric_history(mlrun.info.run_id, "loss")
        got = sorted(m.step for m in history)
        assert got == list(range(1, steps + 1)), got  # every step, once: none lost, none twice
        theirs = {m.step: m.value for m in history}
        assert _close(theirs, ours), (theirs, ours)
        assert mlrun.data.params.get("learning_rate") is not None  # attempt 1's params kept
        recorded = Path(run["output_dir"]) / "mlflow_run_id"
        assert recorded.read_text().strip() == mlrun.info.run_id
    finally:
        with panel.client() as c:
            c.delete("/api/settings/trackers/mlflow")
