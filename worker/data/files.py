"""One source file → its blocks: read, encode, pack; and the per-file block cache.

The cache holds one directory per file, ``<stem>-<key>/`` with ``blocks.bin`` (the blocks, raw
uint16 or int32, row after row: opened as a read-only ``numpy.memmap``) and ``meta.json`` (counts),
written under a temporary name and renamed into place. ``key`` hashes the cache format, the file's
bytes (sha256), the tokenizer (``tokenizer_fingerprint``), the block size, ``keep_linebreaks``, the
packing and a text column other than ``text``: a changed file, tokenizer or option gets a new
entry, the others are reused.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from worker.data.documents import ReadStats, file_digest, iter_document_batches
from worker.data.encoding import PACKINGS, Encoder
from worker.data.formats import DEFAULT_TEXT_COLUMN
from worker.data.packing import Packer, with_eos

logger = logging.getLogger("pretrain")

#: Bump when reading, tokenization, packing or the layout changes, so old caches are not reused.
CACHE_FORMAT = 4
BLOCKS_FILE = "blocks.bin"
META_FILE = "meta.json"


@dataclass(frozen=True)
class PackOptions:
    block_size: int
    packing: str = "eos"
    keep_linebreaks: bool = True
    #: How a .txt file is cut into documents (``documents.TXT_DOCUMENTS``).
    txt_documents: str = "line"
    #: The field (.jsonl) or column (.parquet, a saved dataset) that holds the text.
    text_column: str = DEFAULT_TEXT_COLUMN

    def __post_init__(self) -> None:
        if self.packing not in PACKINGS:
            raise ValueError(f"packing must be one of {PACKINGS}, not {self.packing!r}")


@dataclass
class FileStats:
    """Counts of one file. ``tokens``: the packed stream (incl. inserted EOS) before cutting."""

    path: str
    bytes: int = 0
    documents: int = 0
    characters: int = 0
    tokens: int = 0
    blocks: int = 0
    moved_starts: int = 0
    seconds: float = 0.0
    cached: bool = False


def iter_file_blocks(
    path: Path,
    encoder: Encoder,
    opts: PackOptions,
    flag: str = "--dataset_dir",
    stats: FileStats | None = None,
    progress: Callable[[int], None] | None = None,
) -> Iterator[np.ndarray]:
    """The blocks of one file, ``(k, block_size)`` arrays in file order, in bounded memory."""
    stats = stats if stats is not None else FileStats(str(path))
    read = ReadStats()
    eos = encoder.require_eos() if opts.packing == "eos" else None
    packer = Packer(
        opts.block_size, encoder.dtype, encoder.unsafe_start if eos is not None else None
    )
    started = time.perf_counter()
    seen = 0
    for docs in iter_document_batches(
        path, opts.keep_linebreaks, flag, read,
        txt_documents=opts.txt_documents, text_column=opts.text_column,
    ):  # fmt: skip
        flat, lengths = encoder.encode(docs)
        if eos is not None:
            flat = with_eos(flat, lengths, eos)
        stats.tokens += len(flat)
        blocks = packer.feed(flat)
        stats.blocks += len(blocks)
        if progress is not None:
            progress(read.position - seen)
            seen = read.position
        if len(blocks):
            yield blocks
    last = packer.feed(np.zeros(0, dtype=encoder.dtype), final=True)
    stats.blocks += len(last)
    stats.bytes, stats.documents, stats.characters = read.bytes, read.documents, read.characters
    stats.moved_starts = packer.moved
    stats.seconds += time.perf_counter() - started
    if len(last):
        yield last


def cache_key(digest: str, fingerprint: str, opts: PackOptions) -> str:
    text = (
        f"{CACHE_FORMAT}|{digest}|{fingerprint}|{opts.block_size}|{opts.keep_linebreaks}"
        f"|{opts.packing}"
    )
    # Other documents, other blocks; "line" keeps the keys caches were written under.
    if opts.txt_documents != "line":
        text += f"|{opts.txt_documents}"
    if opts.text_column != DEFAULT_TEXT_COLUMN:  # the default keeps the keys caches already use
        text += f"|column={opts.text_column}"
    return hashlib.sha256(text.encode()).hexdigest()[:20]


@dataclass
class CachedFile:
    """A file's blocks in the cache (a read-only memmap; no rows when the file is short)."""

    path: Path
    directory: Path
    blocks: np.ndarray
    stats: FileStats


def _load(directory: Path, block_size: int) -> tuple[np.ndarray, dict[str, Any]]:
    meta = json.loads((directory / META_FILE).read_text())
    if meta.get("format") != CACHE_FORMAT or meta.get("block_size") != block_size:
        raise ValueError("stale cache entry")
    n = int(meta["blocks"])
    dtype = np.dtype(meta["dtype"])
    if n == 0:
        return np.zeros((0, block_size), dtype=dtype), meta
    blocks = np.memmap(directory / BLOCKS_FILE, dtype=dtype, mode="r", shape=(n, block_size))
    return blocks, meta


def cache_file(
    path: Path,
    encoder: Encoder,
    opts: PackOptions,
    cache_root: Path,
    flag: str = "--dataset_dir",
    overwrite: bool = False,
    progress: Callable[[int], None] | None = None,
) -> CachedFile:
    """A file's blocks from the cache, tokenizing and writing them first on a miss."""
    started = time.perf_counter()
    digest = file_digest(path, flag)
    target = cache_root / f"{path.stem}-{cache_key(digest, encoder.fingerprint, opts)}"
    if target.is_dir() and not overwrite:
        with contextlib.suppress(Exception):
            blocks, meta = _load(target, opts.block_size)
            stats = FileStats(**{**meta["stats"], "cached": True, "path": str(path)})
            stats.seconds = time.perf_counter() - started
            logger.info("data cache hit: %s -> %s (%d blocks)", path.name, target.name, len(blocks))
            if progress is not None:
                progress(path.stat().st_size)
            return CachedFile(path, target, blocks, stats)
    logger.info("tokenizing %s into %s", path.name, target.name)
    cache_root.mkdir(parents=True, exist_ok=True)
    tmp = cache_root / f".{target.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    stats = FileStats(str(path))
    try:
        with (tmp / BLOCKS_FILE).open("wb") as fh:
            for blocks in iter_file_blocks(path, encoder, opts, flag, stats, progress):
                blocks.tofile(fh)
        stats.seconds = time.perf_counter() - started
        meta = {
            "format": CACHE_FORMAT,
            "source": str(path),
            "sha256": digest,
            "block_size": opts.block_size,
            "packing": opts.packing,
            "keep_linebreaks": opts.keep_linebreaks,
            "text_column": opts.text_column,
            "dtype": np.dtype(encoder.dtype).name,
            "blocks": stats.blocks,
            "stats": {k: v for k, v in asdict(stats).items() if k not in ("path", "cached")},
        }
        (tmp / META_FILE).write_text(json.dumps(meta, indent=1))
        if target.exists():
            shutil.rmtree(target, ignore_errors=True)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if stats.blocks == 0:
        logger.warning(
            "%s is shorter than one block of %d tokens; skipped", path.name, opts.block_size
        )
    blocks, _ = _load(target, opts.block_size)
    return CachedFile(path, target, blocks, stats)
