"""The form's file picker: models, adapters, tokenizers and datasets found under the allowed
roots, each checked to be usable as what it is offered for (``problem``); the same check runs
at submit, so a path typed by hand is held to what the picker would have offered."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Literal

from cpt_contract import corpus
from cpt_contract.roots import PathRefused, Roots, open_regular

FileKind = Literal["model", "adapter", "tokenizer", "dataset"]

MAX_DEPTH = 4
MAX_DIRS = 5000
MAX_RESULTS = 500
_SKIP = {"node_modules", "__pycache__", "broker", "cache", ".git", "global_step", "logs"}
_TOKENIZER_FILES = {"tokenizer.json", "tokenizer.model", "tokenizer_config.json"}
#: Text files that belong to models and tokenizers, not to a corpus.
_NOT_TEXT = {"merges.txt", "vocab.txt", "added_tokens.txt", "requirements.txt", "README.txt"}
_WEIGHTS = re.compile(r"^(model|pytorch_model)(-\d+-of-\d+)?\.(safetensors|bin)$|\.index\.json$")
_ADAPTER_WEIGHTS = {"adapter_model.safetensors", "adapter_model.bin"}
#: What a run's folders hold (the panel's run dir, output dir, checkpoints): never a corpus.
_RUN_MARKERS = {"events.jsonl", "cpt_run.json", "trainer_state.json", "ds_config.json"}


def _hf_config(path: Path, roots: Roots | None) -> bool:
    """An HF model's config.json names its model type (a run's config.json does not). Opened
    as a regular file under the roots, checked on its descriptor: a link to a file elsewhere
    is not read."""
    try:
        with open_regular(path / "config.json", roots) as fh:
            text = fh.read(200_000).decode("utf-8", errors="replace")
    except (OSError, PathRefused):
        return False
    return '"model_type"' in text or '"architectures"' in text


def regular_files(entries: list[os.DirEntry[str]], roots: Roots | None) -> set[str]:
    """The names of a directory's regular files; a link counts only when it leads to a regular
    file under the roots (never a FIFO, a device, or a file elsewhere)."""
    names = set()
    for e in entries:
        if e.is_symlink():
            real = os.path.realpath(e.path)
            if (roots is not None and not roots.admits(real)) or not os.path.isfile(real):
                continue
        elif not e.is_file(follow_symlinks=False):
            continue
        names.add(e.name)
    return names


def problem(
    kind: FileKind, path: Path, files: set[str] | None = None, roots: Roots | None = None
) -> str | None:
    """Why the directory ``path`` is not usable as ``kind`` (None: it is)."""
    if files is None:
        try:
            with os.scandir(path) as it:
                files = regular_files(list(it), roots)
        except OSError as exc:
            return f"cannot read {path}: {exc.strerror}"
    if kind == "model":
        if "adapter_config.json" in files:
            return "is a LoRA adapter, not a model: give it as method.peft_path"
        if "config.json" not in files or not _hf_config(path, roots):
            return "is not a Hugging Face model directory (no config.json with a model_type)"
        if not any(_WEIGHTS.search(f) for f in files):
            return "has a config.json but no weights (model*.safetensors or pytorch_model*.bin)"
        return None
    if kind == "adapter":
        if "adapter_config.json" not in files or not files & _ADAPTER_WEIGHTS:
            return (
                "is not a LoRA adapter (adapter_config.json and adapter_model.safetensors): "
                "pick a checkpoint of a LoRA run"
            )
        return None
    if kind == "tokenizer":
        return None if files & _TOKENIZER_FILES else "has no tokenizer files (tokenizer.json…)"
    if files & _RUN_MARKERS or "config.json" in files:
        return "is a run's or a model's folder, not a dataset: pick a directory of text files"
    if files & _TOKENIZER_FILES:
        return "is a tokenizer's folder, not a dataset: pick a directory of text files"
    if not corpus.is_saved_dataset(files) and not any(
        corpus.is_corpus_name(f) and f not in _NOT_TEXT for f in files
    ):
        return (
            f"holds no corpus files ({', '.join(corpus.SUFFIXES)}) and is no dataset saved "
            "by datasets (state.json + .arrow)"
        )
    return None


#: The panel's own converted models say what they are here (``worker/demo_assets.py``).
_ASSET_MARKER = ".cpt-assets.json"


def _asset_label(current: Path, files: set[str]) -> str | None:
    """A converted model's own description (SmolLM2-135M-Instruct dequantised from a Q4_1
    GGUF), so the picker never offers it as something else."""
    if _ASSET_MARKER not in files:
        return None
    try:
        with open_regular(current / _ASSET_MARKER) as fh:
            data = json.loads(fh.read(4096))
    except (OSError, ValueError):
        return None
    label = data.get("label") if isinstance(data, dict) else None
    return str(label)[:200] if isinstance(label, str) and label else None


def find(roots: Roots, kind: FileKind) -> list[dict[str, str]]:
    """Breadth-first, bounded in depth and in directories visited (roots can be huge)."""
    found: list[dict[str, str]] = []
    seen: set[Path] = set()
    visited = 0
    for root in roots:
        queue: list[tuple[Path, int]] = [(root, 0)]
        while queue and visited < MAX_DIRS and len(found) < MAX_RESULTS:
            current, depth = queue.pop(0)
            if current in seen or not roots.admits(current):
                continue
            seen.add(current)
            visited += 1
            try:
                with os.scandir(current) as it:
                    entries = list(it)
            except OSError:
                continue
            files = regular_files(entries, roots)
            if problem(kind, current, files, roots) is None:
                label = str(current.relative_to(root)) if current != root else current.name
                said = _asset_label(current, files) if kind == "model" else None
                if said:
                    label = f"{label} · {said}"
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
