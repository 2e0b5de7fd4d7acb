"""Rows written straight into a test database (in-process tests of the services)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlmodel import Session

from backend.core.db import get_engine
from backend.models import Run, Worker, utcnow
from cpt_contract.settings import Settings


def silent_running_run(settings: Settings, run_id: str, out: Path, seconds: float = 60) -> None:
    """A running run on worker ``box``; neither has been heard of for ``seconds``."""
    long_ago = utcnow() - timedelta(seconds=seconds)
    with Session(get_engine(settings)) as s:
        s.add(Worker(name="box", last_heartbeat=long_ago))
        s.add(
            Run(
                id=run_id,
                status="running",
                worker="box",
                config={},
                model="m",
                method="lora",
                queue="q",
                output_dir=str(out),
                last_seen_at=long_ago,
                started_at=long_ago,
            )
        )
        s.commit()
