"""A file's token stream → fixed-size blocks, in numpy, over the whole file.

``classic`` — the seed's behaviour: documents' ids (with the tokenizer's own special tokens, e.g. a
BOS per document for Llama/Mistral) concatenated with nothing between them, cut every
``block_size`` tokens.

``eos`` (the default) — the same stream with the EOS id after every document (unless the tokenizer
already ended it with EOS), so the model sees where one document stops and the next begins; and a
block never *starts* inside a character: when a cut falls on a token that begins with a UTF-8
continuation byte (byte-fallback pieces of a character missing from the vocabulary), the next block
starts at that character's first byte token instead, repeating those 1 to 3 tokens from the end of the
previous block. Nothing is dropped and every block still holds ``block_size`` tokens.

Both modes keep the remainder across read chunks (only the file's last partial block is dropped:
the seed dropped one per 1,000 documents) and give identical blocks whether fed at once or in
pieces, which is what makes streaming equal to the cache.
"""

from __future__ import annotations

import numpy as np

#: A UTF-8 character has at most 3 continuation bytes.
MAX_BACKTRACK = 3


def with_eos(flat: np.ndarray, lengths: np.ndarray, eos_id: int) -> np.ndarray:
    """``flat`` with ``eos_id`` inserted after each document not already ending with it."""
    ends = np.cumsum(lengths)
    nonempty = lengths > 0
    last = np.full(len(lengths), -1, dtype=np.int64)
    last[nonempty] = flat[ends[nonempty] - 1]
    need = last != eos_id
    return np.insert(flat, ends[need], np.asarray(eos_id, dtype=flat.dtype))


class Packer:
    """Incremental packer: ``feed`` token chunks, get the finished ``(k, block_size)`` blocks."""

    def __init__(
        self, block_size: int, dtype: type, unsafe_start: np.ndarray | None = None
    ) -> None:
        if block_size <= MAX_BACKTRACK:
            raise ValueError("block_size must exceed 3")
        self.block_size = block_size
        self.dtype = dtype
        self.unsafe = unsafe_start
        self.buf: np.ndarray = np.zeros(0, dtype=dtype)
        self.moved = 0  # block starts moved back to a character's first byte
        self._next = 0

    def feed(self, tokens: np.ndarray, final: bool = False) -> np.ndarray:
        buf = np.concatenate([self.buf, tokens]) if len(self.buf) else tokens
        n = self.block_size
        if self.unsafe is None:
            k = len(buf) // n
            blocks = buf[: k * n].reshape(k, n)
            self.buf = buf[k * n :].copy()
            return blocks
        starts = self._starts(buf, final)
        if starts:
            blocks = buf[np.add.outer(np.asarray(starts, dtype=np.int64), np.arange(n))]
            rest = self._next  # where the last accepted block's successor begins
        else:
            blocks = np.zeros((0, n), dtype=buf.dtype)
            rest = 0
        self.buf = buf[rest:].copy()
        return blocks

    def _starts(self, buf: np.ndarray, final: bool) -> list[int]:
        """Starts of the blocks complete in ``buf``; sets ``self._next`` to the one after."""
        assert self.unsafe is not None
        n, length = self.block_size, len(buf)
        out: list[int] = []
        p = 0
        while True:
            # Candidate successor starts p+n, p+2n, ...; a block is accepted once its
            # successor's first token is known (or at the end of the file).
            count = (length - 1 - p) // n if not final else (length - p) // n
            if count <= 0:
                break
            succ = p + n * np.arange(1, count + 1)
            known = succ < length
            bad = np.zeros(count, dtype=bool)
            bad[known] = self.unsafe[buf[succ[known]]]
            if not bad.any():
                out.extend(range(p, p + n * count, n))
                p = int(succ[-1])
                continue
            j = int(np.argmax(bad))
            out.extend(range(p, p + n * (j + 1), n))
            q = int(succ[j])
            back = q
            while back > q - MAX_BACKTRACK and self.unsafe[buf[back]]:
                back -= 1
            if not self.unsafe[buf[back]]:
                q = back  # the character's first byte token
                self.moved += 1
            p = q
        self._next = p
        return out


def group_blocks(ids: list[list[int]], block_size: int) -> list[list[int]]:
    """The seed's ``group_texts`` on Python lists (kept for tools and tests)."""
    flat = [t for seq in ids for t in seq]
    total = (len(flat) // block_size) * block_size
    return [flat[i : i + block_size] for i in range(0, total, block_size)]
