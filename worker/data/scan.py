"""A dataset report (the panel's future "scan" job): per file what it holds and whether training
will use it. ``scan(paths, tokenizer=None, block_size=None) -> dict`` (JSON-ready).

Per file: bytes, documents, characters, letters per Unicode script (from ``unicodedata`` names:
``Han``, ``Latin``, ``Kannada``, ...; digits, spaces and punctuation count as ``Common``) and the
main script, the first documents, and with a tokenizer the tokens and blocks (same reading and
packing as training). ``skipped`` lists the files training will not use, with the reason: empty,
unreadable, not UTF-8, a bad JSONL line (these stop a training run with exit 2), or shorter than
one block (training skips these with a warning). ``ignored``: files of a directory that are not
corpus files (``worker/data/formats.py``: ``.txt``/``.jsonl``, gzip or zstd compressed,
``.parquet``, a dataset saved by ``datasets``). Tables and ``.jsonl`` read their ``text_column``.

With a ``cache_dir`` (the worker's data cache) each file's row is kept under ``scan/`` by the data
cache's own key (content sha256, tokenizer fingerprint, block size, line breaks, packing), so a
rescan of unchanged files with the same tokenizer reads nothing but their hash.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import unicodedata
from collections import Counter
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from worker.data.documents import ReadStats, file_digest, iter_document_batches
from worker.data.encoding import Encoder
from worker.data.errors import DataError
from worker.data.files import FileStats, PackOptions, cache_key, iter_file_blocks
from worker.data.formats import DEFAULT_TEXT_COLUMN, discover

FIRST_DOCS = 3
FIRST_CHARS = 200
#: Characters sampled per read chunk for the script counts (all when the chunk is smaller).
SCRIPT_SAMPLE = 1 << 18


_QUALIFIERS = frozenset(
    [
        "FULLWIDTH",
        "HALFWIDTH",
        "MODIFIER",
        "SUPERSCRIPT",
        "SUBSCRIPT",
        "DOUBLE-STRUCK",
        "MATHEMATICAL",
        "SCRIPT",
        "BLACK-LETTER",
        "SMALL",
        "COMBINING",
        "CIRCLED",
        "PARENTHESIZED",
        "SQUARED",
    ]
)
_SCRIPT_WORDS = frozenset(
    [
        "LATIN",
        "GREEK",
        "CYRILLIC",
        "ARMENIAN",
        "HEBREW",
        "ARABIC",
        "KATAKANA",
        "HIRAGANA",
        "HANGUL",
        "DEVANAGARI",
    ]
)


@lru_cache(maxsize=65536)
def script_of(code: int) -> str:
    ch = chr(code)
    if not unicodedata.category(ch).startswith(("L", "M")):
        return "Common"
    name = unicodedata.name(ch, "")
    if not name:
        return "Unknown"
    words = name.split()
    first = words[0]
    if first in ("CJK", "IDEOGRAPHIC"):
        return "Han"
    if first in _QUALIFIERS:  # FULLWIDTH LATIN ..., MODIFIER LETTER SMALL GREEK ..., ...
        return next((w.title() for w in words[1:] if w in _SCRIPT_WORDS), "Common")
    return first.title()


def script_counts(text: str) -> Counter[str]:
    codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    if len(codes) > SCRIPT_SAMPLE:
        codes = codes[:: len(codes) // SCRIPT_SAMPLE + 1]
    unique, counts = np.unique(codes, return_counts=True)
    out: Counter[str] = Counter()
    for code, n in zip(unique.tolist(), counts.tolist(), strict=True):
        out[script_of(code)] += n
    return out


def _candidates(paths: list[Path]) -> tuple[list[Path], list[dict[str, str]]]:
    files: list[Path] = []
    ignored: list[dict[str, str]] = []
    for root in paths:
        if root.is_dir():
            found, left = discover(root)
            files.extend(found)
            ignored.extend({"path": str(p), "reason": reason} for p, reason in left)
        else:
            files.append(root)  # a named file is scanned whatever its suffix
    return files, ignored


SCAN_CACHE = "scan"
#: Options of a scan without a tokenizer (only the line-break rule matters for its counts).
_NO_TOKENIZER = PackOptions(0, "eos", True)


def _cache_path(path: Path, cache_dir: Path, encoder: Encoder | None, opts: PackOptions) -> Path:
    fingerprint = encoder.fingerprint if encoder is not None else "none"
    key = cache_key(file_digest(path, "scan"), fingerprint, opts)
    return cache_dir / SCAN_CACHE / f"{path.stem}-{key}.json"


def scan_file(
    path: Path,
    encoder: Encoder | None = None,
    opts: PackOptions | None = None,
    first_docs: int = FIRST_DOCS,
    cache_dir: Path | None = None,
) -> dict[str, Any]:
    """One file's row; read from / written to ``cache_dir`` when given (see the module doc)."""
    opts = opts if opts is not None else _NO_TOKENIZER
    cached: Path | None = None
    if cache_dir is not None:
        with contextlib.suppress(DataError, OSError):
            cached = _cache_path(path, cache_dir, encoder, opts)
        if cached is not None and cached.is_file():
            with contextlib.suppress(ValueError, OSError):
                row: dict[str, Any] = json.loads(cached.read_text(encoding="utf-8"))
                return {**row, "path": str(path), "cached": True}
    row = _scan_file(path, encoder, opts, first_docs)
    if cached is not None:
        # Written whole then renamed: a crash never leaves a half row that a later scan trusts.
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_name(f".{cached.name}.{os.getpid()}")
        tmp.write_text(json.dumps(row, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, cached)
    return row


def _scan_file(
    path: Path,
    encoder: Encoder | None,
    opts: PackOptions,
    first_docs: int,
) -> dict[str, Any]:
    started = time.perf_counter()
    column = opts.text_column
    row: dict[str, Any] = {"path": str(path), "bytes": None, "documents": 0, "characters": 0}
    scripts: Counter[str] = Counter()
    first: list[str] = []
    read = ReadStats()
    skip: str | None = None
    try:
        row["bytes"] = path.stat().st_size
        for docs in iter_document_batches(
            path, opts.keep_linebreaks, "scan", read,
            txt_documents=opts.txt_documents, text_column=column,
        ):  # fmt: skip
            if len(first) < first_docs:
                first.extend(d[:FIRST_CHARS] for d in docs[: first_docs - len(first)])
            scripts.update(script_counts("".join(docs)))
        if encoder is not None and opts.block_size:
            stats = FileStats(str(path))
            for _ in iter_file_blocks(path, encoder, opts, "scan", stats):
                pass
            row["tokens"], row["blocks"] = stats.tokens, stats.blocks
            if stats.blocks == 0:
                skip = f"shorter than one block of {opts.block_size} tokens ({stats.tokens} tokens)"
    except DataError as exc:
        skip = str(exc).removeprefix("scan: ")
    except OSError as exc:
        skip = f"cannot read {path}: {exc.strerror or exc}"
    row["documents"], row["characters"] = read.documents, read.characters
    letters = {k: v for k, v in scripts.most_common() if k != "Common"}
    row["scripts"] = dict(scripts.most_common())
    row["main_script"] = next(iter(letters), None)
    # The first documents as the separator option cuts them (first_lines: older readers).
    row["first_documents"] = row["first_lines"] = first
    row["skip"] = skip
    row["seconds"] = round(time.perf_counter() - started, 4)
    row["cached"] = False
    return row


def scan(
    paths: list[str | Path] | str | Path,
    tokenizer: Any = None,
    block_size: int | None = None,
    packing: str = "eos",
    keep_linebreaks: bool = True,
    cache_dir: str | Path | None = None,
    txt_documents: str = "line",
    text_column: str = DEFAULT_TEXT_COLUMN,
) -> dict[str, Any]:
    """Report on files and directories (see the module docstring)."""
    items = [paths] if isinstance(paths, str | Path) else list(paths)
    files, ignored = _candidates([Path(p) for p in items])
    encoder = Encoder(tokenizer) if tokenizer is not None else None
    # Without a tokenizer only the reading options matter (block size 0; the row's cache key).
    opts = PackOptions(0, packing, keep_linebreaks, txt_documents, text_column)
    if encoder is not None:
        if block_size is None:
            raise DataError("scan: a tokenizer needs a block_size")
        opts = PackOptions(block_size, packing, keep_linebreaks, txt_documents, text_column)
        if packing == "eos":
            encoder.require_eos()
    cache = Path(cache_dir) if cache_dir is not None else None
    rows = [scan_file(p, encoder, opts, cache_dir=cache) for p in files]
    skipped = [{"path": r["path"], "reason": r["skip"]} for r in rows if r["skip"]]
    scripts: Counter[str] = Counter()
    for r in rows:
        scripts.update(r["scripts"])
    used = [r for r in rows if not r["skip"]]
    totals: dict[str, Any] = {
        "files": len(rows),
        "usable_files": len(used),
        "bytes": sum(r["bytes"] or 0 for r in rows),
        "documents": sum(r["documents"] for r in used),
        "characters": sum(r["characters"] for r in used),
        "scripts": dict(scripts.most_common()),
    }
    if encoder is not None:
        totals["tokens"] = sum(r.get("tokens") or 0 for r in used)
        totals["blocks"] = sum(r.get("blocks") or 0 for r in used)
    return {
        "block_size": block_size,
        "packing": packing if encoder is not None else None,
        "txt_documents": txt_documents,
        "files": rows,
        "skipped": skipped,
        "ignored": ignored,
        "totals": totals,
        "cached_files": sum(1 for r in rows if r.get("cached")),
    }
