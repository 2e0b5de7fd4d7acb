"""Fertility of tokenizers on text (``python -m worker.tokenizer fertility``).

Per text file (its stem is the language label), each tokenizer encodes the file line by line
without special tokens. Words are whitespace-separated; characters are every Unicode code point
of the lines encoded, whitespace included (the one definition of ``cpt_contract/text.py``, which
bits per character and the dataset scan use too); bytes are the UTF-8 bytes of the lines.

- ``byte_fallback_rate``: share of tokens that are not whole characters: SentencePiece byte
  pieces (``<0xE0>``), or byte-level BPE tokens whose bytes are not complete UTF-8;
- ``unknown_rate``: share of ``unk`` tokens;
- ``new_token_rate``: share of ids >= the size of the first tokenizer (the base).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from worker.tokenizer.corpus import documents, find_text_files, text_lines
from worker.tokenizer.loading import load_tokenizer, tokenizer_is_byte_level

_SP_BYTE = re.compile(r"^<0x[0-9A-Fa-f]{2}>$")


@lru_cache(maxsize=1)
def byte_level_decoder() -> dict[str, int]:
    """The byte-level alphabet (GPT-2's printable stand-ins for bytes) back to bytes."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    codes = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            codes.append(256 + extra)
            extra += 1
    return {chr(c): b for b, c in zip(printable, codes, strict=True)}


def byte_level_bytes(token: str) -> bytes | None:
    table = byte_level_decoder()
    try:
        return bytes(table[ch] for ch in token)
    except KeyError:
        return None


def _is_partial_char(token: str) -> bool:
    data = byte_level_bytes(token)
    if data is None:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


@dataclass
class FertilityRow:
    label: str
    tokenizer: str
    words: int
    chars: int
    bytes: int
    tokens: int
    tokens_per_word: float
    tokens_per_char: float
    bytes_per_token: float
    byte_fallback_rate: float
    unknown_rate: float
    new_token_rate: float


def measure(
    tokenizer: Any, name: str, label: str, text: str, base_size: int, byte_level: bool
) -> FertilityRow:
    lines = text_lines([text])
    encoded: list[list[int]] = (
        tokenizer(lines, add_special_tokens=False)["input_ids"] if lines else []
    )
    ids = [i for row in encoded for i in row]
    n = len(ids)
    words = sum(len(line.split()) for line in lines)
    chars = sum(len(line) for line in lines)
    n_bytes = sum(len(line.encode("utf-8")) for line in lines)
    tokens = tokenizer.convert_ids_to_tokens(sorted(set(ids)))
    by_id = dict(zip(sorted(set(ids)), tokens, strict=True))
    if byte_level:
        partial = {i for i, t in by_id.items() if t is not None and _is_partial_char(t)}
    else:
        partial = {i for i, t in by_id.items() if t is not None and _SP_BYTE.match(t)}
    unk = tokenizer.unk_token_id
    return FertilityRow(
        label=label,
        tokenizer=name,
        words=words,
        chars=chars,
        bytes=n_bytes,
        tokens=n,
        tokens_per_word=n / words if words else 0.0,
        tokens_per_char=n / chars if chars else 0.0,
        bytes_per_token=n_bytes / n if n else 0.0,
        byte_fallback_rate=sum(1 for i in ids if i in partial) / n if n else 0.0,
        unknown_rate=sum(1 for i in ids if unk is not None and i == unk) / n if n else 0.0,
        new_token_rate=sum(1 for i in ids if i >= base_size) / n if n else 0.0,
    )


def read_labelled_texts(
    paths: Sequence[str | Path], argument: str = "--text"
) -> list[tuple[str, str]]:
    """(label, text) per file; the label is the file's stem."""
    out = []
    for path in find_text_files(paths, argument):
        out.append((path.stem, "\n".join(documents(path, argument))))
    return out


def measure_files(
    tokenizer: Any, name: str, paths: Sequence[str | Path], base_size: int
) -> list[FertilityRow]:
    byte_level = tokenizer_is_byte_level(tokenizer)
    return [
        measure(tokenizer, name, label, text, base_size, byte_level)
        for label, text in read_labelled_texts(paths)
    ]


@dataclass
class FertilityReport:
    tokenizers: list[str]
    sizes: list[int]
    rows: list[FertilityRow] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "tokenizers": self.tokenizers,
            "sizes": self.sizes,
            "rows": [asdict(r) for r in self.rows],
        }

    def table(self) -> str:
        head = (
            f"{'text':<12} {'tokenizer':<28} {'tok/word':>9} {'tok/char':>9} {'bytes/tok':>9} "
            f"{'bytefb%':>8} {'unk%':>6} {'new%':>6} {'Δtok/word':>9}"
        )
        out = [head, "-" * len(head)]
        first: dict[str, FertilityRow] = {}
        for r in self.rows:
            ref = first.setdefault(r.label, r)
            delta = r.tokens_per_word / ref.tokens_per_word - 1 if ref.tokens_per_word else 0.0
            name = r.tokenizer if len(r.tokenizer) <= 28 else "…" + r.tokenizer[-27:]
            out.append(
                f"{r.label:<12} {name:<28} {r.tokens_per_word:>9.3f} {r.tokens_per_char:>9.3f} "
                f"{r.bytes_per_token:>9.2f} {100 * r.byte_fallback_rate:>8.2f} "
                f"{100 * r.unknown_rate:>6.2f} {100 * r.new_token_rate:>6.2f} {delta:>+9.1%}"
            )
        return "\n".join(out)


def fertility(
    tokenizers: Sequence[str | Path],
    texts: Sequence[str | Path],
    load: Callable[[str | Path, str], Any] = load_tokenizer,
) -> FertilityReport:
    """Measure every tokenizer on every text file; the first tokenizer is the base.

    ``load``: how a directory is read (``fast.load_fast`` for byte-level BPE without
    transformers)."""
    loaded = [load(t, "--tokenizer") for t in tokenizers]
    labelled = read_labelled_texts(texts)
    base_size = len(loaded[0])
    report = FertilityReport(
        tokenizers=[str(t) for t in tokenizers], sizes=[len(t) for t in loaded]
    )
    byte_level = [tokenizer_is_byte_level(t) for t in loaded]
    for label, text in labelled:
        for path, tok, bl in zip(tokenizers, loaded, byte_level, strict=True):
            report.rows.append(measure(tok, str(path), label, text, base_size, bl))
    return report
