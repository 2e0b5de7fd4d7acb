"""Bad input stops a run before any model is loaded: exit 2, an ``end`` event whose reason names
the file (and line) or the flag."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.pretrain import events_of, tiny_args
from worker import pretrain
from worker.data.documents import iter_document_batches
from worker.data.errors import DataError
from worker.exit_codes import EXIT_BAD_INPUT

GOOD = "ಎಲ್ಲಾ ಮಾನವರೂ ಸ್ವತಂತ್ರರಾಗಿಯೇ ಜನಿಸಿದ್ದಾರೆ. 人人生而自由。\n" * 40


@pytest.fixture
def in_process(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """In this process; and no model may be loaded (the data fails first)."""

    def no_model(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a model was loaded before the bad data was reported")

    monkeypatch.setattr(pretrain, "build_model", no_model)
    previous = signal.getsignal(signal.SIGTERM)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _fail(assets: dict[str, Path], tmp: Path, needles: list[str], **flags: Any) -> str:
    out = tmp / "out"
    code = pretrain.main(tiny_args(assets, out, tmp / "cache", **flags))
    end = events_of(out)[-1]
    assert code == EXIT_BAD_INPUT, end
    assert end["kind"] == "end" and end["status"] == "failed"
    for needle in needles:
        assert needle in end["reason"], (needle, end["reason"])
    assert not (out / "adapter_model.safetensors").exists()
    return str(end["reason"])


def _dir(tmp: Path, files: dict[str, bytes]) -> Path:
    d = tmp / "data"
    d.mkdir(exist_ok=True)
    (d / "good.txt").write_text(GOOD, encoding="utf-8")
    for name, body in files.items():
        (d / name).write_bytes(body)
    return d


CASES = {
    "non_utf8": (
        {"latin1.txt": b"line one\nline two\nD\xe9claration universelle\n"},
        ["--dataset_dir", "latin1.txt", "not valid UTF-8", "line 3", "byte 19"],
    ),
    "empty": ({"empty.txt": b""}, ["--dataset_dir", "empty.txt", "is empty"]),
    "blank": ({"blank.txt": b"\n  \n\n"}, ["blank.txt", "only blank lines"]),
    "jsonl_no_text": (
        {"docs.jsonl": b'{"text": "ok"}\n\n{"body": "no text"}\n'},
        ["docs.jsonl", "line 3", 'no string "text" field'],
    ),
    "jsonl_not_json": (
        {"docs.jsonl": b'{"text": "ok"}\n{oops\n'},
        ["docs.jsonl", "line 2", "not JSON"],
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_files(
    case: str, tiny_assets: dict[str, Path], tmp_path: Path, in_process: None
) -> None:
    files, needles = CASES[case]
    _fail(tiny_assets, tmp_path, needles, dataset_dir=_dir(tmp_path, files))


def test_bad_file_in_a_data_source(
    tiny_assets: dict[str, Path], tmp_path: Path, in_process: None
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "bad.jsonl").write_text('{"text": 1}\n', encoding="utf-8")
    sources = json.dumps([{"path": str(src), "name": "web"}])
    _fail(tiny_assets, tmp_path, ["--data_sources (web)", "bad.jsonl", "line 1"],
          dataset_dir=_dir(tmp_path, {}), data_sources=sources)  # fmt: skip


def test_weights_must_sum_positive(
    tiny_assets: dict[str, Path], tmp_path: Path, in_process: None
) -> None:
    sources = json.dumps([{"path": str(_dir(tmp_path, {})), "weight": 0}])
    _fail(tiny_assets, tmp_path, ["--data_sources", "weights sum to 0"],
          dataset_dir=None, data_sources=sources)  # fmt: skip


def test_no_block(tiny_assets: dict[str, Path], tmp_path: Path, in_process: None) -> None:
    d = tmp_path / "short"
    d.mkdir()
    (d / "a.txt").write_text("hello\n", encoding="utf-8")
    _fail(tiny_assets, tmp_path, ["--block_size 64", "shorter than one block"], dataset_dir=d)


def test_no_block_streaming(tiny_assets: dict[str, Path], tmp_path: Path, in_process: None) -> None:
    d = tmp_path / "short"
    d.mkdir()
    (d / "a.txt").write_text("hello\n", encoding="utf-8")
    _fail(tiny_assets, tmp_path, ["--block_size 64", "shorter than one block"],
          dataset_dir=d, streaming=True)  # fmt: skip


def test_source_without_block(
    tiny_assets: dict[str, Path], tmp_path: Path, in_process: None
) -> None:
    short = tmp_path / "short"
    short.mkdir()
    (short / "a.txt").write_text("hello\n", encoding="utf-8")
    sources = json.dumps([{"path": str(short), "weight": 0.5, "name": "tiny"}])
    _fail(tiny_assets, tmp_path, ["source 'tiny'", "shorter than one block"],
          dataset_dir=_dir(tmp_path, {}), data_sources=sources)  # fmt: skip


def test_unreadable(tmp_path: Path) -> None:
    adir = tmp_path / "adir.txt"
    adir.mkdir()
    with pytest.raises(DataError, match=r"--dataset_dir: cannot read .*adir\.txt"):
        list(iter_document_batches(adir))
    if os.geteuid() != 0:  # root reads any file
        locked = tmp_path / "locked.txt"
        locked.write_text("text\n")
        locked.chmod(0)
        with pytest.raises(DataError, match=r"cannot read .*locked\.txt: Permission denied"):
            list(iter_document_batches(locked))
