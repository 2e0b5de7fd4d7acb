"""``has_checkpoint``: the runs list (and a run's own answer) says whether a run that stopped
unfinished has a checkpoint on disk, so "Resume" is offered only where it can work."""

from __future__ import annotations

from pathlib import Path

from sqlmodel import Session

from backend.core.db import get_engine
from backend.models import Checkpoint, Run, utcnow
from cpt_contract.run_paths import RunPaths
from cpt_contract.statuses import RunStatus
from tests.support.api import client_for, make_assets, settings_for


def _set(settings: object, run_id: str, status: RunStatus) -> None:
    with Session(get_engine(settings)) as session:  # type: ignore[arg-type]
        run = session.get(Run, run_id)
        assert run is not None
        run.status, run.finished_at = status, utcnow()
        session.add(run)
        session.commit()


def test_the_list_says_which_stopped_runs_have_a_checkpoint(tmp_path: Path) -> None:
    assets = make_assets(tmp_path / "assets")
    settings = settings_for(tmp_path, assets["root"])
    with client_for(settings) as client:
        ids = [client.post("/api/runs", json={"preset": "tiny-demo"}).json()["id"] for _ in "abc"]
        saved, bare, done = ids
        for run_id in ids:
            _set(settings, run_id, RunStatus.cancelled)
        _set(settings, done, RunStatus.succeeded)
        # ``saved`` and ``done`` saved checkpoint-2 into their output dir; ``bare`` has a row
        # whose directory is gone (rotated away by save_total_limit, or deleted).
        with Session(get_engine(settings)) as session:
            for run_id, on_disk in ((saved, True), (bare, False), (done, True)):
                path = RunPaths.of(settings.runs_dir, run_id).output_dir / "checkpoint-2"
                if on_disk:
                    path.mkdir(parents=True)
                session.add(
                    Checkpoint(
                        run_id=run_id, attempt=1, name="checkpoint-2", step=2, path=str(path)
                    )
                )
            session.commit()

        rows = {r["id"]: r for r in client.get("/api/runs").json()["items"]}
        assert rows[saved]["has_checkpoint"] is True
        assert rows[bare]["has_checkpoint"] is False
        # A succeeded run is never resumed from its last checkpoint: not looked at.
        assert rows[done]["has_checkpoint"] is None
        assert client.get(f"/api/runs/{saved}").json()["has_checkpoint"] is True
        assert client.get(f"/api/runs/{bare}").json()["has_checkpoint"] is False

        # The one offered Resume resumes.
        r = client.post(f"/api/runs/{saved}/resume", json={"checkpoint": "last"})
        assert r.status_code == 200 and r.json()["status"] == RunStatus.queued, r.text
