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

#: What the forked processes read (set before the fork, so nothing is pickled to them).
_JOB: dict[str, Any] = {}


def _count_chunk(bounds: tuple[int, int]) -> Counter[str]:
    """Phase 1: segments (or, without them, words) of a slice of the lines."""
    backend, lines = _JOB["backend"], _JOB["lines"][bounds[0] : bounds[1]]
    if _JOB["by_segments"]:
        return Counter(_SEGMENT.findall("\n".join(lines)))
    return pretokenized_counts(backend, lines)


def _feed_chunk(bounds: tuple[int, int]) -> tuple[list[str], set[int], set[str]]:
    """Phase 2: a slice of the distinct segments (or words), as words of the base's tokens."""
    backend, items = _JOB["backend"], _JOB["items"][bounds[0] : bounds[1]]
    counts: Counter[str] = Counter()
    if _JOB["by_segments"]:
        pre = backend.pre_tokenizer
        for segment, n in items:
            for piece, _ in pre.pre_tokenize_str(segment):
                counts[piece] += n
    else:
        counts.update(dict(items))
    model = backend.model
    feed: list[str] = []
    used: set[int] = set()
    for word, n in counts.items():
        ids = [t.id for t in model.tokenize(word)]
        if len(ids) < 2:
            continue  # a word of one token has no pair to merge
        used.update(ids)
        feed.append(" ".join(itertools.repeat("".join(map(symbol, ids)), n)))
    return feed, used, set(counts)


def _slices(n_items: int, parts: int) -> list[tuple[int, int]]:
    step = max(1, -(-n_items // parts))
    return [(i, min(i + step, n_items)) for i in range(0, n_items, step)] or [(0, 0)]


def trainer_feed(backend: Any, lines: Sequence[str]) -> tuple[list[str], set[int], int]:
    """BpeTrainer's input for ``lines``: the words of two tokens or more, each a string of
    ``symbol`` characters repeated as often as it occurs; the token ids they use; and the
    number of distinct words. Counting the text, then pre-tokenizing and segmenting its
    distinct segments, are each shared out over the CPUs."""
    ready = _segmentable(backend, lines)
    work = list(ready if ready is not None else lines)
    n = max(1, min(os.cpu_count() or 1, 8, sum(map(len, work)) // PARALLEL_CHARS))
    forked = n > 1 and "fork" in multiprocessing.get_all_start_methods()
    _JOB.update(backend=backend, lines=work, by_segments=ready is not None)
    try:
        if not forked:
            _JOB["items"] = list(_count_chunk((0, len(work))).items())
            parts = [_feed_chunk((0, len(_JOB["items"])))]
        else:
            ctx = multiprocessing.get_context("fork")
            with ctx.Pool(n) as pool:
                counted = pool.map(_count_chunk, _slices(len(work), n))
            total = counted[0]
            for more in counted[1:]:
                total.update(more)
            _JOB["items"] = list(total.items())
            with ctx.Pool(n) as pool:  # forked again: the merged counts are read, not sent
                parts = pool.map(_feed_chunk, _slices(len(_JOB["items"]), n))
    finally:
        _JOB.clear()
    feed = [s for part, _, _ in parts for s in part]
    used = set().union(*(u for _, u, _ in parts))
    return feed, used, len(set().union(*(w for _, _, w in parts)))
