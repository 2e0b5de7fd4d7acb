"""The form's file picker: models, tokenizers and datasets found under the allowed roots."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

FileKind = Literal["model", "tokenizer", "dataset"]

MAX_DEPTH = 4
MAX_DIRS = 5000
MAX_RESULTS = 500
_SKIP = {"node_modules", "__pycache__", "broker", "cache", ".git", "global_step"}
_TOKENIZER_FILES = {"tokenizer.json", "tokenizer.model", "tokenizer_config.json"}
#: Text files that belong to models and tokenizers, not to a corpus.
_NOT_TEXT = {"merges.txt", "vocab.txt", "added_tokens.txt", "requirements.txt", "README.txt"}


def _matches(kind: FileKind, files: set[str]) -> bool:
    if kind == "model":
        return "config.json" in files
    if kind == "tokenizer":
        return bool(files & _TOKENIZER_FILES)
    if "config.json" in files or files & _TOKENIZER_FILES:
        return False  # a model or tokenizer dir with a vocab.txt is not a dataset
    return any(f.endswith((".txt", ".jsonl")) and f not in _NOT_TEXT for f in files)


def find(roots: list[Path], kind: FileKind) -> list[dict[str, str]]:
    """Breadth-first, bounded in depth and in directories visited (roots can be huge)."""
    found: list[dict[str, str]] = []
    seen: set[Path] = set()
    visited = 0
    for root in roots:
        queue: list[tuple[Path, int]] = [(root, 0)]
        while queue and visited < MAX_DIRS and len(found) < MAX_RESULTS:
            current, depth = queue.pop(0)
            if current in seen:
                continue
            seen.add(current)
            visited += 1
            try:
                with os.scandir(current) as it:
                    entries = list(it)
            except OSError:
                continue
            files = {e.name for e in entries if e.is_file()}
            if _matches(kind, files):
                label = str(current.relative_to(root)) if current != root else current.name
                found.append({"path": str(current), "label": label, "kind": kind})
            if depth >= MAX_DEPTH:
                continue
            for e in sorted(entries, key=lambda e: e.name):
                # is_dir(follow_symlinks=False): a symlink could lead outside the root.
                if (
                    e.is_dir(follow_symlinks=False)
                    and not e.name.startswith(".")
                    and e.name not in _SKIP
                    and not e.name.startswith("global_step")
                ):
                    queue.append((Path(e.path), depth + 1))
    return found
