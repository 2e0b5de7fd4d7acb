"""Corpora in the shapes they ship in: ``.parquet`` (written by pyarrow), ``.jsonl.zst`` (by
zstandard), ``.jsonl.gz``/``.txt.gz``/``.txt.zst`` and a dataset saved by ``datasets`` give the same
documents, the same token stream and the same blocks as the ``.jsonl`` (``.txt``) of the same
documents, in the cache, streaming, the scan and the evaluation sets; memory stays flat with the
file size; bad files and bad columns are errors that name the file and say the fix."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from tests.data.conftest import FORTUNES, fortunes, head_lines
from tests.data.test_streaming import _peak
from worker.data.documents import find_files, iter_document_batches, read_texts
from worker.data.encoding import Encoder
from worker.data.errors import DataError
from worker.data.eval_sets import Budget, build_windows, parse_eval_sets
from worker.data.files import PackOptions, cache_file, iter_file_blocks
from worker.data.scan import scan
from worker.data.sources import Source, load_sources, parse_data_sources
from worker.data.torch_data import StreamingBlocks

BLOCK = 96


def _documents() -> list[str]:
    """Real multi-line Chinese poems and single-line fortunes, plus an empty document."""
    chinese = head_lines((FORTUNES / "chinese").read_bytes(), 120_000).decode("utf-8")
    lines = [ln for ln in chinese.splitlines() if ln.strip()]
    return [*fortunes(FORTUNES / "tang300"), "", *lines]


def _jsonl(docs: list[str], key: str = "text") -> bytes:
    return "".join(json.dumps({key: d}, ensure_ascii=False) + "\n" for d in docs).encode()


def _zstd_frames(data: bytes, frames: int = 3) -> bytes:
    """Several zstd frames back to back, as shard writers that flush per chunk produce."""
    step = len(data) // frames + 1
    cctx = zstandard.ZstdCompressor(level=3)
    return b"".join(cctx.compress(data[i : i + step]) for i in range(0, len(data), step))


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same documents as .jsonl and in every other shape (column ``content`` in one)."""
    root = tmp_path_factory.mktemp("shapes")
    docs = _documents()
    raw = _jsonl(docs)
    out = {"jsonl": root / "docs.jsonl"}
    out["jsonl"].write_bytes(raw)
    out["jsonl.gz"] = root / "docs.jsonl.gz"
    out["jsonl.gz"].write_bytes(gzip.compress(raw))
    out["jsonl.zst"] = root / "docs.jsonl.zst"
    out["jsonl.zst"].write_bytes(_zstd_frames(raw))
    table = pa.table({"id": list(range(len(docs))), "text": docs})
    out["parquet"] = root / "docs.parquet"
    pq.write_table(table, out["parquet"], row_group_size=300)
    out["parquet-content"] = root / "content.parquet"
    pq.write_table(table.rename_columns(["id", "content"]), out["parquet-content"])
    import datasets

    saved = root / "saved"
    datasets.Dataset.from_dict({"text": docs, "n": list(range(len(docs)))}).save_to_disk(
        str(saved), max_shard_size="40KB"
    )
    out["saved"] = saved
    return out


def test_every_shape_reads_the_jsonl_documents(shapes: dict[str, Path]) -> None:
    expected = read_texts(shapes["jsonl"])[0]
    assert "" in expected and len(expected) > 1000
    for name in ("jsonl.gz", "jsonl.zst", "parquet"):
        assert read_texts(shapes[name])[0] == expected, name
    assert read_texts(shapes["parquet-content"], text_column="content")[0] == expected
    arrows = find_files(shapes["saved"])
    assert len(arrows) > 1 and all(p.suffix == ".arrow" for p in arrows)  # several shards
    assert [d for p in arrows for d in read_texts(p)[0]] == expected


def test_every_shape_gives_the_jsonl_token_stream_and_blocks(
    shapes: dict[str, Path], mistral: Any, tmp_path: Path
) -> None:
    """Blocks (eos packing: the whole token stream but the last partial block) equal, whether
    cached (memory-mapped) or streamed, and the counts agree."""
    encoder = Encoder(mistral)
    opts = PackOptions(BLOCK)
    base = cache_file(shapes["jsonl"], encoder, opts, tmp_path / "c")
    assert len(base.blocks) > 100
    cases: list[tuple[str, list[Path], str]] = [
        ("jsonl.gz", [shapes["jsonl.gz"]], "text"),
        ("jsonl.zst", [shapes["jsonl.zst"]], "text"),
        ("parquet", [shapes["parquet"]], "text"),
        ("parquet-content", [shapes["parquet-content"]], "content"),
        ("saved", find_files(shapes["saved"]), "text"),
    ]
    for name, files, column in cases:
        source = Source(name, files, text_column=column)
        items = StreamingBlocks([source], encoder, opts)
        streamed = np.stack([b["input_ids"].numpy() for b in items]).astype(base.blocks.dtype)
        if len(files) == 1:
            got = cache_file(files[0], encoder, source.options(opts), tmp_path / "c")
            assert np.array_equal(got.blocks, base.blocks), name
            assert got.stats.documents == base.stats.documents, name
            assert got.stats.tokens == base.stats.tokens, name
            assert got.stats.characters == base.stats.characters, name
            assert np.array_equal(streamed, base.blocks), name
        else:
            # Each shard is a file (its last partial block dropped, as for .jsonl shards): the
            # blocks of the .jsonl shards of the same documents.
            want = []
            for i, shard in enumerate(files):
                j = tmp_path / f"shard{i}.jsonl"
                j.write_bytes(_jsonl(read_texts(shard)[0]))
                want.extend(iter_file_blocks(j, encoder, opts))
            assert np.array_equal(streamed, np.concatenate(want)), name


