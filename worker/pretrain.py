"""Continual pretraining of a causal LM, LoRA or full weights, under torchrun + DeepSpeed.

The seed's ``run_clm_pt_with_peft.py`` rebuilt for transformers 5.x (spec:
``shared/seed/continual-pretraining-overview.md``)::

    torchrun --nnodes 1 --nproc_per_node 1 worker/pretrain.py --deepspeed ds_zero2_no_offload.json \\
        --model_name_or_path DIR --tokenizer_name_or_path DIR --dataset_dir DIR ... --do_train
    python worker/pretrain.py ...            # one process, no launcher needed

Every seed argument plus all of HF ``TrainingArguments``; also ``--finetuning_type lora|full``,
``--divergence_patience K`` and ``--resume_from_checkpoint last|checkpoint-N|PATH``.
Rank 0 appends one JSON event per line to ``<output_dir>/events.jsonl``
(docs/architecture.md, "events.jsonl").

Exit codes (the ``end`` event's ``status`` is the primary signal):

==== =========================================================================
0    succeeded
1    failed: an unexpected error
2    bad arguments or data (the message names the flag)
3    diverged: NaN/inf loss on ``--divergence_patience`` consecutive steps
4    out of memory (CUDA or host)
143  cancelled: SIGTERM (128 + 15)
==== =========================================================================
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import logging
import math
import os
import re
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Runnable as a script (``python worker/pretrain.py``): make the repository importable.
_ROOT = Path(__file__).resolve().parents[1]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))
# On a CPU box DeepSpeed picks its cpu accelerator anyway; saying so silences a warning.
if not os.environ.get("DS_ACCELERATOR"):
    with contextlib.suppress(Exception):
        import torch as _t

        if not _t.cuda.is_available():
            os.environ["DS_ACCELERATOR"] = "cpu"

import datasets  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from transformers import (  # noqa: E402
    AutoConfig,
    AutoModelForCausalLM,
    AutoTokenizer,
    HfArgumentParser,
    Trainer,
    TrainerCallback,
    TrainingArguments,
    default_data_collator,
)

from worker.events import EventWriter  # noqa: E402

logger = logging.getLogger("pretrain")

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_DIVERGED, EXIT_OOM, EXIT_CANCELLED = 0, 1, 2, 3, 4, 143
#: Bump when tokenization or grouping changes, so old caches are not reused.
CACHE_FORMAT = 3
RUN_INFO = "cpt_run.json"  # written into each checkpoint once it is complete
OOM_HINT = (
    "try a smaller --per_device_train_batch_size (with more --gradient_accumulation_steps), "
    "--gradient_checkpointing, or DeepSpeed ZeRO-3 (--deepspeed worker/ds_configs/ds_zero3.json)"
)


# =========================================================================== arguments


@dataclass
class ModelArguments:
    """The seed's model arguments."""

    model_name_or_path: str | None = field(
        default=None, metadata={"help": "Model checkpoint for weights initialization."}
    )
    tokenizer_name_or_path: str | None = field(
        default=None, metadata={"help": "Tokenizer for weights initialization."}
    )
    model_type: str | None = field(
        default=None,
        metadata={
            "help": "SentencePiece type of the tokenizer trained when training from scratch.",
            "choices": ["bpe", "unigram", "char", "word"],
        },
    )
    config_overrides: str | None = field(
        default=None,
        metadata={"help": "From scratch: e.g. n_embd=10,resid_pdrop=0.2 (comma-separated)."},
    )
    config_name: str | None = field(default=None, metadata={"help": "Config name or path."})
    tokenizer_name: str | None = field(default=None, metadata={"help": "Tokenizer name or path."})
    cache_dir: str | None = field(default=None, metadata={"help": "Hub download cache."})
    use_fast_tokenizer: bool = field(default=True, metadata={"help": "Use a fast tokenizer."})
    model_revision: str = field(default="main", metadata={"help": "Model version to use."})
    use_auth_token: bool = field(default=False, metadata={"help": "Use the hub login token."})
    torch_dtype: str | None = field(
        default=None,
        metadata={
            "help": "dtype the model is loaded in.",
            "choices": ["auto", "bfloat16", "float16", "float32"],
        },
    )


