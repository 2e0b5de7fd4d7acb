"""A run that also reports to MLflow, TensorBoard and W&B (``training.report_to``), through the
real worker: a real MLflow tracking server started here (the run's metrics read back through
MLflow's API equal the panel's), TensorBoard's event files read back with tensorboard's reader,
and W&B in offline mode (its run directory read back). The trackers' settings are the panel's
secrets: they reach the ranks' environment, never the argv, the log or an answer."""

from __future__ import annotations

import math
import uuid
from pathlib import Path

import pytest

from tests.support.e2e import submit, tiny_config, wait_final
from tests.support.mlflow_server import mlflow_server  # noqa: F401
from tests.support.panel import Panel
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
