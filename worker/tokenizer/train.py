"""Train a SentencePiece model on text (``python -m worker.tokenizer train``)."""

from __future__ import annotations

import io
import json
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from worker.tokenizer.corpus import read_corpus
from worker.tokenizer.errors import TokenizerInputError
from worker.tokenizer.output import atomic_output_dir

MODEL_TYPES = ("bpe", "unigram", "char", "word")
SUMMARY_NAME = "train_summary.json"


@dataclass
class TrainResult:
    """What ``train`` wrote and the figures of the run."""

    output: str
    model_type: str
    vocab_size: int
    pieces: int
    learned_pieces: int
    character_coverage: float
    files: list[str] = field(default_factory=list)
    lines: int = 0
    chars: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _threads() -> int:
    value = os.environ.get("OMP_NUM_THREADS", "")
    return int(value) if value.isdigit() and int(value) > 0 else max(1, os.cpu_count() or 1)


def _vocab_error(exc: RuntimeError, vocab_size: int, coverage: float) -> TokenizerInputError:
    text = str(exc)
    low = re.search(r"required_chars\. \d+ vs (\d+)", text)
    if low:
        return TokenizerInputError(
            "--vocab_size",
            f"{vocab_size} is below the {low.group(1)} pieces the corpus's characters need at "
            f"--character_coverage {coverage}; raise --vocab_size or lower --character_coverage",
        )
    high = re.search(r"set it to a value <= (\d+)", text)
    if high:
        return TokenizerInputError(
            "--vocab_size",
            f"{vocab_size} is more than the corpus can fill (at most {high.group(1)} pieces); "
            "lower --vocab_size or give more text",
        )
    return TokenizerInputError("--input", f"SentencePiece could not train on it: {text}")


def train_model_proto(
    lines: Sequence[str],
    model_type: str,
    vocab_size: int,
    character_coverage: float | None = None,
) -> bytes:
    """A serialized SentencePiece ``ModelProto`` trained on ``lines``.

    Llama-style options: identity normalization (pieces match the text as written, which is
    what a Llama/Mistral base sees), digits split, byte fallback for bpe/unigram, ids
    unk 0 / bos 1 / eos 2.
    """
    import sentencepiece as spm

    if model_type not in MODEL_TYPES:
        raise TokenizerInputError("--model_type", f"{model_type!r} is not one of {MODEL_TYPES}")
    if vocab_size < 8:
        raise TokenizerInputError("--vocab_size", f"{vocab_size} is too small (at least 8)")
    coverage = _coverage(model_type, character_coverage)
    writer = io.BytesIO()
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(lines),
            model_writer=writer,
            model_type=model_type,
            vocab_size=vocab_size,
            character_coverage=coverage,
            normalization_rule_name="identity",
            remove_extra_whitespaces=False,
            split_digits=True,
            byte_fallback=model_type in ("bpe", "unigram"),
            hard_vocab_limit=True,
            input_sentence_size=0,
            max_sentence_length=1 << 16,
            num_threads=_threads(),
            unk_id=0,
            bos_id=1,
            eos_id=2,
            pad_id=-1,
            minloglevel=2,
        )
    except RuntimeError as exc:
        raise _vocab_error(exc, vocab_size, coverage) from None
    data = writer.getvalue()
    pieces = spm.SentencePieceProcessor(model_proto=data).get_piece_size()
    if pieces < vocab_size:  # char models stop at the character set without an error
        raise TokenizerInputError(
            "--vocab_size",
            f"{vocab_size} is more than the corpus can fill (at most {pieces} pieces); "
            "lower --vocab_size or give more text",
        )
    return data


def _coverage(model_type: str, character_coverage: float | None) -> float:
    if character_coverage is None:
        return 0.9995 if model_type in ("bpe", "unigram") else 1.0
    if not 0 < character_coverage <= 1:
        raise TokenizerInputError("--character_coverage", f"{character_coverage} is not in (0, 1]")
    return character_coverage


def train(
    inputs: Sequence[str | Path],
    model_type: str,
    vocab_size: int,
    output: str | Path,
    character_coverage: float | None = None,
    progress: Callable[[str], None] | None = None,
) -> TrainResult:
    """Train on the text of ``inputs``; write ``output/tokenizer.model`` and a summary."""
    say = progress or (lambda _msg: None)
    started = time.monotonic()
    with atomic_output_dir(Path(output)) as tmp:
        corpus = read_corpus(inputs, "--input")
        say(
            f"train: {len(corpus.files)} file(s), {len(corpus.lines)} lines, "
            f"{corpus.n_chars} characters -> {model_type} model of {vocab_size} pieces ..."
        )
        data = train_model_proto(corpus.lines, model_type, vocab_size, character_coverage)
        (tmp / "tokenizer.model").write_bytes(data)
        pieces, learned = _count_pieces(data)
        result = TrainResult(
            output=str(Path(output).absolute()),
            model_type=model_type,
            vocab_size=vocab_size,
            pieces=pieces,
            learned_pieces=learned,
            character_coverage=_coverage(model_type, character_coverage),
            files=[str(p) for p in corpus.files],
            lines=len(corpus.lines),
            chars=corpus.n_chars,
            seconds=round(time.monotonic() - started, 3),
        )
        (tmp / SUMMARY_NAME).write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    say(
        f"train: {pieces} pieces ({learned} learned from the text) in {result.seconds:.1f} s "
        f"-> {result.output}/tokenizer.model"
    )
    return result


def _count_pieces(data: bytes) -> tuple[int, int]:
    from worker.tokenizer.sp_proto import NORMAL, load_proto

    proto = load_proto(data)
    return len(proto.pieces), sum(1 for p in proto.pieces if p.type == NORMAL)
