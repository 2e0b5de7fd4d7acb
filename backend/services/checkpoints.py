"""Checkpoints of a run: listing (size from disk, eval joined by step) and tar streaming."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import update
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, col, select

from backend.core.db import write_session
from backend.models import Checkpoint, CheckpointPublic, Run, RunEvent
from backend.services.errors import NotFound
from cpt_contract.protocol import CHECKPOINT_NAME
from cpt_contract.run_paths import RunPaths
from cpt_contract.settings import Settings

log = logging.getLogger(__name__)

_NAME = re.compile(CHECKPOINT_NAME)
CHUNK = 1024 * 1024
BLOCK = tarfile.BLOCKSIZE


def _dir_size(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += (Path(root) / name).lstat().st_size
    return total


def local_dir(settings: Settings, ckpt: Checkpoint) -> Path | None:
    """The checkpoint's directory if it is on this machine, named ``checkpoint-N`` and directly
    inside its run's own output dir (links resolved): a download never tars anything else."""
    if not ckpt.path or not _NAME.match(ckpt.name):
        return None
    output = RunPaths.of(settings.runs_dir, ckpt.run_id).output_dir.resolve()
    path = Path(ckpt.path).resolve()
    if path.parent != output or path.name != ckpt.name or not path.is_dir():
        return None
    return path


def runs_with_checkpoint(settings: Settings, session: Session, run_ids: list[str]) -> set[str]:
    """Of these runs, those with a checkpoint on this machine (the checkpoint list's
    ``exists``: what "Resume" needs)."""
    if not run_ids:
        return set()
    rows = session.exec(
        select(Checkpoint)
        .where(col(Checkpoint.run_id).in_(run_ids))
        .order_by(col(Checkpoint.step).desc())
    ).all()
    found: set[str] = set()
    for c in rows:
        if c.run_id not in found and local_dir(settings, c) is not None:
            found.add(c.run_id)
    return found


def list_checkpoints(settings: Settings, session: Session, run: Run) -> list[CheckpointPublic]:
    ckpts = session.exec(
        select(Checkpoint)
        .where(Checkpoint.run_id == run.id)
        .order_by(col(Checkpoint.step), col(Checkpoint.id))
    ).all()
    evals: dict[tuple[int, int | None], dict[str, object]] = {}
    for attempt, step, data in session.exec(
        select(RunEvent.attempt, RunEvent.step, RunEvent.data).where(
            RunEvent.run_id == run.id, RunEvent.kind == "eval"
        )
    ):
        evals[(attempt, step)] = dict(data)
    out = []
    sizes: dict[int, int] = {}
    for c in ckpts:
        path = local_dir(settings, c)
        if path is not None and c.size_bytes is None and c.id is not None:
            c.size_bytes = sizes[c.id] = _dir_size(path)
        ev = evals.get((c.attempt, c.step), {})
        ppl, loss = ev.get("perplexity"), ev.get("eval_loss")
        out.append(
            CheckpointPublic(
                name=c.name,
                step=c.step,
                created_at=c.created_at,
                size_bytes=c.size_bytes,
                eval_perplexity=ppl if isinstance(ppl, int | float) else None,
                eval_loss=loss if isinstance(loss, int | float) else None,
                attempt=c.attempt,
                path=c.path,
                exists=path is not None,
            )
        )
    if sizes:
        _cache_sizes(settings, sizes)
    return out


def _cache_sizes(settings: Settings, sizes: dict[int, int]) -> None:
    """A checkpoint is written once, so its size is cached (best effort, in its own write)."""
    try:
        with write_session(settings) as session:
            for ckpt_id, size in sizes.items():
                session.exec(  # type: ignore[call-overload]
                    update(Checkpoint).where(col(Checkpoint.id) == ckpt_id).values(size_bytes=size)
                )
            session.commit()
    except OperationalError as exc:  # busy database: compute it again next time
        log.warning("could not cache checkpoint sizes: %s", exc)


def get_checkpoint(session: Session, run_id: str, name: str) -> Checkpoint:
    ckpt = session.exec(
        select(Checkpoint).where(Checkpoint.run_id == run_id, Checkpoint.name == name)
    ).first()
    if ckpt is None:
        raise NotFound(f"run {run_id} has no checkpoint {name}")
    return ckpt


def tar_stream(root: Path, arcroot: str, extra: dict[str, str] | None = None) -> Iterator[bytes]:
    """A tar of ``root`` produced file by file in 1 MiB pieces (never the whole archive in memory).

    Symlinks are stored as links, not followed, so nothing outside ``root`` leaks. ``extra``:
    text files added at the archive's root (the model card), unless ``root`` has one so named.
    """
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        here = Path(dirpath)
        # Symlinked directories are not descended into (os.walk default): store them as links.
        links = [here / d for d in dirnames if (here / d).is_symlink()]
        for path in [here, *links, *(here / f for f in sorted(filenames))]:
            rel = path.relative_to(root)
            name = arcroot if rel == Path(".") else f"{arcroot}/{rel.as_posix()}"
            header = _header(path, name)
            if header is None:
                continue
            yield header.tobuf(format=tarfile.PAX_FORMAT)
            if header.isfile():
                yield from _file_blocks(path, header.size)
    for name, text in (extra or {}).items():
        if (root / name).exists():
            continue
        body = text.encode("utf-8")
        info = tarfile.TarInfo(f"{arcroot}/{name}")
        info.size, info.mode, info.mtime = len(body), 0o644, int(time.time())
        yield info.tobuf(format=tarfile.PAX_FORMAT)
        yield body + b"\0" * (-len(body) % BLOCK)
    yield b"\0" * (BLOCK * 2)


def _header(path: Path, name: str) -> tarfile.TarInfo | None:
    try:
        st = path.lstat()
    except OSError:
        return None  # vanished meanwhile
    info = tarfile.TarInfo(name)
    info.mtime = int(st.st_mtime)
    info.mode = st.st_mode & 0o7777
    if path.is_symlink():
        info.type, info.linkname = tarfile.SYMTYPE, os.readlink(path)
    elif path.is_dir():
        info.type = tarfile.DIRTYPE
    elif path.is_file():
        info.size = st.st_size
    else:
        return None
    return info


def _file_blocks(path: Path, size: int) -> Iterator[bytes]:
    sent = 0
    with path.open("rb") as fh:
        while sent < size:
            data = fh.read(min(CHUNK, size - sent))
            if not data:
                break
            sent += len(data)
            yield data
    if sent < size:  # the file shrank while we read it: keep the archive well-formed
        yield b"\0" * (size - sent)
    if size % BLOCK:
        yield b"\0" * (BLOCK - size % BLOCK)
