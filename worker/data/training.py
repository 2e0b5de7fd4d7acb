"""Train/eval datasets for a training run, from sources, a tokenizer and the packing options.

This is what ``worker/training/data.py`` (and so ``worker/pretrain.py``) calls. Cached mode
tokenizes each file once into the block cache (``files.cache_file``) and serves memory-mapped
blocks; streaming mode reads the files lazily (``torch_data.StreamingBlocks``). Both report, per
source, what was found (the ``start`` event's ``data_sources``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from worker.data.documents import ReadStats, iter_document_batches
from worker.data.encoding import Encoder, Separator
from worker.data.errors import DataError
from worker.data.files import CachedFile, PackOptions, cache_file
from worker.data.mixture import holdout, mix
from worker.data.sources import Source, check_weights
from worker.data.torch_data import BlockDataset, StreamingBlocks, first_blocks, stacked

logger = logging.getLogger("pretrain")


@dataclass
class DataPlan:
    """Everything the engine needs to build a run's datasets."""

    sources: list[Source]
    opts: PackOptions
    validation_files: list[Path] = field(default_factory=list)
    validation_flag: str = "--validation_file"
    validation_split: float = 0.0
    seed: int = 42
    cache_dir: Path = Path("./")
    overwrite_cache: bool = False
    streaming: bool = False
    max_train_samples: int | None = None
    max_eval_samples: int | None = None
    #: A context manager factory: rank 0 first, then the others (``args.main_process_first``).
    main_process_first: Callable[[], Any] | None = None
    #: The document separator (``encoding.document_separator``); None: from the tokenizer alone.
    separator: Separator | None = None


@dataclass
class RunData:
    train: Any
    eval: BlockDataset | None
    summary: list[dict[str, Any]]


def _no_block_error(plan: DataPlan, what: str) -> DataError:
    return DataError(
        f"--block_size {plan.opts.block_size}: {what} is shorter than one block; "
        "add text or lower --block_size"
    )


def build(plan: DataPlan, tokenizer: Any) -> RunData:
    check_weights([s.weight for s in plan.sources])
    encoder = Encoder(tokenizer, plan.separator)
    if plan.opts.packing == "eos":
        encoder.require_eos()
    data = _streaming(plan, encoder) if plan.streaming else _cached(plan, encoder)
    add_shares(data.summary, plan.opts.block_size)
    return data


def add_shares(summary: list[dict[str, Any]], block_size: int) -> None:
    """Per source, the share of the training tokens it is drawn at (blocks are equal in tokens:
    the drawn blocks' share; streaming: its weight's) and those tokens per epoch."""
    drawn = [row.get("train_blocks") for row in summary]
    if all(isinstance(n, int) for n in drawn) and sum(drawn) > 0:  # type: ignore[arg-type]
        total = sum(drawn)  # type: ignore[arg-type]
        for row, n in zip(summary, drawn, strict=True):
            row["share"] = n / total  # type: ignore[operator]
            row["train_tokens"] = n * block_size  # type: ignore[operator]
        return
    wsum = sum(row["weight"] for row in summary) or 1.0
    for row in summary:
        row["share"] = row["weight"] / wsum
        row["train_tokens"] = None


