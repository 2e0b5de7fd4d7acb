"""Corpus file formats: which files hold text, how to open them, and tables read as documents.

Line formats — ``.txt`` (a document per line) and ``.jsonl`` (an object per line) — may be
compressed: ``.gz`` (gzip) or ``.zst`` (zstd, multi-frame files included); they are decompressed
as a stream, so ``documents.iter_document_batches`` reads them in the same bounded chunks as a
plain file. Table formats hold a document per row in a text column (``text`` by default, chosen
per source): ``.parquet`` (read a record batch at a time: memory is bounded by a row group, not
by the file) and the ``data-*.arrow`` files of a dataset saved by ``datasets.save_to_disk``
(Arrow IPC streams listed in the ``state.json`` beside them, read a record batch at a time).
A null cell is skipped like a blank line; an empty string is a document, as in ``.jsonl``.

``cpt_contract/corpus.py`` keeps a copy of the suffixes for the API's picker (the training
script imports nothing of the panel); ``tests/contract/test_corpus.py`` proves them equal.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from worker.data.errors import DataError
from worker.data.opening import open_data

#: Every suffix a corpus file may end with (a saved dataset's ``.arrow`` files only with their
#: ``state.json``).
SUFFIXES = (
    ".txt",
    ".jsonl",
    ".txt.gz",
    ".txt.zst",
    ".jsonl.gz",
    ".jsonl.zst",
    ".parquet",
)
ARROW = ".arrow"
#: What ``datasets.Dataset.save_to_disk`` writes beside its ``.arrow`` files.
SAVED_STATE = "state.json"
DEFAULT_TEXT_COLUMN = "text"
#: Rows per record batch read from a table (a few MB of text for web documents).
TABLE_ROWS = 1024


@dataclass(frozen=True)
class Format:
    kind: str  # txt | jsonl | parquet | arrow
    compression: str | None = None  # gz | zst

    @property
    def table(self) -> bool:
        return self.kind in ("parquet", "arrow")


def format_of(path: Path) -> Format:
    """A file's format from its name; an unknown suffix is plain text (a file named directly is
    read whatever its suffix, as before)."""
    name = path.name.lower()
    compression = None
    for comp in ("gz", "zst"):
        if name.endswith(f".{comp}"):
            compression, name = comp, name[: -len(comp) - 1]
            break
    if name.endswith(".jsonl"):
        return Format("jsonl", compression)
    if compression is None and name.endswith(".parquet"):
        return Format("parquet")
    if compression is None and name.endswith(ARROW):
        return Format("arrow")
    return Format("txt", compression)


def is_corpus_name(name: str) -> bool:
    return name.lower().endswith(SUFFIXES)


def _saved_files(directory: Path) -> list[Path] | None:
    """The ``.arrow`` files a ``save_to_disk`` directory lists, in order (None: not one)."""
    try:
        state = json.loads((directory / SAVED_STATE).read_text(encoding="utf-8"))
        names = [f["filename"] for f in state["_data_files"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    files = [directory / n for n in names if isinstance(n, str) and n.endswith(ARROW)]
    return files if files and all(f.is_file() for f in files) else None


def discover(root: Path) -> tuple[list[Path], list[tuple[Path, str]]]:
    """A directory's corpus files (sorted) and the other files with why they are left out."""
    files: list[Path] = []
    ignored: list[tuple[Path, str]] = []
    saved: set[Path] = set()
    for state in root.rglob(SAVED_STATE):
        listed = _saved_files(state.parent)
        if listed:
            saved.update(listed)
    for p in sorted(x for x in root.rglob("*") if x.is_file()):
        if p in saved or is_corpus_name(p.name):
            files.append(p)
        elif p.name.endswith(ARROW):
            ignored.append((p, "an .arrow file not listed in a saved dataset's state.json"))
        elif not (p.name in (SAVED_STATE, "dataset_info.json") and p.parent in _parents(saved)):
            ignored.append((p, f"not one of {', '.join(SUFFIXES)} or a saved dataset"))
    return files, ignored


def _parents(paths: set[Path]) -> set[Path]:
    return {p.parent for p in paths}


