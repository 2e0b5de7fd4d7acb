"""Read back a run's local Trackio project with Trackio's own API (``trackio.Api`` and its
SQLite storage), in a child process: Trackio fixes its directory (``TRACKIO_DIR``) when it is
imported, so the test process itself never imports it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

_READ = """
import json, sys
import trackio
from trackio.sqlite_storage import SQLiteStorage
project = sys.argv[1]
out = {r.name: SQLiteStorage.get_logs(project, r.name) for r in trackio.Api().runs(project)}
print(json.dumps(out, default=str))
"""


def trackio_runs(trackio_dir: Path, project: str) -> dict[str, list[dict[str, Any]]]:
    """Run name → its logged rows (each a dict of the metrics logged together)."""
    env = {**os.environ, "TRACKIO_DIR": str(trackio_dir)}
    done = subprocess.run(
        [sys.executable, "-c", _READ, project],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))
