"""The clean job's checks beyond its parameter model: the new dataset's place (under the allowed
roots, not there yet) and sources that are text. Each problem is a 422 at its field."""

from __future__ import annotations

from itertools import islice
from pathlib import Path
from typing import Any

from backend.services import files
from backend.services.paths import PathNotAllowed, resolve_allowed
from backend.services.validation import ConfigInvalid, error
from cpt_contract.settings import Settings

#: Files of a source directory sniffed for text, and the bytes read of each.
SNIFF_FILES = 5
SNIFF_BYTES = 1 << 16
TEXT_SUFFIXES = (".txt", ".jsonl")


def _not_text(path: Path) -> str | None:
    try:
        with path.open("rb") as fh:
            head = fh.read(SNIFF_BYTES)
    except OSError as exc:
        return f"cannot read {path}: {exc.strerror}"
    if b"\0" in head:
        return f"{path} is binary, not text: give .txt or .jsonl files of UTF-8 text"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 3:  # not just a character cut by the sniff's end
            return f"{path} is not UTF-8 text (byte {exc.start}): convert it with iconv"
    return None


def source_problem(path: Path) -> str | None:
    """Why a source is not a text dataset (None: it is)."""
    if path.is_file():
        if path.suffix not in TEXT_SUFFIXES:
            return f"'{path}' is not a .txt or .jsonl file"
        return _not_text(path)
    marker = files.problem("dataset", path)
    if marker and "holds no .txt" not in marker:  # a run's, model's or tokenizer's folder
        return f"'{path}' {marker}"
    found = sorted(islice((p for p in path.rglob("*") if p.suffix in TEXT_SUFFIXES), 1000))
    if not found:
        return f"'{path}' holds no .txt or .jsonl files"
    for p in found[:SNIFF_FILES]:
        if problem := _not_text(p):
            return problem
    return None


def validate(settings: Settings, params: dict[str, Any]) -> dict[str, Any]:
    loc = ["body", "params"]
    errors = []
    root = settings.datasets_dir
    if params.get("output_root"):
        try:
            root = resolve_allowed(params["output_root"], settings.roots)
        except PathNotAllowed as exc:
            errors.append(error([*loc, "output_root"], str(exc), "path_not_allowed"))
        else:
            if not root.is_dir():
                errors.append(
                    error([*loc, "output_root"], f"'{root}' is not a directory", "path_missing")
                )
            params["output_root"] = str(root)
    target = root / params["name"]
    if target.exists():
        errors.append(
            error([*loc, "name"], f"'{target}' exists: pick another name", "output_exists")
        )
    for i, raw in enumerate(params.get("sources") or []):
        if problem := source_problem(Path(raw)):
            errors.append(error([*loc, "sources", i], problem, "not_text"))
    if errors:
        raise ConfigInvalid(errors)
    return params
