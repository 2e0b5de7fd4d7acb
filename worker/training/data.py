"""Training data: file discovery, reading, tokenize + group into blocks + cache, streaming, splits."""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import datasets

from worker.training.arguments import DataTrainingArguments, PretrainArguments
from worker.training.failures import InputError

logger = logging.getLogger("pretrain")

#: Bump when tokenization or grouping changes, so old caches are not reused.
CACHE_FORMAT = 3


def data_files(data_args: DataTrainingArguments) -> tuple[list[Path], list[Path]]:
    """(training files, validation files)."""
    train: list[Path] = []
    if data_args.dataset_dir:
        root = Path(data_args.dataset_dir)
        found = {
            Path(p)
            for ext in ("txt", "jsonl")
            for p in glob.glob(f"{root}/**/*.{ext}", recursive=True)
        }
        train = sorted(p for p in found if p.is_file())
        if not train:
            raise InputError(f"--dataset_dir {root} holds no .txt or .jsonl files")
    if data_args.train_file:
        train.append(Path(data_args.train_file))
    valid = [Path(data_args.validation_file)] if data_args.validation_file else []
    return train, valid


def flag_of(path: Path, data_args: DataTrainingArguments) -> str:
    if data_args.validation_file and path == Path(data_args.validation_file):
        return "--validation_file"
    if data_args.train_file and path == Path(data_args.train_file):
        return "--train_file"
    return "--dataset_dir"