@dataclass
class DataTrainingArguments:
    """The seed's data arguments."""

    dataset_dir: str | None = field(
        default=None, metadata={"help": "Directory of .txt and .jsonl ({'text': ...}) files."}
    )
    dataset_config_name: str | None = field(default=None, metadata={"help": "Unused; kept."})
    train_file: str | None = field(default=None, metadata={"help": "A training text file."})
    validation_file: str | None = field(default=None, metadata={"help": "An evaluation file."})
    max_train_samples: int | None = field(default=None, metadata={"help": "Keep N train blocks."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Keep N eval blocks."})
    streaming: bool = field(default=False, metadata={"help": "Stream the data (needs max_steps)."})
    block_size: int | None = field(default=None, metadata={"help": "Tokens per sequence."})
    overwrite_cache: bool = field(default=False, metadata={"help": "Rebuild the data cache."})
    validation_split_percentage: float | None = field(
        default=0.05, metadata={"help": "Fraction of blocks held out (0.05 = 5%)."}
    )
    preprocessing_num_workers: int | None = field(
        default=None, metadata={"help": "Processes for tokenization (capped at the CPU count)."}
    )
    keep_linebreaks: bool = field(default=True, metadata={"help": "Keep line breaks of .txt."})
    data_cache_dir: str | None = field(
        default="./", metadata={"help": "Where tokenized blocks are cached."}
    )


@dataclass
class PretrainArguments(TrainingArguments):
    """``TrainingArguments`` plus the seed's custom arguments and flags transformers 5 dropped."""

    trainable: str = field(default="q_proj,v_proj", metadata={"help": "LoRA target modules."})
    lora_rank: int = field(default=8, metadata={"help": "LoRA rank."})
    lora_dropout: float = field(default=0.05, metadata={"help": "LoRA dropout."})
    lora_alpha: float = field(default=32.0, metadata={"help": "LoRA alpha."})
    modules_to_save: str | None = field(
        default="embed_tokens,lm_head", metadata={"help": "Modules trained in full with LoRA."}
    )
    debug_mode: bool = field(default=False, metadata={"help": "Tiny subset, verbose output."})
    peft_path: str | None = field(default=None, metadata={"help": "Continue this adapter."})
    finetuning_type: str = field(
        default="lora", metadata={"help": "lora or full.", "choices": ["lora", "full"]}
    )
    divergence_patience: int = field(
        default=3, metadata={"help": "Stop after K consecutive steps with NaN/inf loss."}
    )
    # Removed from TrainingArguments in transformers 5; the seed's command still passes them.
    overwrite_output_dir: bool = field(
        default=False, metadata={"help": "Train even if output_dir holds checkpoints."}
    )
    warmup_ratio: float | None = field(
        default=None, metadata={"help": "Warm-up as a fraction of the steps (→ warmup_steps)."}
    )


class InputError(Exception):
    """Bad arguments or data: exit 2 with a message that names the flag."""


class DivergedError(Exception):
    """NaN/inf loss on too many consecutive steps."""


def parse_args(
    argv: list[str],
) -> tuple[ModelArguments, DataTrainingArguments, PretrainArguments]:
    dataclass_types: Any = (ModelArguments, DataTrainingArguments, PretrainArguments)
    parser = HfArgumentParser(dataclass_types)
    if not any(a.startswith("--disable_tqdm") for a in argv) and not sys.stdout.isatty():
        # Progress bars redraw with \r: noise in a log file that the panel ships line by line.
        argv = [*argv, "--disable_tqdm", "True"]
    if len(argv) == 1 and argv[0].endswith(".json"):
        return parser.parse_json_file(argv[0])  # type: ignore[return-value]
    model_args, data_args, training_args = parser.parse_args_into_dataclasses(args=argv)
    return model_args, data_args, training_args


def _argv_value(argv: list[str], flag: str) -> str | None:
    """A flag's value read straight from argv (used before parsing succeeded)."""
    for i, item in enumerate(argv):
        if item == flag and i + 1 < len(argv):
            return argv[i + 1]
        if item.startswith(flag + "="):
            return item.split("=", 1)[1]
    return None


def _split(names: str | None) -> list[str]:
    return [n.strip() for n in (names or "").split(",") if n.strip()]


def check_arguments(
    model_args: ModelArguments, data_args: DataTrainingArguments, args: PretrainArguments
) -> None:
    """Cross-flag checks that need no model or data."""
    if args.warmup_ratio is not None:
        if not 0 <= args.warmup_ratio < 1:
            raise InputError(f"--warmup_ratio must be in [0, 1), got {args.warmup_ratio}")
        if not args.warmup_steps:
            args.warmup_steps = args.warmup_ratio  # transformers 5 reads a float < 1 as a ratio
    if args.fp16 and (args.use_cpu or not torch.cuda.is_available()):
        raise InputError(
            "--fp16 needs a CUDA GPU and this process runs on the CPU; "
            "use --bf16 or no precision flag (fp32) instead"
        )
    if data_args.streaming and args.max_steps <= 0:
        raise InputError("--streaming needs --max_steps > 0 (a stream has no known length)")
    if not (data_args.dataset_dir or data_args.train_file):
        raise InputError("--dataset_dir (or --train_file) is required")
    if data_args.dataset_dir and not Path(data_args.dataset_dir).is_dir():
        raise InputError(f"--dataset_dir {data_args.dataset_dir} is not a directory")
    for flag in ("train_file", "validation_file"):
        value = getattr(data_args, flag)
        if value and not Path(value).is_file():
            raise InputError(f"--{flag} {value} does not exist")
    pct = data_args.validation_split_percentage or 0
    if not 0 <= pct < 1:
        raise InputError(f"--validation_split_percentage is a fraction in [0, 1), got {pct}")
    if args.divergence_patience < 1:
        raise InputError("--divergence_patience must be at least 1")
    if args.finetuning_type == "lora" and not _split(args.trainable):
        raise InputError("--trainable lists no module for LoRA")
    if not model_args.model_name_or_path and not (
        model_args.tokenizer_name_or_path or model_args.tokenizer_name or model_args.model_type
    ):
        raise InputError(
            "--model_name_or_path is empty (training from scratch): give a tokenizer with "
            "--tokenizer_name_or_path or choose --model_type bpe|unigram|char|word to train one"
        )


# =========================================================================== data


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


def _flag_of(path: Path, data_args: DataTrainingArguments) -> str:
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
    docs, digest = read_texts(path, data_args.keep_linebreaks, _flag_of(path, data_args))
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
        read_texts(p, data_args.keep_linebreaks, _flag_of(p, data_args))  # validate up front

    def blocks(files: list[Path]) -> Iterator[dict[str, list[int]]]:
        buf: list[int] = []
        for p in files:
            docs, _ = read_texts(p, data_args.keep_linebreaks, _flag_of(p, data_args))
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


# =========================================================================== model


def train_sentencepiece(
    data_args: DataTrainingArguments, model_type: str, out_dir: Path, vocab_size: int
) -> Path:
    """Train a SentencePiece tokenizer on the training files; returns its HF directory."""
    import sentencepiece as spm

    out_dir.mkdir(parents=True, exist_ok=True)
    text_path = out_dir / "sp_train.txt"
    train_files, _ = data_files(data_args)
    chars: set[str] = set()
    with text_path.open("w", encoding="utf-8") as fh:
        for p in train_files:
            docs, _ = read_texts(p, False, _flag_of(p, data_args))
            for doc in docs:
                line = doc.replace("\r", " ").strip()
                chars.update(line)
                fh.write(line + "\n")
    if model_type == "char" and vocab_size < len(chars) + 4:
        # A character model's vocabulary is the character set; fewer slots would map text to <unk>.
        logger.warning("char tokenizer: vocab_size %d raised to %d", vocab_size, len(chars) + 4)
        vocab_size = len(chars) + 4
    options: dict[str, Any] = {
        "input": str(text_path),
        "model_prefix": str(out_dir / "tokenizer"),
        "model_type": model_type,
        "vocab_size": vocab_size,
        "hard_vocab_limit": False,  # a small corpus may not support the asked size
        "character_coverage": 0.9995 if model_type in ("bpe", "unigram") else 1.0,
        "byte_fallback": model_type in ("bpe", "unigram"),
        "unk_id": 0,
        "bos_id": 1,
        "eos_id": 2,
        "pad_id": 3,
        "minloglevel": 2,
    }
    try:
        spm.SentencePieceTrainer.train(**options)
    except RuntimeError as exc:
        # Every character (plus byte pieces) needs a slot: "... required_chars. 1000 vs 2150."
        found = re.search(r"required_chars\. \d+ vs (\d+)", str(exc))
        if not found:
            raise
        options["vocab_size"] = int(found.group(1)) + 64
        logger.warning(
            "vocab_size %d is below the %s characters of the data; using %d",
            vocab_size,
            found.group(1),
            options["vocab_size"],
        )
        spm.SentencePieceTrainer.train(**options)
    text_path.unlink()
    return out_dir


def load_sentencepiece(sp_dir: Path, model_type: str) -> Any:
    """An HF tokenizer over a trained ``tokenizer.model``."""
    if model_type in ("word", "char"):
        # The fast (tokenizers) conversion mishandles these models (empty encodings for word,
        # a dropped first character on decode for char); this class calls SentencePiece itself.
        from transformers import BertGenerationTokenizer

        return BertGenerationTokenizer(
            vocab_file=str(sp_dir / "tokenizer.model"),
            bos_token="<s>",
            eos_token="</s>",
            unk_token="<unk>",
            pad_token="<pad>",
            sep_token="</s>",
        )
    from transformers import LlamaTokenizer

    return LlamaTokenizer.from_pretrained(str(sp_dir), pad_token="<pad>")


def load_tokenizer(
    model_args: ModelArguments, data_args: DataTrainingArguments, args: PretrainArguments
) -> Any:
    kwargs: dict[str, Any] = {
        "cache_dir": model_args.cache_dir,
        "revision": model_args.model_revision,
        "token": True if model_args.use_auth_token else None,
        "use_fast": model_args.use_fast_tokenizer,
    }
    source = (
        model_args.tokenizer_name_or_path
        or model_args.tokenizer_name
        or model_args.model_name_or_path
    )
    if source is None:
        overrides = _parse_overrides(model_args.config_overrides)
        vocab = int(overrides.get("vocab_size", 8000))
        sp_dir = Path(str(args.output_dir)) / "sentencepiece"
        with args.main_process_first(desc="train sentencepiece"):
            if not (sp_dir / "tokenizer.model").exists() and args.process_index == 0:
                logger.info(
                    "training a %s SentencePiece tokenizer (vocab %d)", model_args.model_type, vocab
                )
                train_sentencepiece(data_args, model_args.model_type or "bpe", sp_dir, vocab)
        tokenizer = load_sentencepiece(sp_dir, model_args.model_type or "bpe")
    else:
        try:
            tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
        except (OSError, ValueError) as exc:
            flag = (
                "--tokenizer_name_or_path"
                if model_args.tokenizer_name_or_path
                else "--model_name_or_path"
            )
            raise InputError(f"{flag} {source}: cannot load a tokenizer: {exc}") from exc
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    return tokenizer


def _parse_overrides(text: str | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in _split(text):
        if "=" not in item:
            raise InputError(f"--config_overrides: {item!r} is not key=value")
        k, v = item.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def load_config(model_args: ModelArguments) -> Any:
    kwargs = {"cache_dir": model_args.cache_dir, "revision": model_args.model_revision}
    try:
        if model_args.config_name:
            return AutoConfig.from_pretrained(model_args.config_name, **kwargs)
        if model_args.model_name_or_path:
            return AutoConfig.from_pretrained(model_args.model_name_or_path, **kwargs)
    except (OSError, ValueError) as exc:
        flag = "--config_name" if model_args.config_name else "--model_name_or_path"
        raise InputError(f"{flag}: cannot load a model config: {exc}") from exc
    from transformers import LlamaConfig

    return LlamaConfig()


def module_names(model: Any) -> list[str]:
    """Short names of the model's leaf modules (what --trainable/--modules_to_save match)."""
    names = set()
    for name, module in model.named_modules():
        if name and not list(module.children()):
            names.add(name.split(".")[-1])
    return sorted(names)


def check_module_names(model: Any, flag: str, wanted: list[str]) -> None:
    full = [n for n, _ in model.named_modules() if n]
    missing = [w for w in wanted if not any(n == w or n.endswith("." + w) for n in full)]
    if missing:
        raise InputError(
            f"{flag}: the model has no module named {', '.join(missing)}; "
            f"its module names are: {', '.join(module_names(model))}"
        )


def max_positions(config: Any) -> int | None:
    for attr in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        value = getattr(config, attr, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def _dtype(name: str | None) -> Any:
    if name in (None, "auto"):
        return name
    return getattr(torch, name)


def build_model(
    model_args: ModelArguments, args: PretrainArguments, tokenizer: Any, config: Any
) -> tuple[Any, int]:
    """The model to train (PEFT-wrapped for LoRA) and the vocabulary size it started with."""
    dtype = _dtype(model_args.torch_dtype)
    if model_args.model_name_or_path:
        model: Any = AutoModelForCausalLM.from_pretrained(
            model_args.model_name_or_path,
            config=config,
            dtype=dtype,
            cache_dir=model_args.cache_dir,
            revision=model_args.model_revision,
            token=True if model_args.use_auth_token else None,
        )
    else:
        config.vocab_size = len(tokenizer)
        for attr in ("bos_token_id", "eos_token_id", "pad_token_id"):
            value = getattr(tokenizer, attr, None)
            if value is not None:
                setattr(config, attr, value)
        model = AutoModelForCausalLM.from_config(
            config, dtype=dtype if isinstance(dtype, torch.dtype) else None
        )
        n = sum(p.numel() for p in model.parameters())
        logger.info(
            "built a new %s model from its config: %.2fM parameters", config.model_type, n / 1e6
        )

    embeddings: Any = model.get_input_embeddings()
    old_vocab = int(embeddings.weight.shape[0])
    new_vocab = len(tokenizer)
    own_tokenizer = not (model_args.tokenizer_name_or_path or model_args.tokenizer_name) or (
        model_args.tokenizer_name_or_path == model_args.model_name_or_path
    )
    if new_vocab < old_vocab:
        if not own_tokenizer:
            raise InputError(
                f"--tokenizer_name_or_path has {new_vocab} tokens but the model's vocabulary has "
                f"{old_vocab}: it is not this model's tokenizer or an extension of it"
            )
        # The model's own tokenizer with padded embeddings (e.g. rounded to 64) is normal.
        logger.warning("embeddings have %d rows for %d tokens (padded)", old_vocab, new_vocab)
    elif new_vocab > old_vocab:
        # Before PEFT wraps the model, so embed_tokens/lm_head copies get the new size.
        model.resize_token_embeddings(new_vocab)
        message = f"vocabulary extended from {old_vocab} to {new_vocab} tokens"
        logger.warning(message)
        print(message, flush=True)

    if args.gradient_checkpointing:
        if args.gradient_checkpointing_kwargs is None:
            # Non-reentrant checkpointing works with frozen inputs (LoRA) and with DeepSpeed.
            args.gradient_checkpointing_kwargs = {"use_reentrant": False}
        model.config.use_cache = False

    if args.finetuning_type == "lora":
        model = wrap_lora(model, args)
    if not args.deepspeed and any(p.dtype == torch.float16 for p in model.parameters()):
        # (DeepSpeed keeps fp32 master weights itself.)
        if args.fp16:
            # fp16 trainable weights break the AMP grad scaler ("Attempting to unscale FP16
            # gradients"): keep those in fp32, autocast runs the matmuls in fp16.
            for p in model.parameters():
                if p.requires_grad and p.dtype == torch.float16:
                    p.data = p.data.float()
        else:
            # Without --fp16 there is no autocast or loss scaling: pure fp16 training would mix
            # dtypes in one matmul or lose updates; train in fp32.
            logger.warning("--torch_dtype float16 without --fp16: training in float32")
            model = model.float()
    return model, old_vocab


def wrap_lora(model: Any, args: PretrainArguments) -> Any:
    from peft import LoraConfig, PeftModel, TaskType, get_peft_model

    targets = _split(args.trainable)
    to_save = _split(args.modules_to_save) or None
    check_module_names(model, "--trainable", targets)
    if to_save:
        check_module_names(model, "--modules_to_save", to_save)
    if args.gradient_checkpointing:
        model.enable_input_require_grads()
    if args.peft_path:
        if not Path(args.peft_path, "adapter_config.json").is_file():
            raise InputError(f"--peft_path {args.peft_path} holds no adapter_config.json")
        logger.info("continuing the LoRA adapter in %s", args.peft_path)
        return PeftModel.from_pretrained(model, args.peft_path, is_trainable=True)
    alpha: Any = args.lora_alpha  # peft annotates int; the seed's flag is a float (32.0)
    config = LoraConfig(
        task_type=TaskType.CAUSAL_LM,
        target_modules=targets,
        r=args.lora_rank,
        lora_alpha=alpha,
        lora_dropout=args.lora_dropout,
        modules_to_save=to_save,
    )
    return get_peft_model(model, config)


# =========================================================================== checkpoints


def _step_of(path: Path) -> int:
    m = re.fullmatch(r"checkpoint-(\d+)", path.name)
    return int(m.group(1)) if m else -1


def is_complete_checkpoint(path: Path, require_run_info: bool = False) -> bool:
    """trainer_state.json is written after the weights; our RUN_INFO after everything else."""
    if not (path / "trainer_state.json").is_file():
        return False
    return (path / RUN_INFO).is_file() or not require_run_info


def latest_checkpoint(output_dir: Path) -> Path | None:
    """The newest complete checkpoint-N (one cut short by a kill is skipped)."""
    found = [p for p in output_dir.glob("checkpoint-*") if p.is_dir() and _step_of(p) >= 0]
    # Once this script has written checkpoints here, only those it finished count.
    ours = any((p / RUN_INFO).is_file() for p in found)
    for path in sorted(found, key=_step_of, reverse=True):
        if is_complete_checkpoint(path, require_run_info=ours):
            return path
    return None


def resolve_resume(value: str | None, output_dir: Path) -> Path | None:
    """``last`` | ``checkpoint-N`` (in output_dir) | a path → a checkpoint dir, or None."""
    if not value or value.lower() in ("false", "none", "no"):
        return None
    if value.lower() in ("last", "latest", "true"):
        found = latest_checkpoint(output_dir)
        if found is None:
            logger.warning(
                "--resume_from_checkpoint %s: no checkpoint in %s yet; starting fresh",
                value,
                output_dir,
            )
        return found
    for candidate in (output_dir / value, Path(value)):
        if candidate.is_dir():
            if not is_complete_checkpoint(candidate):
                raise InputError(
                    f"--resume_from_checkpoint {value}: {candidate} is incomplete (no trainer_state.json)"
                )
            return candidate.resolve()
    raise InputError(
        f"--resume_from_checkpoint {value}: no such checkpoint (looked in {output_dir} and as a path)"
    )


def checkpoint_world_size(path: Path) -> int | None:
    """The process count a checkpoint was written with."""
    info = path / RUN_INFO
    if info.is_file():
        with contextlib.suppress(ValueError, KeyError, OSError):
            return int(json.loads(info.read_text())["world_size"])
    shards = list(path.glob("global_step*/*optim_states.pt"))
    if shards:
        return len(shards)
    rng = list(path.glob("rng_state_*.pth"))
    if rng:
        return len(rng)
    return 1 if (path / "rng_state.pth").is_file() else None


# =========================================================================== training


def peak_flops() -> float | None:
    """Dense bf16 peak of the visible GPU (for MFU), when known."""
    if not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name(0).upper()
    for key, flops in (
        ("H200", 989e12),
        ("H100", 989e12),
        ("A100", 312e12),
        ("L40", 181e12),
        ("A10", 125e12),
        ("4090", 165e12),
    ):
        if key in name:
            return flops
    return None


class EventsCallback(TrainerCallback):
    """Turns Trainer callbacks into events (rank 0), and stops a diverging run."""

    def __init__(self, run: RunContext) -> None:
        self.run = run
        self._last_time = time.time()
        self._last_step = 0
        self._flops = peak_flops()

    def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        run = self.run
        run.step = state.global_step
        self._last_time, self._last_step = time.time(), state.global_step
        run.events.emit(
            "start",
            state.global_step,
            max_steps=state.max_steps,
            num_train_epochs=state.num_train_epochs,
            world_size=args.world_size,
            tokens_per_step=run.tokens_per_step,
            total_params=run.total_params,
            trainable_params=run.trainable_params,
            vocab_size=run.vocab_size,
            resumed_from=str(run.resumed_from) if run.resumed_from else None,
            finetuning_type=args.finetuning_type,
        )

    def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        run = self.run
        run.step = state.global_step
        bad = torch.tensor([1.0 if run.nonfinite_in_step else 0.0], device=args.device)
        run.nonfinite_in_step = False
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            # Every rank must take the same decision, or the others hang in a collective.
            torch.distributed.all_reduce(bad, op=torch.distributed.ReduceOp.MAX)
        run.nonfinite_streak = run.nonfinite_streak + 1 if bad.item() > 0 else 0
        if run.nonfinite_streak >= args.divergence_patience:
            run.diverged_at = state.global_step
            control.should_training_stop = True
            control.should_save = False

    def on_log(
        self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kw: Any
    ) -> None:
        if not logs or "loss" not in logs:
            return  # eval dicts and the final summary are reported elsewhere
        now = time.time()
        steps = state.global_step - self._last_step
        tps = (
            steps * self.run.tokens_per_step / max(now - self._last_time, 1e-9)
            if steps > 0
            else None
        )
        self._last_time, self._last_step = now, state.global_step
        # The Trainer's logging_nan_inf_filter hides NaN losses (logs 0 or an average): be honest.
        loss = None if self.run.nonfinite_since_log else logs.get("loss")
        self.run.nonfinite_since_log = False
        fields: dict[str, Any] = {
            "loss": loss,
            "learning_rate": logs.get("learning_rate"),
            "grad_norm": logs.get("grad_norm"),
            "epoch": logs.get("epoch", state.epoch),
            "tokens_seen": state.global_step * self.run.tokens_per_step,
            "tokens_per_second": tps,
        }
        if torch.cuda.is_available() and not args.use_cpu:
            fields["peak_memory_gb"] = torch.cuda.max_memory_allocated() / 2**30
            if self._flops and tps:
                # 6·N FLOPs per token (forward + backward), per GPU.
                fields["mfu"] = 6 * self.run.total_params * tps / args.world_size / self._flops
        self.run.events.emit("log", state.global_step, **fields)

    def on_evaluate(
        self, args: Any, state: Any, control: Any, metrics: dict[str, Any] | None = None, **kw: Any
    ) -> None:
        if not metrics or "eval_loss" not in metrics:
            return
        loss = float(metrics["eval_loss"])
        ppl = perplexity(loss)
        metrics["perplexity"] = ppl
        self.run.last_eval = (loss, ppl)
        self.run.last_eval_step = state.global_step
        self.run.events.emit(
            "eval", state.global_step, eval_loss=loss, perplexity=ppl, epoch=state.epoch
        )

    def on_save(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        path = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if state.is_world_process_zero and path.is_dir():
            (path / RUN_INFO).write_text(
                json.dumps(
                    {
                        "world_size": args.world_size,
                        "per_device_train_batch_size": args.per_device_train_batch_size,
                        "gradient_accumulation_steps": args.gradient_accumulation_steps,
                        "finetuning_type": args.finetuning_type,
                        "step": state.global_step,
                    }
                )
            )
        self.run.events.emit(
            "checkpoint", state.global_step, path=str(path.resolve()), name=path.name
        )


def perplexity(loss: float) -> float:
    try:
        return math.exp(loss)
    except OverflowError:
        return float("inf")


class PretrainTrainer(Trainer):
    """Notes NaN/inf losses per micro-batch (the logged loss filters them out)."""

    run: RunContext | None = None

    def training_step(self, model: Any, inputs: Any, num_items_in_batch: Any = None) -> Any:
        loss = super().training_step(model, inputs, num_items_in_batch)
        if self.run is not None and not torch.isfinite(loss.detach()).all():
            self.run.nonfinite_in_step = True
            self.run.nonfinite_since_log = True
        return loss


@dataclass
class RunContext:
    """What the callbacks and the error handlers share."""

    events: EventWriter
    rank: int = 0
    step: int = 0
    tokens_per_step: int = 0
    total_params: int = 0
    trainable_params: int = 0
    vocab_size: int = 0
    resumed_from: Path | None = None
    nonfinite_in_step: bool = False
    nonfinite_streak: int = 0
    nonfinite_since_log: bool = False
    diverged_at: int | None = None
    last_eval: tuple[float, float] | None = None
    last_eval_step: int | None = None
    train_loss: float | None = None


def is_oom(exc: BaseException) -> bool:
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError | MemoryError) and (
        "out of memory" in text.lower()
        or "can't allocate memory" in text
        or isinstance(exc, MemoryError)
    )


def classify(exc: BaseException) -> tuple[str, str, int]:
    """(end status, one-line reason, exit code) for an exception that ended the run."""
    if isinstance(exc, InputError):
        return "failed", str(exc), EXIT_BAD_INPUT
    if isinstance(exc, DivergedError):
        return "diverged", str(exc), EXIT_DIVERGED
    if is_oom(exc):
        first = " ".join(str(exc).split())[:200] or type(exc).__name__
        return "oom", f"out of memory ({first}); {OOM_HINT}", EXIT_OOM
    return "failed", f"{type(exc).__name__}: {' '.join(str(exc).split())[:500]}", EXIT_FAILED


def _failure_note(output_dir: Path, rank: int) -> Path:
    return output_dir / f".rank-{rank}-failure.json"


def install_sigterm(run: RunContext, output_dir: Path) -> None:
    """SIGTERM (cancel, or torchrun stopping us because another rank failed) → end event, exit."""

    started = time.time() - 1

    def handler(signum: int, frame: Any) -> None:
        status, reason = "cancelled", "cancelled: received SIGTERM"
        # If another rank failed first, torchrun SIGTERMs us: report its failure instead.
        for note in sorted(output_dir.glob(".rank-*-failure.json")):
            with contextlib.suppress(Exception):
                if note.stat().st_mtime < started:
                    continue  # left by an earlier attempt
                info = json.loads(note.read_text())
                status, reason = info["status"], f"rank {info['rank']}: {info['reason']}"
                break
        run.events.end(status, reason, run.step)
        run.events.close()
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(EXIT_CANCELLED if status == "cancelled" else EXIT_FAILED)

    signal.signal(signal.SIGTERM, handler)


def setup_logging(args: PretrainArguments) -> None:
    level = logging.DEBUG if args.debug_mode else logging.INFO
    if args.process_index != 0:
        level = logging.WARNING
    logging.basicConfig(
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        level=level,
        stream=sys.stdout,
        force=True,
    )
    transformers.utils.logging.set_verbosity(
        level if args.debug_mode else max(level, logging.WARNING)
    )
    datasets.utils.logging.set_verbosity(logging.WARNING)
    if not args.debug_mode:
        datasets.disable_progress_bars()


def check_output_dir(args: PretrainArguments, resume: Path | None) -> None:
    out = Path(str(args.output_dir))
    if resume is None and not args.overwrite_output_dir and latest_checkpoint(out) is not None:
        raise InputError(
            f"--output_dir {out} already holds checkpoints: pass --resume_from_checkpoint last "
            "to continue, or --overwrite_output_dir to start over"
        )


def check_resume_world_size(resume: Path, world_size: int) -> None:
    saved = checkpoint_world_size(resume)
    if saved is not None and saved != world_size:
        raise InputError(
            f"--resume_from_checkpoint {resume.name}: it was written by {saved} processes but this "
            f"run has {world_size}; resume with the same --nnodes x --nproc_per_node ({saved})"
        )


def train(
    model_args: ModelArguments,
    data_args: DataTrainingArguments,
    args: PretrainArguments,
    run: RunContext,
) -> None:
    check_arguments(model_args, data_args, args)
    output_dir = Path(str(args.output_dir))
    resume = resolve_resume(args.resume_from_checkpoint, output_dir)
    check_output_dir(args, resume)
    if resume is not None:
        check_resume_world_size(resume, args.world_size)
        run.resumed_from = resume
    transformers.set_seed(args.seed)

    tokenizer = load_tokenizer(model_args, data_args, args)
    config = load_config(model_args)
    overrides = model_args.config_overrides
    if overrides:
        if model_args.model_name_or_path:
            logger.warning("--config_overrides is only used when training from scratch; ignored")
        else:
            try:
                config.update_from_string(overrides)
            except ValueError as exc:
                raise InputError(f"--config_overrides: {exc}") from exc
            keys = _parse_overrides(overrides)
            # head_dim is derived at construction; keep it consistent with the new sizes.
            if (
                getattr(config, "head_dim", None)
                and "head_dim" not in keys
                and {"hidden_size", "num_attention_heads"} & keys.keys()
            ):
                config.head_dim = config.hidden_size // config.num_attention_heads
    limit = max_positions(config)
    block_size = data_args.block_size or min(1024, limit or 1024)
    if limit is not None and block_size > limit:
        raise InputError(
            f"--block_size {block_size} is larger than the model's maximum positions "
            f"(max_position_embeddings = {limit}); use --block_size {limit} or less"
        )
    train_ds, eval_ds = build_datasets(data_args, args, tokenizer, block_size)

    model, old_vocab = build_model(model_args, args, tokenizer, config)
    run.total_params = sum(
        p.ds_numel if hasattr(p, "ds_numel") else p.numel() for p in model.parameters()
    )
    run.trainable_params = sum(
        (p.ds_numel if hasattr(p, "ds_numel") else p.numel())
        for p in model.parameters()
        if p.requires_grad
    )
    run.vocab_size = max(len(tokenizer), old_vocab)
    run.tokens_per_step = (
        block_size
        * args.per_device_train_batch_size
        * args.gradient_accumulation_steps
        * args.world_size
    )
    if args.process_index == 0:
        logger.info(
            "%s: %d trainable of %d parameters; %d tokens per step",
            args.finetuning_type,
            run.trainable_params,
            run.total_params,
            run.tokens_per_step,
        )
    if eval_ds is not None and args.per_device_eval_batch_size and not args.do_eval:
        args.do_eval = True  # evaluate at least at the end: perplexity is a deliverable
    trainer = PretrainTrainer(
        model=model,
        args=args,
        train_dataset=train_ds,
        eval_dataset=eval_ds,
        processing_class=tokenizer,
        data_collator=default_data_collator,
        callbacks=[EventsCallback(run)],
    )
    trainer.run = run
    result = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    if run.diverged_at is not None:
        raise DivergedError(
            f"loss was NaN/inf on {args.divergence_patience} consecutive steps (stopped at step "
            f"{run.diverged_at}); lower --learning_rate, keep --max_grad_norm, or use bf16 instead of fp16"
        )
    run.train_loss = result.training_loss
    trainer.save_model(str(output_dir))
    if trainer.is_world_process_zero():
        tokenizer.save_pretrained(str(output_dir))
        trainer.save_state()
    if eval_ds is not None and run.last_eval_step != trainer.state.global_step:
        trainer.evaluate()  # the final perplexity, unless an evaluation just ran


def _single_process_env(argv: list[str]) -> None:
    """``python pretrain.py --deepspeed ...`` without a launcher: DeepSpeed would look for MPI."""
    if not any(a == "--deepspeed" or a.startswith("--deepspeed=") for a in argv):
        return
    if "RANK" in os.environ or "LOCAL_RANK" in os.environ:
        return
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    os.environ.update({"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "LOCAL_WORLD_SIZE": "1"})
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", str(port))


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    _single_process_env(argv)
    rank = int(os.environ.get("RANK", "0"))
    early_out = _argv_value(argv, "--output_dir")
    events = EventWriter(early_out or ".", enabled=rank == 0 and early_out is not None)
    run = RunContext(events=events, rank=rank)
    if early_out:
        install_sigterm(run, Path(early_out))
    try:
        try:
            model_args, data_args, args = parse_args(argv)
        except SystemExit as exc:  # argparse already printed the message
            if exc.code not in (0, None):
                events.end("failed", "bad command-line arguments (see the log)", 0)
            raise
        except ValueError as exc:
            raise InputError(str(exc)) from exc
        setup_logging(args)
        if args.process_index == 0:
            logger.info(
                "transformers %s, torch %s, world size %d",
                transformers.__version__,
                torch.__version__,
                args.world_size,
            )
        train(model_args, data_args, args, run)
        loss_fields: dict[str, Any] = {"train_loss": run.train_loss}
        if run.last_eval:
            loss_fields["perplexity"] = run.last_eval[1]
            loss_fields["eval_loss"] = run.last_eval[0]
        events.end("succeeded", "training finished", run.step, **loss_fields)
        code = EXIT_OK
    except SystemExit:
        raise
    except BaseException as exc:  # every way out writes an end event
        status, reason, code = classify(exc)
        if isinstance(exc, KeyboardInterrupt):
            status, reason, code = "cancelled", "interrupted", EXIT_CANCELLED
        logger.error("%s: %s", status, reason)
        if code == EXIT_FAILED:
            logger.exception("traceback")
        if rank != 0 and early_out:
            with contextlib.suppress(OSError):
                _failure_note(Path(early_out), rank).write_text(
                    json.dumps({"rank": rank, "status": status, "reason": reason})
                )
        events.end(status, reason, run.step)
        print(f"ERROR [{status}] {reason}", file=sys.stderr, flush=True)
    finally:
        events.close()
    finish_distributed(code)
    return code


def finish_distributed(code: int) -> None:
    """A barrier then destroy_process_group: without it DeepSpeed+gloo sometimes aborts at exit."""
    dist = torch.distributed
    if not (dist.is_available() and dist.is_initialized()):
        return
    if code == EXIT_OK:
        with contextlib.suppress(Exception):
            dist.barrier()
    with contextlib.suppress(Exception):
        dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