def _cached(plan: DataPlan, encoder: Encoder) -> RunData:
    root = plan.cache_dir.resolve()
    root.mkdir(parents=True, exist_ok=True)
    ctx = plan.main_process_first() if plan.main_process_first else None
    if ctx is not None:
        ctx.__enter__()
    try:
        per_source = [
            [
                cache_file(
                    p, encoder, s.options(plan.opts), root, s.flag_of(p), plan.overwrite_cache
                )
                for p in s.files
            ]
            for s in plan.sources
        ]
        valid = [
            cache_file(p, encoder, plan.opts, root, plan.validation_flag, plan.overwrite_cache)
            for p in plan.validation_files
        ]
    finally:
        if ctx is not None:
            ctx.__exit__(None, None, None)
    parts: list[np.ndarray] = []
    ranges: list[np.ndarray] = []
    for files in per_source:
        start = sum(len(p) for p in parts)
        parts.extend(f.blocks for f in files)
        ranges.append(np.arange(start, start + sum(len(f.blocks) for f in files)))
    summary = [_summary(s, files) for s, files in zip(plan.sources, per_source, strict=True)]
    total = sum(len(r) for r in ranges)
    if total == 0:
        raise _no_block_error(plan, "the training text")
    for s, r in zip(plan.sources, ranges, strict=True):
        if s.weight > 0 and len(r) == 0 and len(plan.sources) > 1:
            raise _no_block_error(plan, f"{s.flag}: source {s.name!r} (weight {s.weight:g})")
    pools: list[np.ndarray] = []
    held: list[np.ndarray] = []
    pct = plan.validation_split if not plan.validation_files else 0.0
    if pct > 0 and total < 2:
        raise DataError("--validation_split_percentage: only one block, nothing to hold out")
    for i, r in enumerate(ranges):
        tr, ev = holdout(len(r), pct, plan.seed, i)
        pools.append(r[tr])
        held.append(r[ev])
    active = [i for i, s in enumerate(plan.sources) if s.weight > 0]
    index, counts = mix(
        [pools[i] for i in active], [plan.sources[i].weight for i in active], plan.seed
    )
    drawn = dict(zip(active, counts, strict=True))
    for i, row in enumerate(summary):
        row["train_blocks"] = drawn.get(i, 0)
        row["eval_blocks"] = len(held[i])
    train = BlockDataset(parts, index).head(plan.max_train_samples)
    if len(train) == 0:
        raise _no_block_error(plan, "the training text left after the hold-out")
    eval_ds: BlockDataset | None = None
    if valid:
        eval_ds = BlockDataset([f.blocks for f in valid])
    elif pct > 0:
        eval_ds = BlockDataset(parts, np.concatenate(held))
    if eval_ds is not None:
        eval_ds = eval_ds.head(plan.max_eval_samples)
    return RunData(train, eval_ds, summary)


def _summary(source: Source, files: list[CachedFile]) -> dict[str, Any]:
    return {
        "name": source.name,
        "weight": source.weight,
        "role": source.role,
        "files": len(files),
        "bytes": sum(f.stats.bytes for f in files),
        "documents": sum(f.stats.documents for f in files),
        "tokens": sum(f.stats.tokens for f in files),
        "blocks": sum(f.stats.blocks for f in files),
    }


def _streaming(plan: DataPlan, encoder: Encoder) -> RunData:
    """Files are checked (readable, UTF-8, JSONL "text") up front, before any model loads;
    each source must yield a block. Eval: the first blocks of the stream, held out of it."""
    summary = []
    for s in plan.sources:
        read = ReadStats()
        for p in s.files:
            one = ReadStats()
            for _ in iter_document_batches(
                p, plan.opts.keep_linebreaks, s.flag_of(p), one,
                txt_documents=plan.opts.txt_documents, text_column=s.text_column,
            ):  # fmt: skip
                pass
            read.bytes += one.bytes
            read.documents += one.documents
        summary.append(
            {
                "name": s.name,
                "weight": s.weight,
                "role": s.role,
                "files": len(s.files),
                "bytes": read.bytes,
                "documents": read.documents,
                "tokens": None,
                "blocks": None,
            }
        )
    for p in plan.validation_files:
        for _ in iter_document_batches(
            p, plan.opts.keep_linebreaks, plan.validation_flag,
            txt_documents=plan.opts.txt_documents, text_column=plan.opts.text_column,
        ):  # fmt: skip
            pass
    for s in plan.sources:
        if s.weight > 0 and not first_blocks([s], encoder, plan.opts, [1]):
            what = "the training text" if len(plan.sources) == 1 else f"{s.flag}: source {s.name!r}"
            raise _no_block_error(plan, what)
    n_eval = plan.max_eval_samples or 64
    eval_ds = None
    skip = [0] * len(plan.sources)
    if plan.validation_files:
        valid = Source(
            "validation", plan.validation_files, 1.0, plan.validation_flag,
            text_column=plan.opts.text_column,
        )  # fmt: skip
        eval_ds = stacked(
            first_blocks([valid], encoder, plan.opts, [n_eval]), plan.opts.block_size, encoder.dtype
        )
    elif plan.validation_split > 0:
        k = len(plan.sources)
        shares = [n_eval // k + (1 if i < n_eval % k else 0) for i in range(k)]
        blocks = [
            first_blocks([s], encoder, plan.opts, [n])
            for s, n in zip(plan.sources, shares, strict=True)
        ]
        skip = [len(b) for b in blocks]
        eval_ds = stacked([b for bs in blocks for b in bs], plan.opts.block_size, encoder.dtype)
    for row, n in zip(summary, skip, strict=True):
        row["eval_blocks"] = n
        row["train_blocks"] = None
    if eval_ds is not None and len(eval_ds) == 0:
        eval_ds = None
    train = StreamingBlocks(
        plan.sources, encoder, plan.opts, plan.seed, skip, plan.max_train_samples
    )
    return RunData(train, eval_ds, summary)
