"""The exact argv the panel launches (cpt_contract/runconfig/argv.py::torchrun_argv) runs end to end.

The ``tiny-demo`` preset pointed at the tiny assets, real torchrun, ``--use_cpu``; then the same
run resumed the way the panel resumes (``--resume_from_checkpoint checkpoint-20``).
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

from cpt_contract.runconfig.argv import LaunchContext, torchrun_argv
from cpt_contract.runconfig.presets import tiny_demo
from cpt_contract.runconfig.schema import RunConfig
from tests.support.panel import ROOT, free_port
from tests.support.pretrain import (
    SCRIPT,
    assert_trained,
    events_of,
    losses_by_step,
    output_of,
    train_env,
)


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, cwd=ROOT, env=train_env(), capture_output=True, text=True, timeout=300
    )


def test_tiny_demo_argv_runs_and_resumes(tiny_assets: dict[str, Path], tmp_path: Path) -> None:
    config = RunConfig.model_validate(tiny_demo(tiny_assets["root"]))
    out, cache = tmp_path / "run" / "output", tmp_path / "run" / "cache"

    def ctx(resume: str | None) -> LaunchContext:
        return LaunchContext(
            output_dir=str(out),
            data_cache_dir=str(cache),
            use_cpu=True,
            python=sys.executable,
            script=str(SCRIPT),
            master_port=free_port(),
            resume_from_checkpoint=resume,
        )

    argv = torchrun_argv(config, ctx(None))
    assert argv[1:3] == ["-m", "torch.distributed.run"] and "--use_cpu" in argv
    proc = _run(argv)
    events = assert_trained(proc, out)
    assert "vocabulary extended from 384 to 768 tokens" in output_of(proc)
    start = next(e for e in events if e["kind"] == "start")
    assert start["max_steps"] == 40 and start["tokens_per_step"] == 4 * 64
    assert [e["step"] for e in events if e["kind"] == "eval"] == [0, 20, 40]
    assert [e["name"] for e in events if e["kind"] == "checkpoint"] == [
        "checkpoint-20",
        "checkpoint-40",
    ]
    assert math.isfinite(events[-1]["perplexity"]) and events[-1]["perplexity"] > 1
    first = losses_by_step(events)

    # The panel's retry: same argv plus --resume_from_checkpoint checkpoint-20.
    resumed = _run(torchrun_argv(config, ctx("checkpoint-20")))
    assert resumed.returncode == 0, output_of(resumed)[-6000:]
    both = events_of(out)
    assert both[: len(events)] == events
    second = both[len(events) :]
    start = next(e for e in second if e["kind"] == "start")  # after the phase markers
    assert start["step"] == 20
    assert start["resumed_from"] == str((out / "checkpoint-20").resolve())
    again = losses_by_step(second)
    assert sorted(again) == list(range(22, 41, 2))
    for step, loss in again.items():
        assert abs(loss - first[step]) < 1e-5, (step, loss, first[step])
    assert second[-1]["status"] == "succeeded"
