"""The GPU check's CPU dry run: ``bash bench/gpu_check.sh --smoke`` trains full and LoRA with the
same plumbing as on a GPU (peak measurement, pretrain.py, MFU, worker.attempt.gpu sampling, cancel), so
the script a lent GPU machine runs once is known to work before that day."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_gpu_check_smoke(tmp_path: Path) -> None:
    env = {**os.environ, "OUT": str(tmp_path / "out"), "CPT_GPU_CHECK_WORK": str(tmp_path / "w")}
    (tmp_path / "out").mkdir()
    proc = subprocess.run(
        ["bash", "bench/gpu_check.sh", "--smoke"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "| full_zero2 | succeeded |" in proc.stdout
    results = json.loads((tmp_path / "out" / "gpu_check.json").read_text())
    for name in ("full_zero2", "lora_zero2"):
        r = results[name]
        assert r["end"] == "succeeded" and r["tokens_per_second"] > 0, r
        assert r["mfu_measured_peak"] > 0 and r["memory_estimate_gb"] >= 0
        # The launch form's parameter count is the one the training script reported.
        est = r["memory_estimate"]
        assert (est["params_total"], est["params_trainable"]) == (
            r["total_params"],
            r["trainable_params"],
        ), r
    assert results["peak_tflops"] > 0
    assert results["model"]["attn_implementation"] == "sdpa"
    assert results["cancel"]["end"] == "cancelled"
