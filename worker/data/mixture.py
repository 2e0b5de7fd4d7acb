"""Validation hold-out and weighted mixing of sources, as index arrays (numpy, seeded).

Cached mode: an epoch of the mixture holds as many blocks as all sources' training blocks
together; source ``i`` gets ``round(total * w_i / sum(w))`` of them (largest remainder, so they add
up). A source drawn more often than it has blocks repeats (replay), each pass in a new seeded
order; one drawn less often gives a seeded random subset. The draws are then shuffled together
(seeded), so ``--max_train_samples`` keeps the mixture's proportions. One source is used as is, in
file order (the Trainer's sampler shuffles it), exactly as before mixtures existed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def _rng(seed: int, i: int) -> np.random.Generator:
    # Source 0 keeps ``default_rng(seed)``: the hold-out of a single source is the one
    # ``datasets.Dataset.train_test_split(test_size, seed)`` picked before this engine.
    return np.random.default_rng(seed if i == 0 else [seed, i])


def holdout(n: int, fraction: float, seed: int, i: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(train positions, eval positions) of ``n`` blocks; ``ceil(fraction * n)`` held out, as
    ``train_test_split(test_size=fraction, seed=seed, shuffle=True)`` does."""
    if fraction <= 0 or n == 0:
        return np.arange(n), np.zeros(0, dtype=np.int64)
    n_test = math.ceil(fraction * n)
    perm = _rng(seed, i).permutation(n)
    return perm[n_test:], perm[:n_test]


def mixture_counts(sizes: Sequence[int], weights: Sequence[float]) -> list[int]:
    """Blocks drawn per source for one epoch of the mixture (see the module docstring)."""
    total = sum(sizes)
    wsum = sum(weights)
    exact = [total * w / wsum for w in weights]
    counts = [math.floor(x) for x in exact]
    order = sorted(range(len(exact)), key=lambda i: (counts[i] - exact[i], i))
    for i in order[: total - sum(counts)]:
        counts[i] += 1
    return counts


def replay_weights(weights: Sequence[float], replay: Sequence[bool], share: float) -> list[float]:
    """Weights that draw ``share`` of the blocks from the replay sources and the rest from the
    others, each group split by its own weights (``--replay_share``). Blocks are equal in
    tokens, so the share of blocks is the share of training tokens."""
    if not 0 <= share < 1:
        raise ValueError(f"a replay share is in [0, 1), got {share}")
    groups = [
        sum(w for w, r in zip(weights, replay, strict=True) if r),
        sum(w for w, r in zip(weights, replay, strict=True) if not r),
    ]
    if groups[1] <= 0:
        raise ValueError("no source besides the replay sources has a positive weight")
    out = []
    for w, r in zip(weights, replay, strict=True):
        total, part = (groups[0], share) if r else (groups[1], 1 - share)
        out.append(part * w / total if total > 0 else 0.0)
    return out


def mix(
    pools: Sequence[np.ndarray], weights: Sequence[float], seed: int
) -> tuple[np.ndarray, list[int]]:
    """An epoch's index (values taken from the ``pools``, one per source) and the draws per source."""
    if len(pools) == 1:
        return np.asarray(pools[0], dtype=np.int64), [len(pools[0])]
    counts = mixture_counts([len(p) for p in pools], weights)
    parts = []
    for i, (pool, count) in enumerate(zip(pools, counts, strict=True)):
        if count == 0:
            continue
        rng = _rng(seed, 1000 + i)
        passes = -(-count // len(pool))
        order = np.concatenate([rng.permutation(len(pool)) for _ in range(passes)])[:count]
        parts.append(np.asarray(pool, dtype=np.int64)[order])
    index = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    return index[_rng(seed, 999).permutation(len(index))], counts
