"""Documents in .txt files: one per line (the seed's reading), per paragraph or the whole file,
the same whatever the read chunk size, and the same option for training, held-out sets and
the scan (whose preview shows the first documents as cut)."""

from __future__ import annotations

from pathlib import Path

import pytest

from worker.data.documents import iter_document_batches
from worker.data.errors import DataError
from worker.data.eval_sets import Budget, select_documents
from worker.data.files import PackOptions, cache_key
from worker.data.scan import scan

TEXT = (
    "First paragraph, line one.\nline two.\n\n"
    "Second paragraph.\r\n \r\n"
    "Third, after a blank line with spaces.\nand its second line\n\n\n\n"
    "Fourth.\n"
)


def _docs(path: Path, mode: str, keep: bool = True, chunk: int = 1 << 18) -> list[str]:
    batches = iter_document_batches(path, keep, "--x", chunk_bytes=chunk, txt_documents=mode)
    return [d for b in batches for d in b]


@pytest.fixture
def text(tmp_path: Path) -> Path:
    path = tmp_path / "p.txt"
    path.write_bytes(TEXT.encode("utf-8"))
    return path


def test_lines_paragraphs_and_whole_files(text: Path) -> None:
    lines = _docs(text, "line")
    assert len(lines) == 6 and lines[0] == "First paragraph, line one.\n"
    paragraphs = _docs(text, "blank_line")
    assert paragraphs == [
        "First paragraph, line one.\nline two.\n",
        "Second paragraph.\n",
        "Third, after a blank line with spaces.\nand its second line\n",
        "Fourth.\n",
    ]
    assert _docs(text, "blank_line", keep=False)[0] == "First paragraph, line one. line two."
    assert _docs(text, "file") == [TEXT]
    assert _docs(text, "file", keep=False) == [" ".join(x for x in TEXT.splitlines() if x.strip())]
    with pytest.raises(DataError, match="txt_documents"):
        _docs(text, "sentence")


@pytest.mark.parametrize("mode", ["line", "blank_line", "file"])
def test_the_documents_do_not_depend_on_the_chunk_size(text: Path, mode: str) -> None:
    whole = _docs(text, mode)
    for chunk in (1, 3, 7, 16, 40):
        assert _docs(text, mode, chunk=chunk) == whole, chunk


def test_jsonl_is_one_document_per_line_whatever_the_option(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text('{"text": "a\\n\\nb"}\n{"text": "c"}\n', encoding="utf-8")
    for mode in ("line", "blank_line", "file"):
        assert _docs(path, mode) == ["a\n\nb", "c"]


def test_eval_sets_cache_keys_and_the_scan_follow_the_option(text: Path, tmp_path: Path) -> None:
    chosen, cut = select_documents([text], Budget(max_documents=2), True, "--x", "blank_line")
    assert chosen == _docs(text, "blank_line")[:2] and cut
    keys = {cache_key("d", "f", PackOptions(64, "eos", True, m)) for m in ("line", "file")}
    assert len(keys) == 2  # other documents, other blocks
    assert cache_key("d", "f", PackOptions(64, "eos", True)) == cache_key(
        "d", "f", PackOptions(64, "eos", True, "line")
    )
    report = scan([text], txt_documents="blank_line", cache_dir=tmp_path / "cache")
    row = report["files"][0]
    assert report["txt_documents"] == "blank_line"
    assert row["documents"] == 4
    assert row["characters"] == sum(len(d) for d in _docs(text, "blank_line"))
    assert row["first_documents"][0] == "First paragraph, line one.\nline two.\n"
    # Another option is another cached row, not the paragraph one.
    lines = scan([text], txt_documents="line", cache_dir=tmp_path / "cache")["files"][0]
    assert lines["documents"] == 6 and not lines["cached"]