def read_texts(path: Path, keep_linebreaks: bool, flag: str) -> tuple[list[str], str]:
    """A file's documents and the sha256 of its bytes. Raises InputError on bad UTF-8/JSON."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{flag}: {path} is not valid UTF-8 (byte {exc.start}: {raw[exc.start : exc.start + 4]!r}); "
            "convert it, e.g. iconv -f <encoding> -t utf-8"
        ) from exc
    digest = hashlib.sha256(raw).hexdigest()
    if path.suffix == ".jsonl":
        docs = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{flag}: {path} line {n} is not JSON: {exc.msg}") from exc
            if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
                raise InputError(f'{flag}: {path} line {n} has no string "text" field')
            docs.append(obj["text"])
        return docs, digest
    # .txt: one example per line, as the datasets "text" builder of the seed script did.
    lines = text.splitlines(keepends=keep_linebreaks)
    return [ln for ln in lines if ln.strip()], digest


def tokenizer_fingerprint(tokenizer: Any) -> str:
    h = hashlib.sha256(type(tokenizer).__name__.encode())
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        h.update(backend.to_str().encode())
    else:
        h.update(json.dumps(sorted(tokenizer.get_vocab().items())).encode())
    h.update(repr(tokenizer("a b")["input_ids"]).encode())  # special-token handling
    return h.hexdigest()


def _num_proc(requested: int | None, n_rows: int) -> int | None:
    """Worker processes for ``Dataset.map``: more than the CPUs, or than the work, only costs."""
    if not requested or requested <= 1:
        return None
    n = min(requested, os.cpu_count() or 1, max(1, n_rows // 2000))
    return n if n > 1 else None


def group_blocks(ids: list[list[int]], block_size: int) -> list[list[int]]:
    flat = [t for seq in ids for t in seq]
    total = (len(flat) // block_size) * block_size
    return [flat[i : i + block_size] for i in range(0, total, block_size)]


def tokenize_file(
    path: Path,
    tokenizer: Any,
    block_size: int,
    data_args: DataTrainingArguments,
    cache_root: Path,
    fingerprint: str,
) -> datasets.Dataset:
    """Blocks of one file, from the cache when the file, tokenizer and block size are unchanged."""
    docs, digest = read_texts(path, data_args.keep_linebreaks, flag_of(path, data_args))
    key = hashlib.sha256(
        f"{CACHE_FORMAT}|{digest}|{fingerprint}|{block_size}|{data_args.keep_linebreaks}".encode()
    ).hexdigest()[:20]
    target = cache_root / f"{path.stem}-{key}"
    if target.is_dir() and not data_args.overwrite_cache:
        with contextlib.suppress(Exception):
            ds = datasets.load_from_disk(str(target))
            logger.info("data cache hit: %s -> %s (%d blocks)", path.name, target.name, len(ds))
            return ds
    logger.info("tokenizing %s (%d documents) into %s", path.name, len(docs), target.name)
    raw = datasets.Dataset.from_dict({"text": docs})

    def tok(batch: dict[str, list[str]]) -> dict[str, Any]:
        return {"input_ids": tokenizer(batch["text"])["input_ids"]}

    def group(batch: dict[str, list[Any]]) -> dict[str, Any]:
        blocks = group_blocks(batch["input_ids"], block_size)
        return {"input_ids": blocks, "labels": [list(b) for b in blocks]}

    num_proc = _num_proc(data_args.preprocessing_num_workers, len(docs))
    ids = raw.map(tok, batched=True, remove_columns=["text"], num_proc=num_proc, desc="tokenize")
    # Grouped 1000 documents at a time, as the seed script did: memory stays bounded on huge
    # files, and each batch drops only its tail (< block_size tokens).
    blocks = ids.map(group, batched=True, batch_size=1000, num_proc=num_proc, desc="group")
    if len(blocks) == 0:
        # datasets cannot reload an empty saved dataset; such a file is cheap to redo.
        logger.warning("%s is shorter than one block of %d tokens; skipped", path.name, block_size)
        return blocks
    tmp = cache_root / f".{target.name}.tmp-{os.getpid()}"
    blocks.save_to_disk(str(tmp))
    if target.exists():
        import shutil

        shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)
    return datasets.load_from_disk(str(target))


def build_datasets(
    data_args: DataTrainingArguments,
    args: PretrainArguments,
    tokenizer: Any,
    block_size: int,
) -> tuple[Any, Any]:
    """(train, eval) datasets of ``block_size`` blocks; eval may be None."""
    train_files, valid_files = data_files(data_args)
    if data_args.streaming:
        return _streaming_datasets(train_files, valid_files, data_args, args, tokenizer, block_size)
    cache_root = Path(data_args.data_cache_dir or "./").resolve()
    cache_root.mkdir(parents=True, exist_ok=True)
    fingerprint = tokenizer_fingerprint(tokenizer)
    # Rank 0 tokenizes and writes the cache; the other ranks then read it.
    with args.main_process_first(desc="tokenize and cache"):
        parts = [
            tokenize_file(p, tokenizer, block_size, data_args, cache_root, fingerprint)
            for p in train_files
        ]
        valid_parts = [
            tokenize_file(p, tokenizer, block_size, data_args, cache_root, fingerprint)
            for p in valid_files
        ]
    train = datasets.concatenate_datasets([p for p in parts if len(p)]) if parts else None
    if train is None or len(train) == 0:
        raise InputError(
            f"--block_size {block_size}: the training text is shorter than one block; "
            "add text or lower --block_size"
        )
    eval_ds = datasets.concatenate_datasets(valid_parts) if valid_parts else None
    pct = data_args.validation_split_percentage or 0
    if eval_ds is None and pct > 0:
        if len(train) < 2:
            raise InputError("--validation_split_percentage: only one block, nothing to hold out")
        split = train.train_test_split(test_size=pct, seed=args.seed, shuffle=True)
        train, eval_ds = split["train"], split["test"]
    if args.debug_mode:
        train = train.select(range(min(len(train), 64)))
        if eval_ds is not None:
            eval_ds = eval_ds.select(range(min(len(eval_ds), 16)))
    if data_args.max_train_samples is not None:
        train = train.select(range(min(len(train), data_args.max_train_samples)))
    if eval_ds is not None and data_args.max_eval_samples is not None:
        eval_ds = eval_ds.select(range(min(len(eval_ds), data_args.max_eval_samples)))
    logger.info("train blocks: %d, eval blocks: %s", len(train), len(eval_ds) if eval_ds else 0)
    if args.debug_mode and len(train):
        logger.debug("first training block: %r", tokenizer.decode(train[0]["input_ids"]))
    return train, eval_ds


def _streaming_datasets(
    train_files: list[Path],
    valid_files: list[Path],
    data_args: DataTrainingArguments,
    args: PretrainArguments,
    tokenizer: Any,
    block_size: int,
) -> tuple[Any, Any]:
    """An iterable train set read lazily file by file; eval is materialised (it is small)."""
    for p in [*train_files, *valid_files]:
        read_texts(p, data_args.keep_linebreaks, flag_of(p, data_args))  # validate up front

    def blocks(files: list[Path]) -> Iterator[dict[str, list[int]]]:
        buf: list[int] = []
        for p in files:
            docs, _ = read_texts(p, data_args.keep_linebreaks, flag_of(p, data_args))
            for i in range(0, len(docs), 256):
                for seq in tokenizer(docs[i : i + 256])["input_ids"]:
                    buf.extend(seq)
                    while len(buf) >= block_size:
                        block, buf = buf[:block_size], buf[block_size:]
                        yield {"input_ids": block, "labels": list(block)}

    n_eval = data_args.max_eval_samples or 64
    eval_ds = None
    skip = 0
    if valid_files:
        eval_list = []
        for b in blocks(valid_files):
            eval_list.append(b)
            if len(eval_list) >= n_eval:
                break
        eval_ds = datasets.Dataset.from_list(eval_list) if eval_list else None
    elif (data_args.validation_split_percentage or 0) > 0:
        eval_list = []
        for b in blocks(train_files):
            eval_list.append(b)
            if len(eval_list) >= n_eval:
                break
        eval_ds = datasets.Dataset.from_list(eval_list) if eval_list else None
        skip = len(eval_list)  # those blocks are held out of the stream

    def gen() -> Iterator[dict[str, list[int]]]:
        for i, b in enumerate(blocks(train_files)):
            if i >= skip:
                yield b

    train = datasets.IterableDataset.from_generator(gen)
    if data_args.max_train_samples is not None:
        train = train.take(data_args.max_train_samples)
    return train.with_format("torch"), eval_ds
