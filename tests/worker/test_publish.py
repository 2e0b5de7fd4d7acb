"""Publishing a merged model with its card: the real ``python -m worker.hub publish`` (the
publish job's tool) through ``huggingface_hub``'s real upload client, against a local endpoint
that *records* what that client sends (``tests/support/hub_api.py``), because no server that
accepts the Hub's upload (commit) API installs from the registries and olah is read-only. What
is checked is what the Hub would have received: the repo created private, the card as
README.md, every model and tokenizer file byte for byte, nothing of the optimizer, the token
only in the Authorization header. And the job's argv from a run's directory."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from cpt_contract.jobs import PublishParams
from cpt_contract.protocol import JobClaimOut
from cpt_contract.run_paths import JobPaths, RunPaths
from cpt_contract.settings import Settings
from tests.support.hub_api import HubApi
from tests.support.panel import ROOT
from worker.agent.jobs import tool_argv, tool_env

TOKEN = "hf_" + "PublishWriter" * 2


def test_a_merged_model_is_published_with_its_card(
    hub_api: HubApi, tiny_assets: dict[str, Path], tmp_path: Path
) -> None:
    hub_api.accounts.users[TOKEN] = "erin"
    settings = Settings(_env_file=None, data_dir=tmp_path / "data", hub_endpoint=hub_api.url)  # type: ignore[call-arg]
    run = RunPaths.of(settings.runs_dir, "r-pub001")
    merged = run.merged("checkpoint-8")
    shutil.copytree(tiny_assets["model"], merged)
    (merged / "optimizer.pt").write_bytes(b"never published")
    (merged / "README.md").write_text("an old card")
    card = "---\nlanguage:\n- kn\n---\n# r-pub001\n\n| kn | 3.5 | 2.75 |\n"
    params = PublishParams(run_id="r-pub001", checkpoint="checkpoint-8", repo_id="erin/tiny-kn")
    claim = JobClaimOut(
        kind="publish", params=params.model_dump(), job_dir=str(tmp_path / "job"), lease="x",
        hub_token=TOKEN, files={"README.md": card},
    )  # fmt: skip
    paths = JobPaths(tmp_path / "job")
    argv = tool_argv(settings, claim, paths)
    assert TOKEN not in " ".join(argv) and f"--folder={merged}" in argv
    assert "--private=true" in argv and "--repo_id=erin/tiny-kn" in argv
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONPATH": str(ROOT)}
    env.update(tool_env(settings, "publish", claim.hub_token))
    assert env["HF_TOKEN"] == TOKEN and env["HF_ENDPOINT"] == hub_api.url
    done = subprocess.run(
        [sys.executable, *argv[1:]], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert TOKEN not in done.stdout + done.stderr

    repo = hub_api.accounts.published["erin/tiny-kn"]
    assert repo["create"]["visibility"] == "private" and repo["commits"] == 1, repo["create"]
    assert repo["files"]["README.md"].decode() == card  # the card, not the folder's old one
    expected = {p.name for p in merged.iterdir() if p.is_file()} - {"optimizer.pt"}
    assert set(repo["files"]) == expected
    for name in expected - {"README.md"}:
        assert repo["files"][name] == (merged / name).read_bytes(), name
    assert hub_api.accounts.validated == [card]  # the Hub checks the card's YAML header
    writes = [
        r for r in hub_api.accounts.requests
        if "/erin/" in r["path"] or r["path"] in ("/api/repos/create", "/api/validate-yaml")
    ]  # fmt: skip
    assert writes and all(r["token"] == TOKEN for r in writes)
    result = json.loads(paths.result.read_text())
    assert result["repo_id"] == "erin/tiny-kn" and result["private"] is True
    assert result["commit"] and "README.md" in result["files"]


def test_a_refused_write_says_what_to_do(
    hub_api: HubApi, tiny_assets: dict[str, Path], tmp_path: Path
) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONPATH": str(ROOT),
           "HF_ENDPOINT": hub_api.url, "HF_TOKEN": "hf_unknown_token_000000",
           "HF_HUB_DISABLE_XET": "1"}  # fmt: skip
    argv = [sys.executable, "-m", "worker.hub", "publish", f"--folder={tiny_assets['model']}",
            "--repo_id=erin/nope", f"--json={tmp_path / 'r.json'}"]  # fmt: skip
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert "error: the Hub refused to write erin/nope (HTTP 401)" in done.stdout, done.stdout
    assert "erin/nope" not in hub_api.accounts.published
