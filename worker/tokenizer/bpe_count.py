"""Counting the words of a corpus as a byte-level BPE base sees them, fast, for ``merge_bpe``.

A word is a pre-token of the base (its normalizer and pre-tokenizer) and is counted once per
occurrence; each distinct word is then segmented by the base model. Two things make this
cheap:

- the pre-tokenizer runs once per distinct *segment* of the text (a whitespace run and the
  non-space text after it) instead of once per line: the byte-level patterns (GPT-2's,
  Llama-3's, Qwen's) never put a non-space character and the whitespace after it in one
  pre-token, so every such place is a pre-token boundary and the words are the same. A sample
  of whole lines is compared first; on any difference (another pre-tokenizer) every line is
  pre-tokenized whole;
- the lines are cut into one chunk per CPU, each counted and segmented in a forked process.

The result is BpeTrainer's input (``merge_bpe.learn_merges``): each word as a string of one
character per base token (``symbol``), repeated as often as the word occurs.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

#: A line cut before each whitespace run: the first segment, then whitespace + non-space.
_SEGMENT = re.compile(r"[^\S\n]*\S+")
#: Lines compared whole against their segments before the segments are trusted.
CHECK_LINES = 400
#: Token id ``i`` is the character ``chr(SYMBOL_BASE + i)`` to BpeTrainer: from plane 1 on, no
#: surrogates and no whitespace (its pre-tokenizer splits words on whitespace only).
SYMBOL_BASE = 0x10000
#: Below this many characters one process counts (a fork costs more than it saves).
PARALLEL_CHARS = 2_000_000


def symbol(token_id: int) -> str:
    return chr(SYMBOL_BASE + token_id)


def token_id_of(char: str) -> int:
    return ord(char) - SYMBOL_BASE


def pretokenized_counts(backend: Any, lines: Iterable[str]) -> Counter[str]:
    """How often each pre-token (in the base's byte-level alphabet) occurs in ``lines``."""
    normalizer, pre = backend.normalizer, backend.pre_tokenizer
    counts: Counter[str] = Counter()
    for line in lines:
        text = normalizer.normalize_str(line) if normalizer is not None else line
        if pre is None:
            counts[text] += 1
            continue
        for piece, _ in pre.pre_tokenize_str(text):
            counts[piece] += 1
    return counts


def _pieces(pre: Any, text: str) -> list[str]:
    return [piece for piece, _ in pre.pre_tokenize_str(text)]


def segments_agree(pre: Any, lines: Iterable[str]) -> bool:
    """Pre-tokenizing each segment of these lines gives the words of the whole lines."""
    for line in lines:
        cut = [p for seg in _SEGMENT.findall(line) for p in _pieces(pre, seg)]
        if cut != _pieces(pre, line):
            return False
    return True


def _by_segments(pre: Any, lines: Sequence[str]) -> Counter[str]:
    segments = Counter(_SEGMENT.findall("\n".join(lines)))
    counts: Counter[str] = Counter()
    for segment, n in segments.items():
        for piece, _ in pre.pre_tokenize_str(segment):
            counts[piece] += n
    return counts


def _segmentable(backend: Any, lines: Sequence[str]) -> list[str] | None:
    """The lines as the pre-tokenizer sees them, when segments give their words; else None."""
    normalizer, pre = backend.normalizer, backend.pre_tokenizer
    if pre is None:
        return None
    if normalizer is not None:
        lines = [normalizer.normalize_str(line) for line in lines]
    if any("\n" in line for line in lines):
        return None
    if not segments_agree(pre, lines[:: max(1, len(lines) // CHECK_LINES)]):
        return None
    return list(lines)


def word_counts(backend: Any, lines: Sequence[str]) -> Counter[str]:
    """``pretokenized_counts``, by segments where they agree (one process)."""
    ready = _segmentable(backend, lines)
    if ready is None:
        return pretokenized_counts(backend, lines)
    return _by_segments(backend.pre_tokenizer, ready)


# --- BpeTrainer's input, one chunk per process --------------------------------------------------

_JOB: tuple[Any, list[str], bool] | None = None  # (backend, lines, by segments): read after fork


def _feed_chunk(bounds: tuple[int, int]) -> tuple[list[str], set[int], Counter[str]]:
    assert _JOB is not None
    backend, lines, by_segments = _JOB
    chunk = lines[bounds[0] : bounds[1]]
    counts = (
        _by_segments(backend.pre_tokenizer, chunk)
        if by_segments
        else pretokenized_counts(backend, chunk)
    )
    model = backend.model
    feed: list[str] = []
    used: set[int] = set()
    for word, n in counts.items():
        ids = [t.id for t in model.tokenize(word)]
        if len(ids) < 2:
            continue  # a word of one token has no pair to merge
        used.update(ids)
        feed.append(" ".join(itertools.repeat("".join(map(symbol, ids)), n)))
    return feed, used, counts


def trainer_feed(backend: Any, lines: Sequence[str]) -> tuple[list[str], set[int], int]:
    """BpeTrainer's input for ``lines``: the words of two tokens or more, each a string of
    ``symbol`` characters repeated as often as it occurs; the token ids they use; and the
    number of distinct words."""
    global _JOB
    ready = _segmentable(backend, lines)
    work = list(ready if ready is not None else lines)
    chars = sum(map(len, work))
    n = max(1, min(os.cpu_count() or 1, 8, chars // PARALLEL_CHARS))
    step = -(-len(work) // n)
    bounds = [(i, min(i + step, len(work))) for i in range(0, len(work), step)] or [(0, 0)]
    _JOB = (backend, work, ready is not None)
    try:
        if len(bounds) == 1 or "fork" not in multiprocessing.get_all_start_methods():
            parts = [_feed_chunk(b) for b in bounds]
        else:
            with multiprocessing.get_context("fork").Pool(len(bounds)) as pool:
                parts = pool.map(_feed_chunk, bounds)
    finally:
        _JOB = None
    feed = [s for part, _, _ in parts for s in part]
    used = set().union(*(u for _, u, _ in parts))
    distinct = (
        len(set().union(*(c.keys() for _, _, c in parts))) if len(parts) > 1 else len(parts[0][2])
    )
    return feed, used, distinct
