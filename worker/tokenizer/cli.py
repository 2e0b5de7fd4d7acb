"""The command line: ``python -m worker.tokenizer train|merge|fertility|check``.

Bad input prints one line, ``error: --argument ...: what is wrong``, and exits with 2;
``check`` exits with 1 when a check fails. Outputs are built beside the target and renamed
into place, so a failed run leaves nothing at the output path.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from worker.tokenizer.errors import EXIT_BAD_INPUT, EXIT_CHECK_FAILED, TokenizerInputError
from worker.tokenizer.train import MODEL_TYPES

MERGE_HELP = """\
Extend BASE's vocabulary; the first len(BASE) ids keep their tokens, and BASE's
tokenizer_config.json / special_tokens_map.json / chat template are copied (BOS/EOS,
special tokens, model_max_length and class stay the base's).

SentencePiece base (a tokenizer.model: Llama-2, Mistral):
  --add MODEL   a SentencePiece .model or a directory with tokenizer.model (the output of
                `train`); its pieces that the base lacks are appended.
  --input TEXT  instead of --add: train a BPE SentencePiece model of --vocab_size pieces on
                TEXT first, then append its pieces.
Byte-level BPE base (a tokenizer.json: Llama-3, SmolLM2, Qwen):
  --input TEXT  required: BPE training continues from the base's own segmentation of TEXT
                (its pre-tokenizer, its merges), so every new token is built by a chain of
                merges whose parts are tokens; up to --max_new merges (default 10000), each
                seen at least --min_frequency times.
"""


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an integer") from None
    if number <= 0:
        raise argparse.ArgumentTypeError(f"{value} is not a positive integer")
    return number


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        allow_abbrev=False,
        prog="python -m worker.tokenizer",
        description="Train, extend, measure and check tokenizers for continual pretraining.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a SentencePiece model on text")
    t.add_argument(
        "--input",
        nargs="+",
        required=True,
        metavar="DIR_OR_FILE",
        help="text files, or directories of .txt/.jsonl ({'text': ...}) files",
    )
    t.add_argument("--model_type", choices=MODEL_TYPES, default="bpe")
    t.add_argument("--vocab_size", type=_positive, required=True)
    t.add_argument(
        "--character_coverage",
        type=float,
        default=None,
        help="share of characters covered (default 0.9995 for bpe/unigram, else 1.0)",
    )
    t.add_argument(
        "--output", required=True, help="new directory: tokenizer.model + train_summary.json"
    )

    m = sub.add_parser(
        "merge",
        help="extend a base tokenizer",
        description=MERGE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    m.add_argument("--base", required=True, help="the base tokenizer (or model) directory")
    m.add_argument("--add", help="SentencePiece base: a .model or a directory with tokenizer.model")
    m.add_argument("--input", nargs="+", metavar="DIR_OR_FILE", help="text to learn from")
    m.add_argument("--output", required=True, help="new directory for the extended tokenizer")
    m.add_argument("--max_new", type=_positive, default=None, help="at most this many new tokens")
    m.add_argument(
        "--vocab_size",
        type=_positive,
        default=8000,
        help="SentencePiece base with --input: pieces of the model trained first",
    )
    m.add_argument(
        "--min_frequency",
        type=_positive,
        default=2,
        help="byte-level BPE base: least count of a new merge in the text",
    )

    f = sub.add_parser("fertility", help="tokens per word/character of tokenizers on text")
    f.add_argument(
        "--tokenizer",
        action="append",
        required=True,
        help="a tokenizer directory (repeatable; the first is the base)",
    )
    f.add_argument(
        "--text",
        nargs="+",
        required=True,
        metavar="FILE_OR_DIR",
        help="text files (the file stem is the language label)",
    )
    f.add_argument("--json", help="write the figures to this JSON file")

    e = sub.add_parser(
        "extend",
        help="train pieces on new text, merge them into a base, then measure and check",
    )
    e.add_argument("--base", required=True, help="the base tokenizer (or model) directory")
    e.add_argument("--input", nargs="+", required=True, metavar="DIR_OR_FILE")
    e.add_argument("--model_type", choices=MODEL_TYPES, default="bpe")
    e.add_argument("--vocab_size", type=_positive, default=8000)
    e.add_argument("--character_coverage", type=float, default=None)
    e.add_argument("--max_new", type=_positive, default=None)
    e.add_argument("--text", nargs="+", default=[], help="held-out text (one file per language)")
    e.add_argument("--output", required=True, help="new directory for the extended tokenizer")
    e.add_argument("--json", help="write the result document to this JSON file")

    c = sub.add_parser("check", help="check an extended tokenizer against its base")
    c.add_argument("--base", required=True)
    c.add_argument("--extended", required=True)
    c.add_argument(
        "--text",
        nargs="*",
        default=[],
        metavar="FILE_OR_DIR",
        help="text in the base's languages (e.g. English): tokens per word must stay "
        "within --tolerance",
    )
    c.add_argument("--tolerance", type=float, default=0.02)
    c.add_argument("--json", help="write the report to this JSON file")
    return parser


def write_json(path: str | Path, data: Any, argument: str = "--json") -> None:
    """Write JSON atomically (a temporary file renamed into place)."""
    target = Path(path)
    if target.is_dir():
        raise TokenizerInputError(argument, f"{path} is a directory")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _say(message: str) -> None:
    print(message, flush=True)


def run_train(args: argparse.Namespace) -> int:
    from worker.tokenizer.train import train

    train(
        args.input,
        args.model_type,
        args.vocab_size,
        args.output,
        args.character_coverage,
        progress=_say,
    )
    return 0


def run_merge(args: argparse.Namespace) -> int:
    from worker.tokenizer.loading import detect_family
    from worker.tokenizer.output import check_new_output

    check_new_output(Path(args.output))
    family = detect_family(Path(args.base), "--base")
    if family == "sentencepiece":
        from worker.tokenizer.merge_sp import merge_sentencepiece, merge_sentencepiece_text

        if args.add and args.input:
            raise TokenizerInputError("--add", "give --add or --input, not both")
        if args.add:
            merge_sentencepiece(args.base, args.add, args.output, args.max_new, progress=_say)
        elif args.input:
            merge_sentencepiece_text(
                args.base, args.input, args.output, args.vocab_size, args.max_new, progress=_say
            )
        else:
            raise TokenizerInputError(
                "--add", "a SentencePiece base needs --add MODEL or --input TEXT"
            )
        return 0
    from worker.tokenizer.merge_bpe import merge_byte_level_bpe

    if args.add:
        raise TokenizerInputError(
            "--add", "a byte-level BPE base learns its new merges from text: give --input TEXT"
        )
    if not args.input:
        raise TokenizerInputError("--input", "a byte-level BPE base needs --input TEXT")
    merge_byte_level_bpe(
        args.base, args.input, args.output, args.max_new or 10000, args.min_frequency, progress=_say
    )
    return 0


def run_fertility(args: argparse.Namespace) -> int:
    from worker.tokenizer.fertility import fertility

    report = fertility(args.tokenizer, args.text)
    print(report.table())
    if args.json:
        write_json(args.json, report.to_dict())
    return 0


def run_check(args: argparse.Namespace) -> int:
    from worker.tokenizer.check import check_extension

    if not 0 <= args.tolerance < 1:
        raise TokenizerInputError("--tolerance", f"{args.tolerance} is not in [0, 1)")
    report = check_extension(args.base, args.extended, args.text, args.tolerance)
    print("\n".join(report.lines()))
    if args.json:
        write_json(args.json, report.to_dict())
    return 0 if report.passed else EXIT_CHECK_FAILED


def run_extend(args: argparse.Namespace) -> int:
    from worker.tokenizer.extend import extend

    result = extend(
        args.base,
        args.input,
        args.output,
        model_type=args.model_type,
        vocab_size=args.vocab_size,
        character_coverage=args.character_coverage,
        max_new=args.max_new,
        texts=args.text,
        progress=_say,
    )
    if args.json:
        write_json(args.json, result)
    return 0


COMMANDS = {
    "train": run_train,
    "merge": run_merge,
    "fertility": run_fertility,
    "check": run_check,
    "extend": run_extend,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except TokenizerInputError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return EXIT_BAD_INPUT
