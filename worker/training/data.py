"""Training data for ``pretrain.py``: the run's flags → the data engine (``worker/data``).

The engine reads, tokenizes, packs and caches; this module maps the seed's data flags plus
``--packing`` and ``--data_sources`` onto it, turns its ``DataError`` into ``InputError`` (exit 2)
and applies ``--debug_mode``. The names the seed script exported stay importable from here.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from worker.data.documents import find_files
from worker.data.documents import read_texts as _read_texts
from worker.data.encoding import (
    Separator,
    config_eos_ids,
    document_separator,
    tokenizer_fingerprint,
)
from worker.data.errors import DataError
from worker.data.eval_sets import (
    Budget,
    EvalWindows,
    build_windows,
    packed_windows,
    parse_eval_sets,
    spec_files,
)
from worker.data.files import CACHE_FORMAT, PackOptions
from worker.data.mixture import replay_weights
from worker.data.packing import group_blocks
from worker.data.sources import Source, load_sources, parse_data_sources
from worker.data.training import DataPlan, RunData, build
from worker.training.arguments import DataTrainingArguments, PretrainArguments
from worker.training.failures import InputError

__all__ = [
    "CACHE_FORMAT",
    "build_datasets",
    "data_files",
    "data_sources",
    "flag_of",
    "group_blocks",
    "read_texts",
    "tokenizer_fingerprint",
]

logger = logging.getLogger("pretrain")


def data_sources(data_args: DataTrainingArguments) -> list[Source]:
    """``--dataset_dir``/``--train_file`` as one source of weight 1, then ``--data_sources``."""
    try:
        sources: list[Source] = []
        if data_args.dataset_dir or data_args.train_file:
            files: list[Path] = []
            flags: dict[Path, str] = {}
            if data_args.dataset_dir:
                files = find_files(Path(data_args.dataset_dir), "--dataset_dir")
            if data_args.train_file:
                files.append(Path(data_args.train_file))
                flags[Path(data_args.train_file)] = "--train_file"
            name = Path(data_args.dataset_dir or data_args.train_file or "data").name
            sources.append(
                Source(
                    name or "data", files, 1.0, "--dataset_dir", flags,
                    text_column=data_args.text_column or "text",
                )
            )  # fmt: skip
        if data_args.data_sources:
            extra = load_sources(parse_data_sources(data_args.data_sources))
            taken = {s.name for s in sources}
            for s in extra:
                if s.name in taken:
                    s.name = f"{s.name}-{len(taken)}"
                taken.add(s.name)
            sources.extend(extra)
    except DataError as exc:
        raise InputError(str(exc)) from exc
    return sources


def data_files(data_args: DataTrainingArguments) -> tuple[list[Path], list[Path]]:
    """(training files of every source, validation files)."""
    train = [p for s in data_sources(data_args) for p in s.files]
    valid = [Path(data_args.validation_file)] if data_args.validation_file else []
    return train, valid


def flag_of(path: Path, data_args: DataTrainingArguments) -> str:
    if data_args.validation_file and path == Path(data_args.validation_file):
        return "--validation_file"
    if data_args.train_file and path == Path(data_args.train_file):
        return "--train_file"
    return "--dataset_dir"


def read_texts(path: Path, keep_linebreaks: bool, flag: str) -> tuple[list[str], str]:
    """A file's documents and the sha256 of its bytes. Raises InputError on bad input."""
    try:
        return _read_texts(path, keep_linebreaks, flag)
    except DataError as exc:
        raise InputError(str(exc)) from exc


def build_datasets(
    data_args: DataTrainingArguments,
    args: PretrainArguments,
    tokenizer: Any,
    block_size: int,
) -> tuple[Any, Any]:
    """(train, eval) datasets of ``block_size`` blocks; eval may be None."""
    data, _ = build_run_data(data_args, args, tokenizer, block_size)
    return data.train, data.eval


def build_run_data(
    data_args: DataTrainingArguments,
    args: PretrainArguments,
    tokenizer: Any,
    block_size: int,
    separator: Separator | None = None,
) -> tuple[RunData, list[dict[str, Any]]]:
    """The datasets and, per source, files/documents/tokens/blocks (for the ``start`` event)."""
    workers = data_args.preprocessing_num_workers
    if workers and workers > 0 and "RAYON_NUM_THREADS" not in os.environ:
        # The tokenizer's thread pool (read when it first encodes in parallel).
        os.environ["RAYON_NUM_THREADS"] = str(min(workers, os.cpu_count() or 1))
    sources = exclude_eval_files(data_sources(data_args), eval_files(data_args))
    if data_args.replay_share is not None:
        # The share becomes weights: the mixture draws blocks (equal in tokens) by weight.
        try:
            weights = replay_weights(
                [s.weight for s in sources],
                [s.role == "replay" for s in sources],
                data_args.replay_share,
            )
        except ValueError as exc:
            raise InputError(f"--replay_share: {exc}") from exc
        for s, w in zip(sources, weights, strict=True):
            s.weight = w
    plan = DataPlan(
        sources=sources,
        opts=PackOptions(
            block_size,
            data_args.packing,
            data_args.keep_linebreaks,
            data_args.txt_documents,
            text_column=data_args.text_column or "text",
        ),
        # A validation file is scored as whole documents (build_eval_sets), not packed blocks;
        # a split still holds packed blocks out of the training text.
        validation_files=[],
        validation_split=0.0
        if data_args.validation_file
        else (data_args.validation_split_percentage or 0.0),
        seed=args.seed,
        cache_dir=Path(data_args.data_cache_dir or "./"),
        overwrite_cache=data_args.overwrite_cache,
        streaming=data_args.streaming,
        max_train_samples=data_args.max_train_samples,
        max_eval_samples=data_args.max_eval_samples,
        # local=False: the cache dir is shared by every node (the panel's data dir), so only
        # global rank 0 builds it; per-node rank 0s racing on it lost files on two nodes.
        main_process_first=lambda: args.main_process_first(local=False, desc="tokenize and cache"),
        separator=separator,
    )
    if args.debug_mode:
        plan.max_train_samples = min(plan.max_train_samples or 64, 64)
        plan.max_eval_samples = min(plan.max_eval_samples or 16, 16)
    try:
        data = build(plan, tokenizer)
    except DataError as exc:
        raise InputError(str(exc)) from exc
    if not data_args.streaming:
        logger.info(
            "train blocks: %d, eval blocks: %s",
            len(data.train),
            len(data.eval) if data.eval is not None else 0,
        )
        if args.debug_mode and len(data.train):
            logger.debug("first training block: %r", tokenizer.decode(data.train[0]["input_ids"]))
    for row in data.summary:
        logger.info(
            "source %s (weight %g): %d files, %d documents, %s tokens, %s blocks; "
            "%s train blocks drawn, %s held out",
            row["name"], row["weight"], row["files"], row["documents"], row["tokens"],
            row["blocks"], row["train_blocks"], row["eval_blocks"],
        )  # fmt: skip
    return data, data.summary


