"""Training files: discovery, and their documents read in bounded chunks.

A ``.txt`` file is cut into documents by ``txt_documents`` (``TXT_DOCUMENTS``): ``line`` — one
document per line (``str.splitlines``, blank lines dropped, line breaks kept when
``keep_linebreaks``), as the seed's ``datasets`` "text" reading did; ``blank_line`` — one per
paragraph (lines up to a blank line, joined by ``\n`` with a final one, or by spaces without
``keep_linebreaks``); ``file`` — the whole file is one document (as it is, or its non-blank
lines joined by spaces without ``keep_linebreaks``). A ``.jsonl`` file holds one JSON object
with a string text field (``"text"``, or the source's ``text_column``) per line (split on
``\\n`` only, so a raw U+2028 inside a JSON string stays in its document). Files are read
``CHUNK_BYTES`` at a time, cut after a ``\\n``: memory does not grow with the file, and the
documents are the same as when the whole file is split at once. Both may be gzip or zstd
compressed (decompressed as a stream); ``.parquet`` files and datasets saved by ``datasets``
give a document per row of their text column (``worker/data/formats.py``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from worker.data.errors import DataError
from worker.data.formats import (
    DEFAULT_TEXT_COLUMN,
    SUFFIXES,
    Format,
    discover,
    format_of,
    iter_table,
    open_lines,
)
from worker.data.opening import open_data

__all__ = [
    "SUFFIXES",
    "TXT_DOCUMENTS",
    "ReadStats",
    "find_files",
    "iter_document_batches",
    "read_texts",
]

CHUNK_BYTES = 1 << 18
#: How a ``.txt`` file is cut into documents (``--txt_documents``).
TXT_DOCUMENTS = ("line", "blank_line", "file")
_BLANK = re.compile(rb"\n[ \t\r\f\v]*\n")
_BLANK_TEXT = re.compile(r"\n[ \t\r\f\v]*\n")


def find_files(root: Path, flag: str = "--dataset_dir") -> list[Path]:
    """The corpus files under a directory (``formats.discover``), sorted; a file is itself."""
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise DataError(f"{flag}: {root} does not exist")
    files, _ = discover(root)
    if not files:
        raise DataError(
            f"{flag} {root} holds no corpus files ({', '.join(SUFFIXES)}, or a dataset "
            "saved by datasets)"
        )
    return files


def open_error(path: Path, flag: str, exc: OSError) -> DataError:
    return DataError(f"{flag}: cannot read {path}: {exc.strerror or exc}")


def file_digest(path: Path, flag: str = "--dataset_dir") -> str:
    """sha256 of a file's bytes (the cache key's content part)."""
    h = hashlib.sha256()
    try:
        with open_data(path) as fh:
            while chunk := fh.read(CHUNK_BYTES * 4):
                h.update(chunk)
    except OSError as exc:
        raise open_error(path, flag, exc) from exc
    return h.hexdigest()


@dataclass
class ReadStats:
    """What reading a file found (filled while its batches are consumed)."""

    bytes: int = 0
    documents: int = 0
    characters: int = 0
    lines: int = 0
    #: Bytes of the file itself read so far (compressed; a table's share): progress bars.
    position: int = 0


def iter_document_batches(
    path: Path,
    keep_linebreaks: bool = True,
    flag: str = "--dataset_dir",
    stats: ReadStats | None = None,
    chunk_bytes: int = CHUNK_BYTES,
    txt_documents: str = "line",
    text_column: str = DEFAULT_TEXT_COLUMN,
) -> Iterator[list[str]]:
    """A file's documents, a list per chunk read. Raises DataError on unreadable, non-UTF-8 or
    empty input and on a JSONL line that is not an object with a string ``text_column``."""
    stats = stats if stats is not None else ReadStats()
    fmt = format_of(path)
    if fmt.table:
        yield from _table_batches(path, fmt, text_column, flag, stats)
        return
    jsonl = fmt.kind == "jsonl"
    if txt_documents not in TXT_DOCUMENTS:
        raise DataError(f"--txt_documents must be one of {TXT_DOCUMENTS}, not {txt_documents!r}")
    mode = "line" if jsonl else txt_documents
    try:
        fh = open_lines(path, fmt, flag)
        if mode == "file" and fmt.compression is None:  # one document: one read
            chunk_bytes = max(chunk_bytes, os.fstat(fh.fileno()).st_size + 1)
    except OSError as exc:
        raise open_error(path, flag, exc) from exc
    with fh:
        tail = b""
        offset = 0  # file offset of ``data``
        while True:
            try:
                chunk = fh.read(chunk_bytes)
            except OSError as exc:
                raise open_error(path, flag, exc) from exc
            stats.bytes += len(chunk)
            stats.position = fh.position
            data = tail + chunk
            if chunk:
                cut = _cut(data, mode)
                if cut == 0:
                    tail = data
                    continue
                data, tail = data[:cut], data[cut:]
            elif not data:
                break
            else:
                tail = b""
            docs = _documents(
                data, offset, path, flag, stats, jsonl, keep_linebreaks, mode, text_column
            )
            offset += len(data)
            stats.lines += data.count(b"\n")
            if docs:
                stats.documents += len(docs)
                yield docs
            if not chunk:
                break
    if stats.documents == 0:
        what = "is empty" if stats.bytes == 0 else "holds no text (only blank lines)"
        if jsonl and stats.bytes:
            what = "holds no JSON line"
        raise DataError(f"{flag}: {path} {what}; remove it or add text")


def _cut(data: bytes, mode: str) -> int:
    """Where a chunk may end without cutting a document (0: read on)."""
    if mode == "line":
        return data.rfind(b"\n") + 1
    if mode == "blank_line":
        matches = list(_BLANK.finditer(data))
        return matches[-1].end() if matches else 0
    return 0  # file: the whole file is one document


def _txt_documents(text: str, keep_linebreaks: bool, mode: str) -> list[str]:
    if mode == "line":
        return [ln for ln in text.splitlines(keepends=keep_linebreaks) if ln.strip()]
    if mode == "file" and keep_linebreaks:
        return [text] if text.strip() else []  # the file as it is, blank lines included
    parts = _BLANK_TEXT.split(text) if mode == "blank_line" else [text]
    docs = []
    for part in parts:
        lines = [ln for ln in part.splitlines() if ln.strip()]
        if lines:
            docs.append("\n".join(lines) + "\n" if keep_linebreaks else " ".join(lines))
    return docs


def _documents(
    data: bytes,
    offset: int,
    path: Path,
    flag: str,
    stats: ReadStats,
    jsonl: bool,
    keep_linebreaks: bool,
    mode: str = "line",
    column: str = DEFAULT_TEXT_COLUMN,
) -> list[str]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = stats.lines + data.count(b"\n", 0, exc.start) + 1
        raise DataError(
            f"{flag}: {path} is not valid UTF-8 (line {line}, byte "
            f"{offset + exc.start}: {data[exc.start : exc.start + 4]!r}); "
            "convert it, e.g. iconv -f <encoding> -t utf-8"
        ) from exc
    if not jsonl:
        cut = _txt_documents(text, keep_linebreaks, mode)
        # Characters of the documents as read (cpt_contract/text.py), not of the raw file:
        # blank lines and dropped line breaks are not text any run scores or trains on.
        stats.characters += sum(len(d) for d in cut)
        return cut
    docs: list[str] = []
    for n, row in enumerate(text.split("\n"), stats.lines + 1):
        if not row.strip():
            continue
        try:
            obj = json.loads(row)
        except json.JSONDecodeError as exc:
            raise DataError(f"{flag}: {path} line {n} is not JSON: {exc.msg}") from exc
        text_ = obj.get(column) if isinstance(obj, dict) else None
        if not isinstance(text_, str):
            hint = "" if column != DEFAULT_TEXT_COLUMN else " (or set the source's text_column)"
            raise DataError(f'{flag}: {path} line {n} has no string "{column}" field{hint}')
        docs.append(text_)
        stats.characters += len(text_)
    return docs


def _table_batches(
    path: Path, fmt: Format, column: str, flag: str, stats: ReadStats
) -> Iterator[list[str]]:
    """A table's documents (a list per record batch), counted into ``stats``."""
    try:
        for batch in iter_table(path, fmt, column, flag):
            stats.bytes += batch.bytes
            stats.characters += batch.characters
            stats.position = batch.position
            stats.lines += len(batch.documents)
            if batch.documents:
                stats.documents += len(batch.documents)
                yield batch.documents
    except OSError as exc:
        raise open_error(path, flag, exc) from exc
    if stats.documents == 0:
        raise DataError(
            f"{flag}: {path} has no rows with text in {column!r}; remove it or add text"
        )


def read_texts(
    path: Path,
    keep_linebreaks: bool = True,
    flag: str = "--dataset_dir",
    txt_documents: str = "line",
    text_column: str = DEFAULT_TEXT_COLUMN,
) -> tuple[list[str], str]:
    """All of a file's documents and the sha256 of its bytes (small files, tools and tests)."""
    docs = [
        d
        for batch in iter_document_batches(
            path, keep_linebreaks, flag, txt_documents=txt_documents, text_column=text_column
        )
        for d in batch
    ]
    return docs, file_digest(path, flag)
