"""Reading text: files or directories of ``.txt`` / ``.jsonl`` (``{"text": ...}``), strict UTF-8."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from worker.data.opening import open_data
from worker.tokenizer.errors import TokenizerInputError

#: Suffixes read from a directory (a file named explicitly is read whatever its name).
TEXT_SUFFIXES = (".txt", ".jsonl")


@dataclass
class Corpus:
    """Non-empty lines of text, in file order."""

    files: list[Path] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)

    @property
    def n_chars(self) -> int:
        return sum(len(line) for line in self.lines)


def find_text_files(paths: Sequence[str | Path], argument: str) -> list[Path]:
    """Files named in ``paths``, directories expanded to their ``.txt``/``.jsonl`` files."""
    if not paths:
        raise TokenizerInputError(argument, "no file or directory given")
    out: list[Path] = []
    for item in paths:
        path = Path(item)
        if path.is_dir():
            found = sorted(
                p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES
            )
            if not found:
                raise TokenizerInputError(argument, f"{item} holds no .txt or .jsonl file")
            out.extend(found)
        elif path.is_file():
            out.append(path)
        else:
            raise TokenizerInputError(argument, f"{item} does not exist")
    return out


def read_text(path: Path, argument: str) -> str:
    """The whole file as text; a file that is not UTF-8 is an error naming the byte."""
    try:
        with open_data(path) as fh:
            data = fh.read()
    except OSError as exc:
        raise TokenizerInputError(argument, f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TokenizerInputError(
            argument,
            f"{path} is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})",
        ) from None
    return text.removeprefix("\ufeff")


def documents(path: Path, argument: str) -> list[str]:
    """The documents of one file: a ``.jsonl`` file's ``text`` fields, else the whole text."""
    text = read_text(path, argument)
    if path.suffix.lower() != ".jsonl":
        return [text]
    docs: list[str] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise TokenizerInputError(
                argument, f"{path} line {number} is not JSON ({exc.msg})"
            ) from None
        if not isinstance(value, dict) or not isinstance(value.get("text"), str):
            raise TokenizerInputError(
                argument, f'{path} line {number} is not an object with a "text" string'
            )
        docs.append(value["text"])
    return docs


def text_lines(docs: Iterable[str]) -> list[str]:
    """Non-empty lines, stripped."""
    return [s for doc in docs for line in doc.splitlines() if (s := line.strip())]


def read_corpus(paths: Sequence[str | Path], argument: str) -> Corpus:
    """Every non-empty line of the files; an empty corpus is an error."""
    files = find_text_files(paths, argument)
    corpus = Corpus(files=files)
    for path in files:
        corpus.lines.extend(text_lines(documents(path, argument)))
    if not corpus.lines:
        names = ", ".join(str(p) for p in files[:3]) + (" ..." if len(files) > 3 else "")
        raise TokenizerInputError(argument, f"no text in {names} (only empty lines)")
    return corpus
