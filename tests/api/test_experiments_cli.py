"""``cpt-panel experiments`` against a real API (no worker: the runs stay queued)."""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from pathlib import Path

from tests.api.test_experiments import _base_tokenizer, _sets
from tests.support.panel import ROOT, Panel

Api = tuple[Panel, dict[str, Path]]


def cli(panel: Panel, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**panel.env, "CPT_API_URL": panel.url, "CPT_API_TOKEN": panel.token, "COLUMNS": "250"}
    return subprocess.run(
        [sys.executable, "-m", "cpt_cli.main", "experiments", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _args(assets: dict[str, Path], *axes: str) -> list[str]:
    sets = _sets(assets)
    en = sets["en"]["path"]
    args = [
        "create",
        "--run-preset=tiny-demo",
        f'--set=data.eval_sets={{"kn": "{sets["kn"]}", "en": "{en}"}}',
        f"--set=launch.queue=nobody-{uuid.uuid4().hex[:6]}",
        f"--axis=model.tokenizer_name_or_path={_base_tokenizer(assets)},{assets['tokenizer']}",
        "--target=kn",
        "--retain=en",
        "--cap=0.05",
        "--steps=12",
    ]
    return args + [f"--axis={a}" for a in axes]


def test_cli_dry_run_create_cancel_verdict(api: Api) -> None:
    panel, assets = api
    done = cli(panel, *_args(assets, "method.finetuning_type=lora,full"), "--dry-run")
    assert done.returncode == 0, done.stdout + done.stderr
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    assert len(lines) == 4 and all("· 12 steps" in line for line in lines), done.stdout
    bad = cli(panel, *_args(assets, "training.learning_rate=1e-4,-1"))
    assert bad.returncode == 1
    assert "axes.training.learning_rate.1: axis training.learning_rate value -1" in bad.stderr
    done = cli(panel, *_args(assets, "method.finetuning_type=lora,full"), "--name=cli", "--launch")
    assert done.returncode == 0, done.stderr
    exp_id = re.search(r"created (x-[0-9a-f]+) \(cli\): 4 runs → running", done.stdout)
    assert exp_id, done.stdout
    done = cli(panel, "cancel", exp_id.group(1))
    assert done.returncode == 0 and "→ incomplete (cancelled 4)" in done.stdout, done.stdout
    done = cli(panel, "verdict", exp_id.group(1))
    assert done.returncode == 0, done.stderr
    assert "winner: no run has finished yet" in done.stdout
    done = cli(panel, "verdict", exp_id.group(1), "--export=md")
    assert done.returncode == 0 and done.stdout.startswith("# cli (x-"), done.stdout
    assert "- target set: kn; retain sets: en" in done.stdout
    listed = cli(panel, "list")
    assert exp_id.group(1) in listed.stdout
