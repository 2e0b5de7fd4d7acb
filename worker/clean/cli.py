"""``python -m worker.clean --config=FILE --json=FILE``: clean sources into a new dataset.

The config is the job's ``CleanParams`` as JSON (validated again here); ``--output_root`` is the
datasets root when the params leave it empty. Progress lines on stdout (the job log); the report
(counts before and after each step and per language, removed examples, the lineage) goes to
``--json`` and into the new dataset as ``cpt_clean.json``. Exit 2 on bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pydantic import ValidationError

from cpt_contract.jobs import CleanParams
from worker.data.errors import DataError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m worker.clean", description=__doc__)
    p.add_argument("--config", required=True, help="the job's parameters (JSON)")
    p.add_argument("--output_root", help="datasets root when the config has none")
    p.add_argument("--json", help="write the report here")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        params = CleanParams.model_validate_json(Path(args.config).read_text(encoding="utf-8"))
    except (OSError, ValidationError) as exc:
        print(f"error: --config: {exc}", file=sys.stderr)
        return 2
    root = params.output_root or args.output_root
    if not root:
        print("error: --output_root: the params name no datasets root", file=sys.stderr)
        return 2
    from worker.clean.pipeline import Cleaner

    try:
        encoder = None
        if params.tokenizer:
            from worker.data.encoding import Encoder
            from worker.training.hf_tokenizer import auto_tokenizer

            encoder = Encoder(auto_tokenizer(params.tokenizer))
        result = Cleaner(params, encoder).run(Path(root), params.name)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    b, a = result["before"], result["after"]
    print(
        f"kept {a['documents']:,} of {b['documents']:,} documents "
        f"({a['characters']:,} of {b['characters']:,} characters) in {result['seconds']:.1f} s; "
        f"dataset {result['output']}",
        flush=True,
    )
    if args.json:
        Path(args.json).write_text(json.dumps(result, ensure_ascii=False), encoding="utf-8")
    return 0
