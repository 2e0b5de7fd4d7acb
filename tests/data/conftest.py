"""Real text and a real tokenizer for the data-engine tests.

Text: Debian's ``fortunes-zh`` (Chinese fortunes, Tang and Song poems) and the English licences in
``/usr/share/common-licenses`` (``.ci/run`` installs fortunes-zh). Tokenizer: Mistral's 32k
SentencePiece model from the ``mistral-common`` wheel (byte fallback: rare Chinese characters
become 3 byte tokens), loaded as a fast tokenizer.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

FORTUNES = Path("/usr/share/games/fortunes")
LICENSES = Path("/usr/share/common-licenses")
#: Bytes of the large Chinese fortune file kept for the tests (cut at a line end).
CHINESE_BYTES = 300_000


def _need(path: Path, what: str) -> Path:
    if not path.exists():
        pytest.fail(f"{path} is missing: {what}")
    return path


def head_lines(data: bytes, limit: int) -> bytes:
    return data[: data.rfind(b"\n", 0, limit) + 1]


def fortunes(path: Path) -> list[str]:
    """A fortune file's entries (separated by ``%`` lines), multi-line documents."""
    text = path.read_text(encoding="utf-8")
    return [e.strip("\n") for e in text.split("\n%\n") if e.strip()]


@pytest.fixture(scope="session")
def mistral_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    spec = importlib.util.find_spec("mistral_common")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("the mistral-common wheel is missing (make venv installs it)")
    model = Path(next(iter(spec.submodule_search_locations))) / "data" / "tokenizer.model.v1"
    target = tmp_path_factory.mktemp("mistral")
    shutil.copy(model, target / "tokenizer.model")
    return target


@pytest.fixture(scope="session")
def mistral(mistral_dir: Path) -> Any:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(mistral_dir))
    assert tok.is_fast
    return tok


@pytest.fixture(scope="session")
def mistral_fast_dir(mistral: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same tokenizer saved as tokenizer.json: loads without converting (subprocess tests)."""
    target = tmp_path_factory.mktemp("mistral-fast")
    mistral.save_pretrained(str(target))
    return target


@pytest.fixture(scope="session")
def real_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Chinese (.txt, one line per document), English licences (.txt) and Tang poems as JSONL."""
    root = tmp_path_factory.mktemp("real-corpus")
    chinese = _need(FORTUNES / "chinese", "apt-get install fortunes-zh").read_bytes()
    (root / "fortunes_chinese.txt").write_bytes(head_lines(chinese, CHINESE_BYTES))
    shutil.copy(_need(FORTUNES / "song100", "apt-get install fortunes-zh"), root / "song100.txt")
    for name in ("GPL-3", "Apache-2.0"):
        shutil.copy(_need(LICENSES / name, "Debian base-files"), root / f"license_{name}.txt")
    with (root / "tang300.jsonl").open("w", encoding="utf-8") as fh:
        for entry in fortunes(FORTUNES / "tang300"):
            fh.write(json.dumps({"text": entry}, ensure_ascii=False) + "\n")
    return root