def test_compressed_txt_equals_the_txt(real_corpus: Path, mistral: Any, tmp_path: Path) -> None:
    txt = real_corpus / "fortunes_chinese.txt"
    data = txt.read_bytes()
    (tmp_path / "a.txt.gz").write_bytes(gzip.compress(data))
    (tmp_path / "a.txt.zst").write_bytes(_zstd_frames(data, 2))
    encoder = Encoder(mistral)
    for keep in (True, False):
        opts = PackOptions(BLOCK, keep_linebreaks=keep)
        want = np.concatenate(list(iter_file_blocks(txt, encoder, opts)))
        for name in ("a.txt.gz", "a.txt.zst"):
            docs = [d for b in iter_document_batches(tmp_path / name, keep) for d in b]
            assert docs == read_texts(txt, keep)[0], name
            got = np.concatenate(list(iter_file_blocks(tmp_path / name, encoder, opts)))
            assert np.array_equal(got, want), (name, keep)


def test_the_text_column_is_part_of_the_cache_key(
    shapes: dict[str, Path], mistral: Any, tmp_path: Path
) -> None:
    encoder = Encoder(mistral)
    a = cache_file(shapes["parquet"], encoder, PackOptions(BLOCK), tmp_path)
    b = cache_file(shapes["parquet"], encoder, PackOptions(BLOCK, text_column="text"), tmp_path)
    assert a.directory == b.directory and b.stats.cached
    meta = json.loads((a.directory / "meta.json").read_text())
    assert meta["text_column"] == "text"
    other = tmp_path / "other.parquet"
    pq.write_table(pa.table({"text": ["x"], "body": ["y " * 400]}), other)
    c = cache_file(other, encoder, PackOptions(BLOCK, text_column="body"), tmp_path)
    assert c.directory.name != cache_file(other, encoder, PackOptions(8), tmp_path).directory.name


def test_data_sources_choose_a_column_per_source(
    shapes: dict[str, Path], mistral: Any, tmp_path: Path
) -> None:
    items = parse_data_sources(
        json.dumps(
            [
                {"path": str(shapes["parquet-content"]), "name": "c", "text_column": "content"},
                {"path": str(shapes["saved"]), "name": "s"},
            ]
        )
    )
    sources = load_sources(items)
    assert [s.text_column for s in sources] == ["content", "text"]
    assert len(sources[1].files) > 1
    encoder = Encoder(mistral)
    first = next(iter(StreamingBlocks(sources[:1], encoder, PackOptions(BLOCK))))
    base = next(iter_file_blocks(shapes["jsonl"], encoder, PackOptions(BLOCK)))
    assert np.array_equal(first["input_ids"].numpy(), base[0])
    for bad in ("", "a b", "--flag", "x" * 200, 3):
        with pytest.raises(DataError, match='text_column" must be a column name'):
            parse_data_sources(json.dumps([{"path": "/x", "text_column": bad}]))


def test_eval_sets_read_every_shape(shapes: dict[str, Path], mistral: Any) -> None:
    spec = parse_eval_sets(
        json.dumps(
            {
                "j": str(shapes["jsonl"]),
                "p": {"path": str(shapes["parquet-content"]), "text_column": "content"},
                "z": str(shapes["jsonl.zst"]),
                "s": str(shapes["saved"]),
            }
        )
    )
    assert spec[1].text_column == "content"
    windows = []
    for s in spec:
        files = find_files(s.path)
        budget = Budget(max_characters=20_000)
        windows.append(build_windows(s.name, files, mistral, 64, budget, text_column=s.text_column))
    for w in windows[1:]:
        assert np.array_equal(w.input_ids, windows[0].input_ids), w.name
        assert (w.documents, w.characters, w.bytes) == (
            windows[0].documents,
            windows[0].characters,
            windows[0].bytes,
        )
    with pytest.raises(DataError, match="text_column"):
        parse_eval_sets(json.dumps({"p": {"path": "/x", "text_column": "a/b"}}))


