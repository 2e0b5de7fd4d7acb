"""``python -m worker.hub publish``: a merged model (or a full-weight checkpoint) with its
tokenizer and model card to a Hub repo, through ``huggingface_hub``'s own upload client
(``create_repo`` with the private flag, then one commit of the folder).

The endpoint and the token come from the environment (``HF_ENDPOINT``, ``HF_TOKEN``), never an
argv. ``--card``: the model card, uploaded as ``README.md`` (the folder's own is replaced).
Optimizer states, RNG states and DeepSpeed shards are left out: a repo gets the model.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from worker.hub.download import DownloadError

#: What a checkpoint holds besides the model (never published).
SKIP = ["optimizer.pt", "scheduler.pt", "rng_state*.pth", "trainer_state.json",
        "training_args.bin", "global_step*/**", "latest", "zero_to_fp32.py", "cpt_run.json",
        "*.partial/**"]  # fmt: skip


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--folder", required=True)
    p.add_argument("--repo_id", required=True)
    p.add_argument("--private", choices=("true", "false"), default="true")
    p.add_argument("--card")
    p.add_argument("--message", default="Upload from cpt-panel")
    p.add_argument("--json", required=True)


def publish(args: argparse.Namespace) -> dict[str, Any]:
    from huggingface_hub import CommitOperationAdd, HfApi
    from huggingface_hub.errors import HfHubHTTPError

    folder = Path(args.folder)
    if not (folder / "config.json").is_file() or not any(folder.glob("*.safetensors")):
        raise DownloadError(
            f"{folder} holds no HF model (config.json + safetensors): merge the checkpoint first"
        )
    api = HfApi()
    private = args.private == "true"
    ignore = [*SKIP, "README.md"] if args.card else SKIP
    operations = [CommitOperationAdd("README.md", str(args.card))] if args.card else []
    files = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if path.is_file() and not any(Path(rel).match(g) for g in ignore):
            operations.append(CommitOperationAdd(rel, str(path)))
            files.append(rel)
    try:
        repo = api.create_repo(args.repo_id, private=private, exist_ok=True, repo_type="model")
        commit = api.create_commit(
            repo_id=args.repo_id, repo_type="model", operations=operations,
            commit_message=args.message,
        )  # fmt: skip
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else None
        if status in (401, 403):
            raise DownloadError(
                f"the Hub refused to write {args.repo_id} (HTTP {status}): set a token with "
                "write access in Settings, or pick a repo under your account"
            ) from None
        raise DownloadError(f"the Hub answered HTTP {status} for {args.repo_id}: {exc}") from None
    return {
        "path": str(repo),
        "repo_id": args.repo_id,
        "url": str(repo),
        "private": private,
        "commit": commit.oid,
        "files": sorted({*files, *(["README.md"] if args.card else [])}),
    }
