"""Import a GGUF file into a models root as a plain HF directory (``python -m worker.hub
import-gguf``): converted into ``<dest_root>/.partial/<name>`` (never listed by the pickers),
``cpt_source.json`` written (the file, its size and sha256), then renamed into place."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from worker.hub.download import EXIT_BAD_REQUEST, EXIT_NO_SPACE, PARTIAL, SOURCE_FILE, DownloadError
from worker.hub.gguf import GgufError, convert_gguf


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def import_gguf(args: argparse.Namespace) -> dict[str, Any]:
    gguf = Path(args.gguf)
    if not gguf.is_file():
        raise DownloadError(f"--gguf {gguf} is not a file", EXIT_BAD_REQUEST)
    with gguf.open("rb") as fh:
        if fh.read(4) != b"GGUF":
            raise DownloadError(f"{gguf.name} is not a GGUF file (no GGUF magic)", EXIT_BAD_REQUEST)
    dest_root = Path(args.dest_root)
    final = dest_root / args.name
    if final.exists():
        raise DownloadError(f"{final} already exists: pick another name", EXIT_BAD_REQUEST)
    partial = dest_root / PARTIAL / args.name
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    # A dequantized float32 model takes ~4 bytes per weight: ~ 4-8x a quantized file.
    need = gguf.stat().st_size * 8 + args.reserve_bytes
    free = shutil.disk_usage(partial).free
    if need > free:
        raise DownloadError(
            f"not enough free space to import {gguf.name}: about {need / 1e9:.2f} GB needed, "
            f"{free / 1e9:.2f} GB free under {dest_root}",
            EXIT_NO_SPACE,
        )
    print(f"converting {gguf} to {args.dtype}", flush=True)
    started = time.monotonic()
    try:
        convert_gguf(gguf, partial, args.dtype)
    except GgufError as exc:
        shutil.rmtree(partial, ignore_errors=True)
        raise DownloadError(str(exc), EXIT_BAD_REQUEST) from exc
    source = {
        "imported_from": str(gguf),
        "format": "gguf",
        "bytes": gguf.stat().st_size,
        "sha256": _sha256(gguf),
        "dtype": args.dtype,
        "imported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    (partial / SOURCE_FILE).write_text(json.dumps(source, indent=1))
    os.replace(partial, final)
    print(f"converted in {time.monotonic() - started:.1f} s", flush=True)
    return {"path": str(final), **source}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--gguf", required=True)
    p.add_argument("--dest_root", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32")
    p.add_argument("--reserve_bytes", type=int, default=0)
    p.add_argument("--json", required=True)
