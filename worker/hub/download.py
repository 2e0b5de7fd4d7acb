"""Download a Hub repo (a model, or a dataset's files) into a root, as a job's tool.

``python -m worker.hub download --repo_id=ORG/NAME [--revision=REV] [--repo_type=model|dataset]
--dest_root=DIR [--skip=GLOB ...] [--allow=GLOB ...] [--reserve_bytes=N] --json=RESULT``

The Hub endpoint and the token come from the environment (``HF_ENDPOINT``, ``HF_TOKEN``), never
from the argv. Steps: resolve the revision to a commit and list its files with their sizes; check
the free space (what is left to fetch plus ``--reserve_bytes`` must fit); fetch file by file into
``<dest_root>/.partial/<name>`` (a dot directory: the pickers never list it), printing a
``progress {json}`` line about twice a second (bytes, files, rate, ETA, all measured here); then
write ``cpt_source.json`` (hub id, revision, commit, endpoint, files, bytes) and rename the whole
directory to ``<dest_root>/<name>``. A cancel or a crash leaves the partial directory: the next
download of the same repo and revision resumes it (finished files are kept, a half file goes on
from its ``.incomplete`` bytes). Failures print one ``error: ...`` line that says what to do and
exit 2 (bad request: 401/403/404), 3 (no space) or 1.
"""

from __future__ import annotations

import argparse
import errno
import fnmatch
import json
import os
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SOURCE_FILE = "cpt_source.json"
PARTIAL = ".partial"
PROGRESS_SECONDS = 0.5
EXIT_BAD_REQUEST, EXIT_NO_SPACE = 2, 3


class DownloadError(Exception):
    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Entry:
    path: str
    size: int


def target_name(repo_id: str, revision: str) -> str:
    """``org/name`` at ``main`` → ``org--name``; another revision is part of the name."""
    name = repo_id.replace("/", "--")
    return name if revision == "main" else f"{name}--{revision.replace('/', '-')}"


def _selected(path: str, allow: list[str], skip: list[str]) -> bool:
    if allow and not any(fnmatch.fnmatch(path, g) for g in allow):
        return False
    return not any(fnmatch.fnmatch(path, g) for g in skip)


def _explain(exc: Exception, repo_id: str, revision: str, repo_type: str) -> DownloadError:
    from huggingface_hub import errors

    what = f"{repo_type} {repo_id!r} at revision {revision!r}"
    token = "the token set for the panel (CPT_HUB_TOKEN)"
    if isinstance(exc, errors.GatedRepoError):
        return DownloadError(
            f"{what} is gated: accept its terms on the Hub with the account of {token}, "
            "then run the download again",
            EXIT_BAD_REQUEST,
        )
    if isinstance(exc, errors.RevisionNotFoundError):
        return DownloadError(
            f"{what}: no such revision; give a branch, tag or commit that exists",
            EXIT_BAD_REQUEST,
        )
    if isinstance(exc, errors.RepositoryNotFoundError):
        return DownloadError(
            f"{what} was not found (HTTP {_status(exc)}): check the id and the revision; "
            f"if it is private or gated, set {token} to one with access",
            EXIT_BAD_REQUEST,
        )
    status = _status(exc)
    if status in (401, 403):
        return DownloadError(
            f"{what}: the Hub refused access (HTTP {status}); set {token} to a valid token "
            "with access to this repo",
            EXIT_BAD_REQUEST,
        )
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return disk_error(exc)
    return DownloadError(f"{what}: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")


def disk_error(exc: OSError) -> DownloadError:
    if exc.errno == errno.ENOSPC:
        return DownloadError(
            "the disk is full: free space on the models root or pick another, then run the "
            "job again (a download resumes)",
            EXIT_NO_SPACE,
        )
    return DownloadError(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "))


def _status(exc: Exception) -> int | None:
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None)


def list_files(api: Any, repo_id: str, revision: str, repo_type: str) -> tuple[str, list[Entry]]:
    """(commit, every file of the revision with its size)."""
    from huggingface_hub import RepoFile

    info = api.repo_info(repo_id, revision=revision, repo_type=repo_type)
    commit = info.sha or revision
    entries = [
        Entry(f.path, int(f.size or 0))
        for f in api.list_repo_tree(repo_id, revision=commit, repo_type=repo_type, recursive=True)
        if isinstance(f, RepoFile)
    ]
    return commit, entries


