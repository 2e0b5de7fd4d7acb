"""Same documents and same tokens as the classic pipeline (``datasets.map`` tokenize, then
``group_texts``), on real Chinese and English text with Mistral's tokenizer."""

from __future__ import annotations

from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from worker.data.documents import find_files, iter_document_batches, read_texts
from worker.data.encoding import Encoder
from worker.data.files import PackOptions, cache_file
from worker.data.packing import group_blocks

BLOCK = 128


def stream(path: Path, encoder: Encoder, chunk: int = 1 << 20) -> tuple[np.ndarray, np.ndarray]:
    flats, lens = [], []
    for docs in iter_document_batches(path, chunk_bytes=chunk):
        flat, lengths = encoder.encode(docs)
        flats.append(flat)
        lens.append(lengths)
    return np.concatenate(flats), np.concatenate(lens)


def classic(docs: list[str], tokenizer: Any, block: int) -> tuple[list[int], list[list[int]]]:
    """The seed's run_clm pipeline: datasets.map(tokenizer) then group_texts, 1,000 at a time."""
    import datasets

    def tokenize(batch: dict[str, list[str]]) -> Any:
        return tokenizer(batch["text"])

    def group_texts(batch: dict[str, list[Any]]) -> dict[str, Any]:
        concatenated = {k: list(chain(*batch[k])) for k in batch}
        total = (len(concatenated["input_ids"]) // block) * block
        out = {
            k: [t[i : i + block] for i in range(0, total, block)] for k, t in concatenated.items()
        }
        out["labels"] = out["input_ids"].copy()
        return out

    ds = datasets.Dataset.from_dict({"text": docs})
    ids = ds.map(tokenize, batched=True, remove_columns=["text"])
    grouped = ids.map(group_texts, batched=True, batch_size=1000)
    return list(chain(*ids["input_ids"])), grouped["input_ids"]


def test_documents_equal_whole_file_splitlines(real_corpus: Path, tmp_path: Path) -> None:
    """Chunked reading gives the documents of ``str.splitlines`` on the whole file, whatever
    the chunk size, including \\r\\n, form feeds and U+2028 inside lines."""
    odd = tmp_path / "odd.txt"
    odd.write_bytes("a\r\nb\x0cc\u2028d\n\n  \n中文\re\n".encode() * 300)
    for path in [*find_files(real_corpus), odd]:
        if path.suffix != ".txt":
            continue
        text = path.read_bytes().decode("utf-8")  # no newline translation, as the seed
        for keep in (True, False):
            expected = [ln for ln in text.splitlines(keepends=keep) if ln.strip()]
            for chunk in (1000, 1 << 20):
                got = [d for b in iter_document_batches(path, keep, chunk_bytes=chunk) for d in b]
                assert got == expected, (path.name, keep, chunk)


def test_token_stream_equals_classic(real_corpus: Path, mistral: Any, tmp_path: Path) -> None:
    encoder = Encoder(mistral)
    for path in find_files(real_corpus):
        docs, _ = read_texts(path)
        classic_stream, classic_blocks = classic(docs, mistral, BLOCK)
        ours, lengths = stream(path, encoder, chunk=50_000)  # several chunks per file
        assert ours.dtype == np.uint16  # a 32k vocabulary
        assert ours.tolist() == classic_stream, path.name
        assert len(lengths) == len(docs)
        # --packing classic: the same stream cut every BLOCK tokens over the whole file.
        cached = cache_file(path, encoder, PackOptions(BLOCK, "classic"), tmp_path / "c")
        n = len(ours) // BLOCK
        assert np.array_equal(cached.blocks, ours[: n * BLOCK].reshape(n, BLOCK))
        # The deliberate difference: the seed dropped each 1,000-document batch's remainder.
        assert len(classic_blocks) <= n
        if len(docs) <= 1000:
            assert [list(b) for b in cached.blocks] == classic_blocks
        else:  # equal up to the first batch's dropped remainder
            first_batch = sum(lengths[:1000]) // BLOCK
            assert [list(b) for b in cached.blocks[:first_batch]] == classic_blocks[:first_batch]


def test_eos_stream_is_classic_plus_one_eos_per_document(
    real_corpus: Path, mistral: Any, tmp_path: Path
) -> None:
    encoder = Encoder(mistral)
    path = real_corpus / "song100.txt"
    ours, lengths = stream(path, encoder)
    eos_blocks = cache_file(path, encoder, PackOptions(BLOCK, "eos"), tmp_path / "e")
    expected: list[int] = []
    pos = 0
    for n in lengths.tolist():
        expected.extend(ours[pos : pos + n].tolist())
        expected.append(mistral.eos_token_id)
        pos += n
    # The blocks are that stream, cut by the rule of worker/data/packing.py (written plainly).
    unsafe = encoder.unsafe_start
    blocks, p = [], 0
    while p + BLOCK <= len(expected):
        blocks.append(expected[p : p + BLOCK])
        q = p + BLOCK
        if q < len(expected) and unsafe[expected[q]]:
            back = q
            while back > q - 3 and unsafe[expected[back]]:
                back -= 1
            q = back if not unsafe[expected[back]] else q
        p = q
    assert eos_blocks.blocks.tolist() == blocks
    assert eos_blocks.stats.tokens == len(ours) + len(lengths)


def test_group_blocks_compat() -> None:
    assert group_blocks([[1, 2, 3], [4, 5], [6, 7, 8]], 3) == [[1, 2, 3], [4, 5, 6]]


@pytest.mark.parametrize("name", ["tang300.jsonl"])
def test_jsonl_documents(real_corpus: Path, name: str) -> None:
    docs, digest = read_texts(real_corpus / name)
    assert len(docs) > 100 and all("\n" in d for d in docs[:5]) and len(digest) == 64