def choose_separator(tokenizer: Any, config: Any) -> Separator:
    """The document separator for packing and scoring, from the tokenizer and the model config;
    logged, and reported in the ``start`` event."""
    sep = document_separator(tokenizer, config_eos_ids(config))
    logger.info("document separator: %s (id %s): %s", sep.token, sep.id, sep.reason)
    return sep


def eval_files(data_args: DataTrainingArguments) -> dict[Path, str]:
    """Every file of a held-out set (resolved) → the set's name."""
    out: dict[Path, str] = {}
    if data_args.validation_file:
        out[Path(data_args.validation_file).resolve()] = VALIDATION
    try:
        for spec in parse_eval_sets(data_args.eval_sets) if data_args.eval_sets else []:
            for p in spec_files(spec):
                out.setdefault(p.resolve(), spec.name)
    except DataError as exc:
        raise InputError(str(exc)) from exc
    return out


def exclude_eval_files(sources: list[Source], held_out: dict[Path, str]) -> list[Source]:
    """Sources without the files that are also eval files: no held-out text is trained on."""
    for s in sources:
        keep = []
        for p in s.files:
            name = held_out.get(p.resolve())
            if name is None:
                keep.append(p)
            else:
                logger.info("%s is eval set %r: left out of training source %r", p, name, s.name)
        if s.files and not keep:
            raise InputError(
                f"{s.flag}: every file of source {s.name!r} is also an eval file; "
                "give training text that is not held out"
            )
        s.files = keep
    return sources


#: The set made of ``--validation_file`` / ``--validation_split_percentage``.
VALIDATION = "validation"
#: Held-out blocks of a validation split scored without ``--max_eval_samples``.
SPLIT_BLOCKS = 64


def build_eval_sets(
    data_args: DataTrainingArguments,
    tokenizer: Any,
    block_size: int,
    held_out_blocks: Any,
    separator: int | None = None,
) -> list[EvalWindows]:
    """The run's held-out sets, ``validation`` first, each over a fixed prefix of its documents
    (its own ``max_documents``/``max_characters``, else ``--eval_max_characters``)."""
    default = Budget(max_characters=data_args.eval_max_characters)
    try:
        specs = parse_eval_sets(data_args.eval_sets) if data_args.eval_sets else []
        has_split = held_out_blocks is not None and len(held_out_blocks) > 0
        out: list[EvalWindows] = []
        if data_args.validation_file:
            path = Path(data_args.validation_file)
            budget = (
                Budget(max_documents=data_args.max_eval_samples)
                if data_args.max_eval_samples
                else default
            )
            w = build_windows(
                VALIDATION, [path], tokenizer, block_size,
                budget, data_args.keep_linebreaks, "--validation_file", separator,
                data_args.txt_documents,
                text_column=data_args.text_column or "text",
            )  # fmt: skip
            w.path = str(path)
            out.append(w)
        elif has_split:
            # Packed blocks of the training text: tokenizer-made, so not comparable (exact False).
            n = data_args.max_eval_samples or SPLIT_BLOCKS
            blocks = [held_out_blocks.block(i) for i in range(min(n, len(held_out_blocks)))]
            w = packed_windows(VALIDATION, blocks, tokenizer)
            w.truncated = len(held_out_blocks) > len(blocks)
            out.append(w)
        for spec in specs:
            budget = spec.budget
            if budget.max_documents is None and budget.max_characters is None:
                budget = default
            w = build_windows(
                spec.name, spec_files(spec), tokenizer, block_size,
                budget, data_args.keep_linebreaks, spec.flag, separator,
                data_args.txt_documents,
                text_column=spec.text_column,
            )  # fmt: skip
            w.role, w.path = spec.role, str(spec.path)
            out.append(w)
    except DataError as exc:
        raise InputError(str(exc)) from exc
    for w in out:
        if len(w.input_ids) == 0:
            raise InputError(f"eval set {w.name!r}: no text to evaluate")
        logger.info(
            "eval set %s: %d documents, %d characters, %d bytes, %d tokens in %d windows%s",
            w.name, w.documents, w.characters, w.bytes, w.tokens, len(w.input_ids),
            " (a prefix: the budget cut the set)" if w.truncated else "",
        )  # fmt: skip
    return out
