"""The UI's pure modules (``frontend/src/lib``: formatting, smoothing, metrics, the log buffer)
pass their vitest unit tests (``frontend/src/lib/*.test.ts``, run by ``npm test``).

Without the UI's packages this fails (it never skips): ``make test`` installs them first
(``make frontend``), by hand it is ``cd frontend && npm ci``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

FRONTEND = Path(__file__).resolve().parents[2] / "frontend"


def test_the_frontend_unit_tests_pass() -> None:
    vitest = FRONTEND / "node_modules" / ".bin" / "vitest"
    assert vitest.exists(), "frontend/node_modules is missing: run `make frontend` (or npm ci)"
    npm = shutil.which("npm")
    assert npm, "npm is not on PATH"
    done = subprocess.run(
        [npm, "test", "--silent", "--", "--reporter=dot", "--no-color"],
        cwd=FRONTEND,
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, f"vitest failed (cd frontend && npm test):\n{out[-6000:]}"
    # Every lib test file ran (a renamed or dropped file would otherwise pass unnoticed).
    files = re.search(r"Test Files\s+(\d+) passed", out)
    assert files and int(files.group(1)) >= len(list((FRONTEND / "src").rglob("*.test.ts"))) >= 4, (
        out
    )