class Progress:
    """Bytes on disk under the partial dir (finished files and ``.incomplete`` parts), sampled
    by a thread and printed as ``progress {json}`` lines."""

    def __init__(self, root: Path, total_bytes: int, total_files: int) -> None:
        self.root, self.total_bytes, self.total_files = root, total_bytes, total_files
        self.files_done = 0
        self.started = time.monotonic()
        self.start_bytes = self.on_disk()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def on_disk(self) -> int:
        total = 0
        for p in self.root.rglob("*"):
            try:
                if p.is_file() and not p.name.endswith((".lock", ".metadata")):
                    total += p.stat().st_size
            except OSError:
                continue
        return total

    def line(self, final: bool = False) -> dict[str, Any]:
        done = min(self.on_disk(), self.total_bytes) if not final else self.total_bytes
        seconds = time.monotonic() - self.started
        rate = (done - self.start_bytes) / seconds if seconds > 0 else 0.0
        left = self.total_bytes - done
        return {
            "bytes": done,
            "total_bytes": self.total_bytes,
            "files": self.files_done,
            "total_files": self.total_files,
            "bytes_per_second": round(rate, 1),
            "eta_seconds": round(left / rate, 1)
            if rate > 0 and left > 0
            else (0 if not left else None),
        }

    def emit(self, final: bool = False) -> None:
        print("progress " + json.dumps(self.line(final)), flush=True)

    def _loop(self) -> None:
        while not self._stop.wait(PROGRESS_SECONDS):
            self.emit()

    def __enter__(self) -> Progress:
        self.emit()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def download(args: argparse.Namespace) -> dict[str, Any]:
    from huggingface_hub import HfApi, hf_hub_download

    endpoint = os.environ.get("HF_ENDPOINT") or None
    api = HfApi(endpoint=endpoint)
    try:
        commit, entries = list_files(api, args.repo_id, args.revision, args.repo_type)
    except Exception as exc:
        raise _explain(exc, args.repo_id, args.revision, args.repo_type) from exc
    chosen = [e for e in entries if _selected(e.path, args.allow, args.skip)]
    if not chosen:
        raise DownloadError(
            f"no file of {args.repo_id!r} is left after --skip/--allow "
            f"({len(entries)} files in the repo): loosen the patterns",
            EXIT_BAD_REQUEST,
        )
    dest_root = Path(args.dest_root)
    dest_root.mkdir(parents=True, exist_ok=True)
    name = args.name or target_name(args.repo_id, args.revision)
    final = dest_root / name
    if final.exists():
        raise DownloadError(
            f"{final} already exists: delete it or download another revision", EXIT_BAD_REQUEST
        )
    partial = dest_root / PARTIAL / name
    partial.mkdir(parents=True, exist_ok=True)
    total = sum(e.size for e in chosen)
    progress = Progress(partial, total, len(chosen))
    need = max(0, total - progress.start_bytes) + args.reserve_bytes
    free = shutil.disk_usage(partial).free
    if need > free:
        raise DownloadError(
            f"not enough free space for {args.repo_id!r}: {_gb(total - progress.start_bytes)} "
            f"left to download plus {_gb(args.reserve_bytes)} kept free, but {_gb(free)} free "
            f"under {dest_root}; free space or pick another root",
            EXIT_NO_SPACE,
        )
    print(
        f"downloading {args.repo_id}@{args.revision} ({commit}): {len(chosen)} files, "
        f"{_gb(total)}; {_gb(progress.start_bytes)} already here",
        flush=True,
    )
    with progress:
        for entry in chosen:
            try:
                hf_hub_download(
                    args.repo_id, entry.path, repo_type=args.repo_type, revision=commit,
                    local_dir=partial, endpoint=endpoint,
                )  # fmt: skip
            except Exception as exc:
                raise _explain(exc, args.repo_id, args.revision, args.repo_type) from exc
            progress.files_done += 1
    progress.emit(final=True)
    shutil.rmtree(partial / ".cache", ignore_errors=True)
    source = {
        "hub_id": args.repo_id,
        "repo_type": args.repo_type,
        "revision": args.revision,
        "commit": commit,
        "endpoint": endpoint or "https://huggingface.co",
        "files": [e.path for e in chosen],
        "bytes": total,
        "skipped": args.skip,
        "downloaded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **({"text_column": args.text_column} if args.text_column else {}),
    }
    (partial / SOURCE_FILE).write_text(json.dumps(source, indent=1))
    os.replace(partial, final)
    return {
        "path": str(final),
        **{k: v for k, v in source.items() if k != "files"},
        "files": len(chosen),
    }


def _gb(n: int) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--repo_id", required=True)
    p.add_argument("--revision", default="main")
    p.add_argument("--repo_type", choices=("model", "dataset"), default="model")
    p.add_argument("--dest_root", required=True)
    p.add_argument("--name", default=None, help="directory name (default: org--name[--rev])")
    p.add_argument("--skip", action="append", default=[], help="glob of files not to fetch")
    p.add_argument("--allow", action="append", default=[], help="fetch only files matching")
    p.add_argument("--reserve_bytes", type=int, default=0, help="keep this much disk free")
    p.add_argument("--text_column", default=None, help="a dataset's text column (recorded)")
    p.add_argument("--json", required=True, help="write the result here")