class _Reader:
    """A decompressing reader whose errors name the file; ``position``: compressed bytes read."""

    def __init__(self, raw: IO[bytes], stream: Any, path: Path, flag: str, what: str) -> None:
        self.raw, self.stream, self.path, self.flag, self.what = raw, stream, path, flag, what

    def read(self, n: int) -> bytes:
        try:
            return bytes(self.stream.read(n))
        except (OSError, EOFError, zlib.error) as exc:
            raise self._bad(exc) from exc
        except Exception as exc:  # zstandard.ZstdError
            if type(exc).__name__ == "ZstdError":
                raise self._bad(exc) from exc
            raise

    def _bad(self, exc: BaseException) -> DataError:
        return DataError(
            f"{self.flag}: {self.path} is not a valid {self.what} file ({exc}); "
            "re-download or recompress it"
        )

    @property
    def position(self) -> int:
        return self.raw.tell()

    def fileno(self) -> int:
        return self.raw.fileno()

    def close(self) -> None:
        self.stream.close()
        self.raw.close()

    def __enter__(self) -> _Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Plain:
    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw

    def read(self, n: int) -> bytes:
        return self.raw.read(n)

    @property
    def position(self) -> int:
        return self.raw.tell()

    def fileno(self) -> int:
        return self.raw.fileno()

    def close(self) -> None:
        self.raw.close()

    def __enter__(self) -> _Plain:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_lines(path: Path, fmt: Format, flag: str) -> _Plain | _Reader:
    """A line file's bytes, decompressed (OSError when it cannot be opened or is refused:
    ``opening.open_data`` checks every open)."""
    raw = open_data(path)
    if fmt.compression == "gz":
        return _Reader(raw, gzip.GzipFile(fileobj=raw, mode="rb"), path, flag, "gzip")
    if fmt.compression == "zst":
        import zstandard

        stream = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
        return _Reader(raw, stream, path, flag, "zstd")
    return _Plain(raw)


@dataclass
class TableBatch:
    documents: list[str]
    bytes: int  # UTF-8 bytes of the documents
    characters: int
    position: int  # of the file's bytes, the share read so far (progress)


def _column(schema: Any, column: str, path: Path, flag: str) -> None:
    import pyarrow as pa

    names = list(schema.names)
    if column not in names:
        shown = ", ".join(names[:20]) or "none"
        raise DataError(
            f"{flag}: {path} has no column {column!r} (columns: {shown}); "
            "set the source's text_column to the column that holds the text"
        )
    kind = schema.field(column).type
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        raise DataError(
            f"{flag}: {path} column {column!r} holds {kind}, not text; "
            "set the source's text_column to a string column"
        )


def _batch(batch: Any, total_rows: int, rows_done: int, size: int) -> TableBatch:
    import pyarrow.compute as pc

    arr = batch.column(0)
    docs = [d for d in arr.to_pylist() if d is not None]
    nbytes = pc.sum(pc.binary_length(arr)).as_py() or 0
    chars = pc.sum(pc.utf8_length(arr)).as_py() or 0
    position = size if total_rows <= 0 else size * min(rows_done, total_rows) // total_rows
    return TableBatch(docs, int(nbytes), int(chars), position)


def iter_table(path: Path, fmt: Format, column: str, flag: str) -> Iterator[TableBatch]:
    """A table's documents, a record batch at a time."""
    import pyarrow as pa

    size = path.stat().st_size
    try:
        # Opened by open_data (the roots and regular-file check), then handed to pyarrow.
        with open_data(path) as fh:
            if fmt.kind == "parquet":
                import pyarrow.parquet as pq

                pf = pq.ParquetFile(fh)
                _column(pf.schema_arrow, column, path, flag)
                total, done = pf.metadata.num_rows, 0
                for batch in pf.iter_batches(batch_size=TABLE_ROWS, columns=[column]):
                    done += batch.num_rows
                    yield _batch(batch, total, done, size)
                return
            reader = pa.ipc.open_stream(fh)
            _column(reader.schema, column, path, flag)
            index = reader.schema.get_field_index(column)
            done = 0
            for batch in reader:
                done += batch.num_rows
                one = pa.RecordBatch.from_arrays([batch.column(index)], names=[column])
                # An IPC stream does not say its row count up front: progress by bytes read.
                yield _batch(one, 0, done, min(fh.tell(), size))
    except (pa.ArrowException, OSError) as exc:
        if isinstance(exc, OSError) and not isinstance(exc, pa.ArrowException):
            raise
        what = "Parquet" if fmt.kind == "parquet" else "Arrow (datasets save_to_disk)"
        raise DataError(f"{flag}: {path} is not a readable {what} file ({exc})") from exc
