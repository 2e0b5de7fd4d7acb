"""The first failing rank, from real torchrun summaries (two ranks on CPU, no model): rank 1
killed by SIGKILL, or raising an exception under ``errors.record``; and a rank's own note."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from worker.attempt import launcher, rootcause

RANKS = """
import os, sys, time
from torch.distributed.elastic.multiprocessing.errors import record

@record
def main():
    if os.environ["RANK"] == "1":
        time.sleep(1)
        if sys.argv[1] == "kill":
            os.kill(os.getpid(), 9)
        raise ValueError("rank one's own trouble")
    time.sleep(30)

main()
"""


def _torchrun(tmp_path: Path, how: str) -> Path:
    script = tmp_path / "ranks.py"
    script.write_text(RANKS)
    log = tmp_path / f"{how}.log"
    argv = [sys.executable, "-m", "torch.distributed.run", "--nnodes=1", "--nproc_per_node=2"]
    argv += [f"--master_port={launcher.free_port()}", str(script), how]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env["TORCHELASTIC_ERROR_FILE"] = str(tmp_path / f"{how}.error.json")
    with open(log, "ab") as out:
        code = subprocess.run(argv, stdout=out, stderr=out, env=env, timeout=120).returncode
    assert code != 0
    return log


def test_a_rank_killed_by_sigkill_is_named_with_its_signal(tmp_path: Path) -> None:
    root = rootcause.from_log(_torchrun(tmp_path, "kill"))
    assert root is not None, "no root cause in torchrun's summary"
    assert (root.rank, root.exitcode, root.signal) == (1, -9, "SIGKILL")
    assert root.describe() == "rank 1: killed by SIGKILL (exit code -9)"


def test_a_rank_that_raised_is_named_with_its_exception(tmp_path: Path) -> None:
    root = rootcause.from_log(_torchrun(tmp_path, "raise"))
    assert root is not None and root.rank == 1 and root.signal is None
    assert root.describe() == "rank 1: exit code 1: ValueError: rank one's own trouble"


def test_no_summary_no_root_cause(tmp_path: Path) -> None:
    log = tmp_path / "plain.log"
    log.write_text("step 1\nTraceback (most recent call last):\nValueError: x\n")
    assert rootcause.from_log(log) is None
    assert rootcause.from_log(tmp_path / "missing.log") is None


def test_a_ranks_own_note_is_used_only_when_written_in_this_attempt(tmp_path: Path) -> None:
    note = tmp_path / ".rank-1-failure.json"
    note.write_text(json.dumps({"reason": "CUDA out of memory on rank 1"}))
    assert rootcause.rank_note(tmp_path, 1, since=time.time() - 60) == (
        "CUDA out of memory on rank 1"
    )
    assert rootcause.rank_note(tmp_path, 1, since=time.time() + 60) is None  # an older attempt's
    assert rootcause.rank_note(tmp_path, 2, since=0) is None
    root = rootcause.RootCause(1, 1, None, "ValueError: x")
    assert root.describe("CUDA out of memory on rank 1") == "rank 1: CUDA out of memory on rank 1"
