"""The tokenizer: loaded from a model or path, or SentencePiece trained on the data (from scratch)."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from worker.training.arguments import (
    DataTrainingArguments,
    ModelArguments,
    PretrainArguments,
    parse_config_overrides,
)
from worker.training.data import data_files, flag_of, read_texts
from worker.training.failures import InputError
from worker.training.hf_tokenizer import auto_tokenizer

logger = logging.getLogger("pretrain")


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
            docs, _ = read_texts(p, False, flag_of(p, data_args))
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
        overrides = parse_config_overrides(model_args.config_overrides)
        vocab = int(overrides.get("vocab_size", 8000))
        sp_dir = Path(str(args.output_dir)) / "sentencepiece"
        with args.main_process_first(local=False, desc="train sentencepiece"):  # shared dir
            if not (sp_dir / "tokenizer.model").exists() and args.process_index == 0:
                logger.info(
                    "training a %s SentencePiece tokenizer (vocab %d)", model_args.model_type, vocab
                )
                train_sentencepiece(data_args, model_args.model_type or "bpe", sp_dir, vocab)
        tokenizer = load_sentencepiece(sp_dir, model_args.model_type or "bpe")
    else:
        try:
            tokenizer = auto_tokenizer(source, **kwargs)
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