def test_scan_reports_every_shape(shapes: dict[str, Path], mistral: Any, tmp_path: Path) -> None:
    d = tmp_path / "mixed"
    d.mkdir()
    for name in ("jsonl", "jsonl.zst", "parquet"):
        shutil.copy(shapes[name], d / shapes[name].name)
    shutil.copytree(shapes["saved"], d / "saved")
    (d / "stray.arrow").write_bytes(b"not listed")
    report = scan([d], mistral, block_size=BLOCK)
    rows = {Path(r["path"]).name: r for r in report["files"]}
    assert {"docs.jsonl", "docs.jsonl.zst", "docs.parquet"} <= set(rows)
    shards = [r for n, r in rows.items() if n.endswith(".arrow")]
    assert len(shards) > 1 and not report["skipped"]
    want = rows["docs.jsonl"]
    for name in ("docs.jsonl.zst", "docs.parquet"):
        got = rows[name]
        assert (got["documents"], got["characters"], got["tokens"], got["blocks"]) == (
            want["documents"],
            want["characters"],
            want["tokens"],
            want["blocks"],
        ), name
        assert got["main_script"] == "Han"
    assert sum(r["documents"] for r in shards) == want["documents"]
    assert [Path(i["path"]).name for i in report["ignored"]] == ["stray.arrow"]
    # A column chosen for the scan; a wrong one is a skip reason naming the columns.
    other = scan([shapes["parquet-content"]], text_column="content")
    assert other["totals"]["documents"] == want["documents"]
    missing = scan([shapes["parquet-content"]])
    assert "has no column 'text' (columns: id, content)" in missing["skipped"][0]["reason"]


def test_bad_files_name_the_file_and_the_fix(tmp_path: Path) -> None:
    raw = _jsonl(["one", "two"] * 1000)
    cases: dict[str, tuple[bytes, str]] = {
        "cut.jsonl.gz": (gzip.compress(raw)[:-40], "is not a valid gzip file"),
        "junk.jsonl.gz": (b"not gzip at all\n", "is not a valid gzip file"),
        "junk.jsonl.zst": (b"not zstd at all\n" * 10, "is not a valid zstd file"),
        "junk.parquet": (b"PAR1 nothing here", "is not a readable Parquet file"),
    }
    for name, (body, needle) in cases.items():
        path = tmp_path / name
        path.write_bytes(body)
        with pytest.raises(DataError) as err:
            read_texts(path, flag="--data_sources (x)")
        assert needle in str(err.value) and str(path) in str(err.value), name
        assert str(err.value).startswith("--data_sources (x): "), name
    numbers = tmp_path / "numbers.parquet"
    pq.write_table(pa.table({"text": [1, 2, 3]}), numbers)
    with pytest.raises(DataError, match=r"column 'text' holds int64, not text"):
        read_texts(numbers)
    empty = tmp_path / "nulls.parquet"
    pq.write_table(pa.table({"text": pa.array([None, None], pa.string())}), empty)
    with pytest.raises(DataError, match="has no rows with text in 'text'"):
        read_texts(empty)
    keyed = tmp_path / "keyed.jsonl.zst"
    keyed.write_bytes(zstandard.ZstdCompressor().compress(_jsonl(["a"], key="content")))
    with pytest.raises(DataError, match='line 1 has no string "text" field'):
        read_texts(keyed)
    assert read_texts(keyed, text_column="content")[0] == ["a"]


@pytest.mark.parametrize("shape", ["parquet", "jsonl.zst"])
def test_memory_does_not_grow_with_the_file(
    shape: str, mistral_fast_dir: Path, tmp_path: Path
) -> None:
    """1x and 10x of 0.6 MB of real Chinese text, one file each: the same bound as the plain
    files' streaming test (tests/data/test_streaming.py)."""
    text = head_lines((FORTUNES / "chinese").read_bytes(), 600_000).decode("utf-8")
    docs = [ln for ln in text.splitlines() if ln.strip()]
    peaks = []
    for times in (1, 10):
        path = tmp_path / f"x{times}.{shape}"
        if shape == "parquet":
            # A shard's row groups (FineWeb's hold ~1,000 documents); memory is bounded by one.
            pq.write_table(pa.table({"text": docs * times}), path, row_group_size=2000)
        else:
            with path.open("wb") as fh, zstandard.ZstdCompressor().stream_writer(fh) as w:
                for _ in range(times):
                    w.write(_jsonl(docs))
        peaks.append(_peak(mistral_fast_dir, path))
    small, large = peaks
    assert large["blocks"] >= 10 * small["blocks"] - 10
    assert large["peak_kb"] <= 1.5 * small["peak_kb"], (small, large)
    grow = (large["peak_kb"] - large["base_kb"]) - (small["peak_kb"] - small["base_kb"])
    assert grow <= 32 * 1024, (small, large)
