"""The CLI against the live panel: submit with --set and --follow, list, logs, an error."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.e2e import get_run, run_dir
from tests.support.panel import ROOT, Panel

pytestmark = pytest.mark.slow


def cli(panel: Panel, *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    env = {**panel.env, "CPT_API_URL": panel.url, "CPT_API_TOKEN": panel.token, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "cpt_cli.main", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_cli_submit_follow_list_logs(panel: Panel, tiny_assets: dict[str, Path]) -> None:
    sets = [
        f"model.model_name_or_path={tiny_assets['model']}",
        f"model.tokenizer_name_or_path={tiny_assets['tokenizer_extended']}",
        f"data.dataset_dir={tiny_assets['corpus']}",
        "data.max_eval_samples=8",
        "training.max_steps=4",
        "training.save_steps=100",
        "training.logging_steps=1",
        "training.learning_rate=1e-3",  # YAML 1.1 would keep this a string; the CLI makes it a float
        "training.eval_steps=null",
        f'data.eval_sets={{"en": "{tiny_assets["corpus"] / "udhr_en_Latn.txt"}"}}',
    ]
    args = ["runs", "submit", "--preset", "tiny-demo", "--name", "from the cli", "--follow"]
    for item in sets:
        args += ["--set", item]
    done = cli(panel, *args)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    run_id = re.search(r"submitted (r-[0-9a-z]+)", out).group(1)  # type: ignore[union-attr]
    steps = [int(s) for s in re.findall(r"step (\d+)/4", out)]
    assert steps and steps[-1] == 4 and steps == sorted(steps), out  # progress, then the end
    assert f"run {run_id} succeeded" in out
    # Each evaluation printed once, with every set's bits/char (step 0 = the baseline).
    evals = re.findall(r"eval step (\d+) .*", out)
    assert evals == ["0", "4"], out
    assert re.search(r"eval step 4 .*en \d+\.\d+ bits/char \([+-]\d", out), out
    assert re.search(r"eval step 0 .*validation \d+\.\d+ bits/char", out), out
    run: dict[str, Any] = get_run(panel, run_id)
    assert run["name"] == "from the cli" and run["config"]["training"]["learning_rate"] == 1e-3

    listed = cli(panel, "runs", "list", "--limit", "50")
    assert listed.returncode == 0 and run_id in listed.stdout

    logs = cli(panel, "runs", "logs", run_id)
    log_file = run_dir(panel, run_id) / "logs" / "attempt-1.log"
    assert logs.returncode == 0
    assert logs.stdout == log_file.read_text()  # both read with universal newlines

    followed_logs = cli(
        panel, "runs", "logs", run_id, "--follow"
    )  # a finished run: prints, then ends
    assert followed_logs.returncode == 0 and followed_logs.stdout == logs.stdout

    refused = cli(panel, "runs", "cancel", run_id)
    assert refused.returncode == 1 and "409" in refused.stderr and "succeeded" in refused.stderr

    followed = cli(panel, "runs", "follow", run_id)  # already finished: says so at once
    assert followed.returncode == 0 and f"run {run_id} succeeded" in followed.stdout

    unknown = cli(panel, "runs", "resume", run_id, "--checkpoint", "checkpoint-999")
    assert (
        unknown.returncode == 1 and "422" in unknown.stderr and "checkpoint-999" in unknown.stderr
    )
    assert get_run(panel, run_id)["attempt"] == 1  # nothing was queued


def test_cli_errors_are_one_clear_line(panel: Panel, tmp_path: Path) -> None:
    done = cli(panel, "runs", "submit", "--set", "training.max_steps=3")
    assert done.returncode == 1 and "--preset" in done.stderr

    config = tmp_path / "run.yaml"
    config.write_text("training:\n  learning_rate: -1\n  max_steps: 3\n")
    bad = cli(panel, "runs", "submit", "--preset", "tiny-demo", "--config", str(config))
    assert bad.returncode == 1, bad.stdout
    # The API's 422 names the field path, and the CLI passes it on.
    assert "HTTP 422" in bad.stderr and "training.learning_rate" in bad.stderr, bad.stderr

    unknown = cli(panel, "runs", "follow", "r-doesnotexist")
    assert unknown.returncode == 1 and "404" in unknown.stderr
