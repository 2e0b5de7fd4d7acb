"""Score a checkpoint on lm-evaluation-harness tasks.

    python -m worker.benchmark --checkpoint RUN/output/checkpoint-N [--base=BASE_DIR]
        [--tokenizer=DIR] [--task_file=YAML_OR_DIR ...] [--task=NAME ...] [--limit=N]
        [--num_fewshot=N] [--batch_size=N] [--seed=N] --json=OUT

Task files are the harness's YAML over local data (``taskfiles.py``); ``--task`` names the
harness's own tasks (they download their data: network access needed). Prints one line per task
and metric; ``--json`` gets the result the panel stores.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

_ROOT = Path(__file__).resolve().parents[2]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from cpt_contract.roots import Roots  # noqa: E402
from worker.benchmark.taskfiles import TaskFileError, load_task_files  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--base", type=Path, help="the base model of a LoRA checkpoint")
    parser.add_argument("--tokenizer", type=Path, help="when the checkpoint has no tokenizer")
    parser.add_argument("--task_file", type=Path, action="append", default=[])
    parser.add_argument("--task", action="append", default=[])
    parser.add_argument("--limit", type=int, help="at most this many documents per task")
    parser.add_argument("--num_fewshot", type=int)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--json", type=Path, help="write the result here")
    return parser


def run(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from worker.benchmark.harness import evaluate
    from worker.generate import load_model
    from worker.merge_lora import _has_tokenizer
    from worker.training.hf_tokenizer import auto_tokenizer

    started = time.perf_counter()
    configs = load_task_files(args.task_file, Roots.from_env())
    checkpoint: Path = args.checkpoint
    tok_dir = (
        checkpoint if _has_tokenizer(checkpoint) else (args.tokenizer or args.base or checkpoint)
    )
    tokenizer = auto_tokenizer(str(tok_dir))
    model = load_model(checkpoint, args.base)
    if torch.cuda.is_available():
        model = model.to("cuda")
    model.eval()
    print(f"loaded {checkpoint} in {time.perf_counter() - started:.1f} s", flush=True)
    tasks: list[str | dict[str, Any]] = [*configs, *args.task]
    scored = evaluate(
        model,
        tokenizer,
        tasks,
        limit=args.limit,
        num_fewshot=args.num_fewshot,
        batch_size=args.batch_size,
        seed=args.seed,
    )
    for task in scored:
        for m in task["metrics"]:
            err = f" ± {m['stderr']:.4f}" if m["stderr"] is not None else ""
            print(f"{task['task']}: {m['metric']} = {m['value']:.4f}{err}", flush=True)
    return {
        "checkpoint": str(checkpoint),
        "tasks": scored,
        "task_files": [str(p) for p in args.task_file],
        "harness_tasks": list(args.task),
        "limit": args.limit,
        "num_fewshot": args.num_fewshot,
        "seconds": round(time.perf_counter() - started, 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.checkpoint.is_dir():
        parser.error(f"--checkpoint {args.checkpoint} is not a directory")
    if not args.task_file and not args.task:
        parser.error("name at least one --task_file or --task")
    try:
        result = run(args)
    except TaskFileError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2
    if args.json:
        args.json.write_text(json.dumps(result, ensure_ascii=False, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
