"""``python -m worker.hub download|import-gguf|publish``: a job's tool; one ``error: ...`` line and a
non-zero exit (2: bad request, 3: no space) on failure, ``--json`` written on success."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from worker.hub import download, importer, publish


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m worker.hub")
    sub = parser.add_subparsers(dest="command", required=True)
    download.add_arguments(sub.add_parser("download", help="download a Hub repo into a root"))
    importer.add_arguments(sub.add_parser("import-gguf", help="a GGUF file → an HF model dir"))
    publish.add_arguments(sub.add_parser("publish", help="a model folder → a Hub repo"))
    args = parser.parse_args(argv)
    try:
        if args.command == "download":
            result = download.download(args)
        elif args.command == "publish":
            result = publish.publish(args)
        else:
            result = importer.import_gguf(args)
    except download.DownloadError as exc:
        print(f"error: {exc}", flush=True)
        return exc.code
    except OSError as exc:
        err = download.disk_error(exc)
        print(f"error: {err}", flush=True)
        return err.code
    Path(args.json).write_text(json.dumps(result, indent=1))
    print(f"saved {result['path']}", flush=True)
    return 0
