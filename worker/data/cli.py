"""``python -m worker.data prepare|stats|scan``: the engine without a training run.

``prepare`` tokenizes and packs into the block cache (what a training run then reuses), ``stats``
does the same work and writes nothing, ``scan`` reports on files (see ``worker.data.scan``).
A progress bar on a terminal, plain lines otherwise; exit 2 on bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from worker.data.documents import TXT_DOCUMENTS, find_files
from worker.data.encoding import PACKINGS, Encoder
from worker.data.errors import DataError
from worker.data.files import FileStats, PackOptions, cache_file, iter_file_blocks
from worker.data.sources import Source, check_column, load_sources, parse_data_sources


def _bool(value: str) -> bool:
    if value.lower() in ("1", "true", "yes"):
        return True
    if value.lower() in ("0", "false", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        allow_abbrev=False, prog="python -m worker.data", description=__doc__
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("prepare", "stats"):
        p = sub.add_parser(name, help="tokenize into the cache" if name == "prepare" else
                           "count files, documents, tokens and blocks; write nothing")  # fmt: skip
        src = p.add_argument_group("data (at least one)")
        src.add_argument("--dataset_dir", help="directory of .txt/.jsonl files")
        src.add_argument("--train_file", help="one .txt/.jsonl file")
        src.add_argument("--data_sources", help='JSON list of {"path", "weight", "name"}')
        p.add_argument("--tokenizer", required=True, help="tokenizer directory or name")
        p.add_argument("--block_size", type=int, required=True)
        p.add_argument("--packing", choices=PACKINGS, default="eos")
        p.add_argument("--keep_linebreaks", type=_bool, default=True)
        p.add_argument("--txt_documents", choices=TXT_DOCUMENTS, default="line",
                       help="a .txt document is a line, a paragraph (blank_line) or the file")  # fmt: skip
        p.add_argument("--text_column", default="text", help="field/column of the text")
        if name == "prepare":
            p.add_argument("--data_cache_dir", required=True)
            p.add_argument("--overwrite_cache", action="store_true")
        p.add_argument("--json", help="also write the counts as JSON to this file")
    s = sub.add_parser("scan", help="per-file report: documents, scripts, tokens, skipped files")
    s.add_argument("paths", nargs="+", help="files or directories")
    s.add_argument("--tokenizer")
    s.add_argument("--block_size", type=int)
    s.add_argument("--packing", choices=PACKINGS, default="eos")
    s.add_argument("--txt_documents", choices=TXT_DOCUMENTS, default="line")
    s.add_argument("--json", help="write the report here (default: print it)")
    s.add_argument("--cache_dir", help="keep each file's row here, keyed like the data cache")
    s.add_argument("--text_column", default="text", help="field/column of the text")
    return parser


def _sources(args: argparse.Namespace) -> list[Source]:
    sources: list[Source] = []
    if args.dataset_dir or args.train_file:
        files = find_files(Path(args.dataset_dir)) if args.dataset_dir else []
        if args.train_file:
            path = Path(args.train_file)
            if not path.is_file():
                raise DataError(f"--train_file {path} does not exist")
            files.append(path)
        name = Path(args.dataset_dir or args.train_file).name
        flag = "--dataset_dir" if args.dataset_dir else "--train_file"
        column = check_column(args.text_column, "--text_column")
        sources.append(Source(name, files, 1.0, flag, text_column=column))
    if args.data_sources:
        sources.extend(load_sources(parse_data_sources(args.data_sources)))
    if not sources:
        raise DataError("give --dataset_dir, --train_file or --data_sources")
    return sources


class Progress:
    """Bytes read: a tqdm bar on a terminal, a plain line per file otherwise."""

    def __init__(self, total: int) -> None:
        self.bar: Any = None
        if sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="B", unit_scale=True, desc="tokenize")

    def update(self, n: int) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def file_done(self, i: int, n: int, stats: FileStats) -> None:
        line = (
            f"[{i}/{n}] {stats.path}: {stats.documents:,} documents, {stats.tokens:,} tokens, "
            f"{stats.blocks:,} blocks, {stats.seconds:.2f} s{' (cache hit)' if stats.cached else ''}"
        )
        if self.bar is not None:
            self.bar.write(line)
        else:
            print(line, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def run_prepare(args: argparse.Namespace, write: bool) -> dict[str, Any]:
    sources = _sources(args)  # bad input fails before the (slow) transformers import
    from worker.training.hf_tokenizer import auto_tokenizer

    tokenizer = auto_tokenizer(args.tokenizer)
    encoder = Encoder(tokenizer)
    opts = PackOptions(
        args.block_size, args.packing, args.keep_linebreaks, args.txt_documents,
        text_column=args.text_column,
    )  # fmt: skip
    if opts.packing == "eos":
        encoder.require_eos()
    todo = [(s, p) for s in sources for p in s.files]
    progress = Progress(sum(p.stat().st_size for _, p in todo))
    started = time.perf_counter()
    rows: list[FileStats] = []
    try:
        for i, (source, path) in enumerate(todo, 1):
            if write:
                stats = cache_file(
                    path, encoder, source.options(opts), Path(args.data_cache_dir),
                    source.flag_of(path),
                    args.overwrite_cache, progress.update,
                ).stats  # fmt: skip
            else:
                stats = FileStats(str(path))
                for _ in iter_file_blocks(
                    path,
                    encoder,
                    source.options(opts),
                    source.flag_of(path),
                    stats,
                    progress.update,
                ):
                    pass
            rows.append(stats)
            progress.file_done(i, len(todo), stats)
    finally:
        progress.close()
    seconds = time.perf_counter() - started
    tokens = sum(r.tokens for r in rows)
    summary = {
        "files": len(rows),
        "documents": sum(r.documents for r in rows),
        "tokens": tokens,
        "blocks": sum(r.blocks for r in rows),
        "seconds": round(seconds, 3),
        "tokens_per_second": round(tokens / seconds) if seconds > 0 else None,
        "cache_hits": sum(r.cached for r in rows),
        "block_size": opts.block_size,
        "packing": opts.packing,
    }
    for key in ("files", "documents", "tokens", "blocks"):
        print(f"{key:<11} {summary[key]:,}")
    print(f"{'time':<11} {seconds:.2f} s")
    tps = summary["tokens_per_second"]
    print(
        f"{'tokens/s':<11} {tps:,}"
        + (" (cache hits: no tokenizing)" if summary["cache_hits"] else "")
    )
    if args.json:
        Path(args.json).write_text(
            json.dumps({**summary, "per_file": [vars(r) for r in rows]}, indent=1)
        )
    return summary


def run_scan(args: argparse.Namespace) -> dict[str, Any]:
    from worker.data.scan import scan

    tokenizer = None
    if args.tokenizer:
        from worker.training.hf_tokenizer import auto_tokenizer

        tokenizer = auto_tokenizer(args.tokenizer)
    column = check_column(args.text_column, "--text_column")
    report = scan(
        args.paths, tokenizer, args.block_size, args.packing,
        cache_dir=args.cache_dir, txt_documents=args.txt_documents, text_column=column,
    )  # fmt: skip
    text = json.dumps(report, indent=1, ensure_ascii=False)
    if args.json:
        Path(args.json).write_text(text, encoding="utf-8")
        t = report["totals"]
        print(
            f"{t['files']} files ({t['usable_files']} usable), {t['documents']:,} documents, "
            f"{len(report['skipped'])} skipped, {report['cached_files']} from the cache; "
            f"report in {args.json}"
        )
    else:
        print(text)
    return report


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "scan":
            run_scan(args)
        else:
            run_prepare(args, write=args.command == "prepare")
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
