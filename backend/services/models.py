"""The Models page: every model under the allowed roots with what a user decides by.

All of it is read from the files, never guessed: the architecture and vocabulary from
``config.json``; parameters, dtypes and whether the head is tied from the safetensors headers
(the tensors' shapes, the first 8 bytes + JSON header of each file; no weights are read);
the tokenizer's size from ``tokenizer.json``; the size on disk; where it came from
(``cpt_source.json`` a download or an import wrote, or a run's merge directory).
"""

from __future__ import annotations

import json
import struct
from math import prod
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from backend.services import files
from backend.services.estimates import tokenizer_vocab
from cpt_contract.settings import Settings

#: ``cpt_source.json``: written by the download and import tools beside the model's files.
SOURCE_FILE = "cpt_source.json"
MAX_HEADER = 100 * 1024 * 1024


class ModelInfo(BaseModel):
    path: str
    label: str
    architecture: str | None
    model_type: str | None
    params: int | None
    vocab_size: int | None
    tokenizer_vocab_size: int | None
    tied_embeddings: bool | None
    dtypes: list[str]
    size_bytes: int
    #: ``hub`` (+ hub_id, revision, commit), ``import`` (+ file), ``merge`` (+ run_id,
    #: checkpoint) or ``local``.
    source: dict[str, Any]


def _json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def safetensors_header(path: Path) -> dict[str, Any]:
    with path.open("rb") as fh:
        (n,) = struct.unpack("<Q", fh.read(8))
        if n > MAX_HEADER:
            raise ValueError(f"{path.name}: header of {n} bytes")
        header = json.loads(fh.read(n))
    return header if isinstance(header, dict) else {}


def _tensors(model: Path) -> dict[str, dict[str, Any]] | None:
    out: dict[str, dict[str, Any]] = {}
    shards = sorted(model.glob("*.safetensors"))
    if not shards:
        return None
    try:
        for shard in shards:
            out.update({k: v for k, v in safetensors_header(shard).items() if k != "__metadata__"})
    except (OSError, ValueError, struct.error):
        return None
    return out


def _source(model: Path, settings: Settings) -> dict[str, Any]:
    recorded = _json(model / SOURCE_FILE)
    if recorded.get("hub_id"):
        keys = ("hub_id", "revision", "commit", "endpoint", "downloaded_at")
        return {"kind": "hub", **{k: recorded.get(k) for k in keys}}
    if recorded.get("imported_from"):
        return {
            "kind": "import",
            "file": recorded["imported_from"],
            "format": recorded.get("format"),
        }
    runs = settings.runs_dir.resolve()
    try:
        rel = model.resolve().relative_to(runs)
    except ValueError:
        return {"kind": "local"}
    parts = rel.parts
    if len(parts) >= 3 and parts[1] == "merged":
        return {"kind": "merge", "run_id": parts[0], "checkpoint": parts[2]}
    return {"kind": "local"}


def describe(model: Path, settings: Settings, label: str | None = None) -> ModelInfo:
    config = _json(model / "config.json")
    text = config.get("text_config") if isinstance(config.get("text_config"), dict) else config
    archs = config.get("architectures")
    tensors = _tensors(model)
    params = dtypes = None
    tied = text.get("tie_word_embeddings") if isinstance(text, dict) else None
    if tensors is not None:
        params = sum(prod(t.get("shape") or [1]) for t in tensors.values())
        dtypes = sorted({str(t.get("dtype")) for t in tensors.values()})
        heads = [k for k in tensors if k.endswith("lm_head.weight")]
        if any(k.endswith("embed_tokens.weight") for k in tensors):
            tied = not heads  # a tied head is stored once, as the embedding
    vocab = text.get("vocab_size") if isinstance(text, dict) else None
    return ModelInfo(
        path=str(model),
        label=label or model.name,
        architecture=archs[0] if isinstance(archs, list) and archs else None,
        model_type=config.get("model_type"),
        params=params,
        vocab_size=vocab if isinstance(vocab, int) else None,
        tokenizer_vocab_size=tokenizer_vocab(str(model)),
        tied_embeddings=tied if isinstance(tied, bool) else None,
        dtypes=dtypes or [],
        size_bytes=sum(p.stat().st_size for p in model.rglob("*") if p.is_file()),
        source=_source(model, settings),
    )


def list_models(settings: Settings) -> list[ModelInfo]:
    return [
        describe(Path(f["path"]), settings, f["label"]) for f in files.find(settings.roots, "model")
    ]
