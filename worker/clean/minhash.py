"""MinHash signatures over word shingles and a banded LSH index, streaming (first seen wins).

A document's shingles are the ``shingle_size``-word runs of its normalised text, each hashed to
32 bits (xxh32); permutation ``i`` is ``(a_i * h + b_i) mod (2^61 - 1)``, its minimum over the
shingles is signature value ``i``. The signature is cut into ``bands`` bands of ``rows`` values
(chosen from the Jaccard threshold as datasketch does: the least mean of the false-positive and
false-negative areas); a document whose band equals a band of an earlier document is a near
copy of it. Every document's bands enter the index, removed ones too, so near copies of a
removed copy go as well (datatrove's clusters do the same). The index holds one entry per band
per document: its memory is the one part of a clean job that grows with the corpus.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import xxhash

from worker.clean.text import normalise, words

_PRIME = np.uint64((1 << 61) - 1)
_MASK = np.uint64(0xFFFFFFFF)
#: Shingles hashed per block (bounds the permutations' temporary to num_perm x this).
_BLOCK = 4096


@lru_cache(maxsize=64)
def optimal_bands(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows) with bands * rows <= num_perm minimising (false positives + negatives)/2."""
    lo = np.linspace(0.0, threshold, 201)
    hi = np.linspace(threshold, 1.0, 201)
    best, best_err = (1, num_perm), float("inf")
    for b in range(1, num_perm + 1):
        for r in range(1, num_perm // b + 1):
            fp = np.trapezoid(1 - (1 - lo**r) ** b, lo)
            fn = np.trapezoid((1 - hi**r) ** b, hi)
            err = float(0.5 * fp + 0.5 * fn)
            if err < best_err:
                best, best_err = (b, r), err
    return best


def shingles(text: str, size: int) -> list[str]:
    ws = words(normalise(text))
    if len(ws) <= size:
        return [" ".join(ws)] if ws else []
    return [" ".join(ws[i : i + size]) for i in range(len(ws) - size + 1)]


class MinHasher:
    def __init__(self, num_perm: int, seed: int) -> None:
        rng = np.random.default_rng(seed)
        # a, b < 2^32 and h < 2^32: a*h + b < 2^64, so uint64 never wraps before the modulo.
        self.a = rng.integers(1, 1 << 32, size=(num_perm, 1), dtype=np.uint64)
        self.b = rng.integers(0, 1 << 32, size=(num_perm, 1), dtype=np.uint64)
        self.num_perm = num_perm

    def signature(self, grams: list[str]) -> np.ndarray:
        sig = np.full(self.num_perm, 0xFFFFFFFF, dtype=np.uint64)
        hashes = np.fromiter(
            (xxhash.xxh32_intdigest(g.encode("utf-8", "surrogatepass")) for g in set(grams)),
            dtype=np.uint64,
            count=-1,
        )
        for start in range(0, len(hashes), _BLOCK):
            h = hashes[None, start : start + _BLOCK]
            values = ((self.a * h + self.b) % _PRIME) & _MASK
            np.minimum(sig, values.min(axis=1), out=sig)
        return sig


class LshIndex:
    """Band key -> the ordinal of the first document that had it, one dict per band."""

    def __init__(self, threshold: float, num_perm: int) -> None:
        self.bands, self.rows = optimal_bands(threshold, num_perm)
        self.tables: list[dict[int, int]] = [{} for _ in range(self.bands)]

    def keys(self, sig: np.ndarray) -> list[int]:
        r = self.rows
        return [
            xxhash.xxh3_64_intdigest(sig[i * r : (i + 1) * r].tobytes()) for i in range(self.bands)
        ]

    def add(self, sig: np.ndarray, ordinal: int) -> int | None:
        """Insert; the ordinal of an earlier document sharing a band, or None."""
        first: int | None = None
        for table, key in zip(self.tables, self.keys(sig), strict=True):
            found = table.setdefault(key, ordinal)
            if found != ordinal and first is None:
                first = found
        return first

    def __len__(self) -> int:
        return sum(len(t) for t in self.tables)
