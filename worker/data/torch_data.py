"""What the Trainer reads: ``{"input_ids", "labels"}`` blocks as torch datasets.

``BlockDataset`` — map-style, over the cache's memory-mapped block files and an index of global
block ids (split, mixture, limits). ``StreamingBlocks`` — iterable, tokenizing the files lazily in
the same order and with the same packing as the cache (same blocks, same order), in memory that
does not grow with the corpus.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import islice
from typing import Any

import numpy as np
import torch

from worker.data.encoding import Encoder
from worker.data.errors import DataError
from worker.data.files import PackOptions, iter_file_blocks
from worker.data.sources import Source


def _as_item(block: np.ndarray) -> dict[str, torch.Tensor]:
    ids = torch.from_numpy(block.astype(np.int64))
    return {"input_ids": ids, "labels": ids}


class BlockDataset(torch.utils.data.Dataset):
    """Rows ``index[i]`` of the concatenated ``parts`` (each ``(n, block_size)``)."""

    def __init__(self, parts: Sequence[np.ndarray], index: np.ndarray | None = None) -> None:
        self._parts = list(parts)
        self._offsets = np.cumsum([0, *(len(p) for p in self._parts)])
        total = int(self._offsets[-1])
        self.index = np.arange(total) if index is None else np.asarray(index, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.index)

    def block(self, i: int) -> np.ndarray:
        g = int(self.index[i])
        part = int(np.searchsorted(self._offsets, g, side="right")) - 1
        return np.asarray(self._parts[part][g - int(self._offsets[part])])

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        return _as_item(self.block(i))

    def subset(self, positions: np.ndarray | range) -> BlockDataset:
        out = BlockDataset.__new__(BlockDataset)
        out._parts, out._offsets = self._parts, self._offsets
        out.index = self.index[np.asarray(positions, dtype=np.int64)]
        return out

    def head(self, n: int | None) -> BlockDataset:
        return self if n is None or n >= len(self) else self.subset(range(max(n, 0)))

    def __getstate__(self) -> dict[str, Any]:
        # DataLoader workers started by spawn: reopen the memmaps rather than copying them.
        state = dict(self.__dict__)
        state["_parts"] = [
            ("memmap", p.filename, p.dtype.str, p.shape) if isinstance(p, np.memmap) else p
            for p in self._parts
        ]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        parts = []
        for p in state["_parts"]:
            if isinstance(p, tuple) and p and p[0] == "memmap":
                parts.append(np.memmap(p[1], dtype=np.dtype(p[2]), mode="r", shape=p[3]))
            else:
                parts.append(p)
        state["_parts"] = parts
        self.__dict__.update(state)


def iter_source_blocks(source: Source, encoder: Encoder, opts: PackOptions) -> Iterator[np.ndarray]:
    """A source's blocks one by one: its files in order, each file's blocks in order."""
    opts = source.options(opts)
    for path in source.files:
        for blocks in iter_file_blocks(path, encoder, opts, source.flag_of(path)):
            yield from blocks


class StreamingBlocks(torch.utils.data.IterableDataset):
    """Blocks tokenized on the fly.

    One source: its blocks in file order, less the first ``skip[0]`` (held out for evaluation).
    Several: a seeded weighted draw of the source of each next block; a source that runs out starts
    again (replay), and the stream ends once every source with a positive weight was read through
    at least once (a stream needs ``--max_steps`` anyway).
    """

    def __init__(
        self,
        sources: Sequence[Source],
        encoder: Encoder,
        opts: PackOptions,
        seed: int = 0,
        skip: Sequence[int] | None = None,
        limit: int | None = None,
    ) -> None:
        self.sources = list(sources)
        self.encoder = encoder
        self.opts = opts
        self.seed = seed
        self.skip = list(skip) if skip is not None else [0] * len(self.sources)
        self.limit = limit

    def blocks(self) -> Iterator[np.ndarray]:
        stream: Iterator[np.ndarray]
        if len(self.sources) == 1:
            stream = islice(
                iter_source_blocks(self.sources[0], self.encoder, self.opts), self.skip[0], None
            )
        else:
            stream = self._mixed()
        return islice(stream, self.limit)

    def _pass(self, i: int) -> Iterator[np.ndarray]:
        return islice(
            iter_source_blocks(self.sources[i], self.encoder, self.opts), self.skip[i], None
        )

    def _mixed(self) -> Iterator[np.ndarray]:
        weights = np.array([s.weight for s in self.sources], dtype=np.float64)
        p = weights / weights.sum()
        rng = np.random.default_rng([self.seed, 7])
        iters = [self._pass(i) for i in range(len(self.sources))]
        todo = {i for i, w in enumerate(weights) if w > 0}
        while todo:
            for i in rng.choice(len(p), size=1024, p=p):
                block = next(iters[i], None)
                if block is None:
                    todo.discard(int(i))
                    if not todo:
                        return
                    iters[i] = self._pass(int(i))
                    block = next(iters[i], None)
                    if block is None:
                        raise DataError(
                            f"{self.sources[i].flag}: source {self.sources[i].name!r} "
                            "yields no block"
                        )
                yield block

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        for block in self.blocks():
            yield _as_item(block)


def first_blocks(
    sources: Sequence[Source], encoder: Encoder, opts: PackOptions, counts: Sequence[int]
) -> list[np.ndarray]:
    """The first ``counts[i]`` blocks of each source (a streamed run's evaluation set)."""
    out: list[np.ndarray] = []
    for source, n in zip(sources, counts, strict=True):
        out.extend(islice(iter_source_blocks(source, encoder, opts), n))
    return out


def stacked(blocks: list[np.ndarray], block_size: int, dtype: Any) -> BlockDataset:
    arr = np.stack(blocks) if blocks else np.zeros((0, block_size), dtype=dtype)
    return BlockDataset([arr])
