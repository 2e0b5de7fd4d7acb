"""Held-out sets for evaluation: ``--eval_sets``/``--eval_prompts`` parsing and scoring windows.

Bits per character must compare runs whose tokenizers differ, so a set is not packed into blocks
that cut text and drop remainders. Its documents (whole, in file order) are tokenized without
special tokens, each preceded by one separator (EOS, else BOS: the token the model sees between
documents in training), and laid end to end into one stream. Windows of ``block_size`` tokens
advance by ``block_size - 1``: a window's first token is the previous window's last, given as
context only, so **every token of every evaluated document is scored exactly once** and the
separators are never scored. The set's characters (bytes) are then exactly the characters
(UTF-8 bytes) of its documents, whatever the tokenizer: the same text gives the same count.

A budget of windows stops the set at a document boundary; only the first document that does not
fit whole is cut, at a token, and its characters are counted up to that token's end offset
(fast tokenizers' offsets; a slow tokenizer drops that document instead).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from worker.data.documents import find_files, iter_document_batches
from worker.data.errors import DataError

FLAG = "--eval_sets"
PROMPTS_FLAG = "--eval_prompts"
ROLES = ("retain", "target")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")


@dataclass
class EvalSpec:
    name: str
    path: Path
    role: str | None = None
    max_eval_samples: int | None = None
    flag: str = FLAG


@dataclass
class EvalWindows:
    """A set ready to score: ``input_ids`` and ``scored`` (which next-token targets count)."""

    name: str
    input_ids: np.ndarray  # (n, block_size) int64; padding is 0 with attention 0
    attention: np.ndarray  # (n, block_size) bool
    scored: np.ndarray  # (n, block_size) bool: position j is a scored target (j >= 1)
    documents: int = 0
    characters: int = 0
    bytes: int = 0
    role: str | None = None
    path: str | None = None
    files: list[str] = field(default_factory=list)
    truncated: bool = False
    #: False when the characters come from decoding packed blocks (validation split).
    exact: bool = True

    @property
    def tokens(self) -> int:
        return int(self.scored.sum())

    def info(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "role": self.role,
            "path": self.path,
            "documents": self.documents,
            "characters": self.characters,
            "bytes": self.bytes,
            "tokens": self.tokens,
            "windows": len(self.input_ids),
            "truncated": self.truncated,
            "exact": self.exact,
        }


def _load_json(value: str, flag: str) -> Any:
    text = value
    if not value.lstrip().startswith("{") and Path(value).is_file():
        try:
            text = Path(value).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise DataError(f"{flag}: cannot read {value}: {exc}") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{flag}: not JSON ({exc.msg} at char {exc.pos})") from exc


def _check_name(name: Any, flag: str) -> str:
    if not isinstance(name, str) or not NAME.match(name):
        raise DataError(
            f"{flag}: set name {name!r} must be 1-32 letters, digits, '_', '.' or '-' "
            "(it becomes part of the metric name eval_<name>_bits_per_char)"
        )
    return name


def parse_eval_sets(value: str) -> list[EvalSpec]:
    """``{name: path | {"path", "role", "max_eval_samples"}}`` → specs (paths not yet checked)."""
    items = _load_json(value, FLAG)
    if not isinstance(items, dict) or not items:
        raise DataError(f'{FLAG}: expected a JSON object {{"name": "path", ...}}')
    out = []
    for name, spec in items.items():
        _check_name(name, FLAG)
        where = f"{FLAG} ({name})"
        if isinstance(spec, str):
            spec = {"path": spec}
        if not isinstance(spec, dict):
            raise DataError(f'{where}: expected a path or {{"path", "role", "max_eval_samples"}}')
        unknown = set(spec) - {"path", "role", "max_eval_samples"}
        if unknown:
            raise DataError(f"{where}: unknown key(s) {sorted(unknown)}")
        path = spec.get("path")
        if not isinstance(path, str) or not path:
            raise DataError(f'{where}: "path" (a file or directory) is required')
        role = spec.get("role")
        if role is not None and role not in ROLES:
            raise DataError(f'{where}: "role" must be one of {ROLES}, got {role!r}')
        cap = spec.get("max_eval_samples")
        if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 1):
            raise DataError(f'{where}: "max_eval_samples" must be an integer >= 1, got {cap!r}')
        out.append(EvalSpec(name, Path(path), role, cap, where))
    return out


def parse_eval_prompts(value: str) -> dict[str, list[str]]:
    items = _load_json(value, PROMPTS_FLAG)
    if not isinstance(items, dict):
        raise DataError(f'{PROMPTS_FLAG}: expected a JSON object {{"group": ["prompt", ...]}}')
    out: dict[str, list[str]] = {}
    for name, prompts in items.items():
        _check_name(name, PROMPTS_FLAG)
        if not isinstance(prompts, list) or not all(isinstance(p, str) and p for p in prompts):
            raise DataError(f"{PROMPTS_FLAG} ({name}): expected a list of non-empty strings")
        out[name] = prompts
    return out


def spec_files(spec: EvalSpec) -> list[Path]:
    if not spec.path.exists():
        raise DataError(f"{spec.flag}: {spec.path} does not exist")
    return find_files(spec.path, spec.flag)


def separator_id(tokenizer: Any) -> int:
    for attr in ("eos_token_id", "bos_token_id"):
        value = getattr(tokenizer, attr, None)
        if value is not None:
            return int(value)
    raise DataError(
        f"{FLAG}: the tokenizer has neither an EOS nor a BOS token to separate documents"
    )


def _encode(
    tokenizer: Any, docs: list[str]
) -> list[tuple[list[int], list[tuple[int, int]] | None]]:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if getattr(tokenizer, "is_fast", False) and backend is not None:
        return [(e.ids, e.offsets) for e in backend.encode_batch(docs, add_special_tokens=False)]
    ids = tokenizer(docs, add_special_tokens=False, return_attention_mask=False)["input_ids"]
    return [(list(i), None) for i in ids]


def build_windows(
    name: str,
    files: list[Path],
    tokenizer: Any,
    block_size: int,
    max_windows: int | None,
    keep_linebreaks: bool = True,
    flag: str = FLAG,
) -> EvalWindows:
    """The set's scoring windows (see the module docstring); at most ``max_windows``."""
    step = block_size - 1
    # k windows hold a stream of 1 + k·step tokens (separators included).
    capacity = None if max_windows is None else max_windows * step + 1
    sep = separator_id(tokenizer)
    stream: list[int] = []
    scored: list[bool] = []
    docs_n = chars = nbytes = 0
    truncated = False
    for path in files:
        for docs in iter_document_batches(path, keep_linebreaks, flag):
            for doc, (ids, offsets) in zip(docs, _encode(tokenizer, docs), strict=True):
                if not ids:
                    continue
                room = None if capacity is None else capacity - len(stream)
                if room is not None and len(ids) + 1 > room:
                    truncated = True
                    keep = room - 1
                    if keep > 0 and offsets is not None:
                        text = doc[: offsets[keep - 1][1]]
                        stream += [sep, *ids[:keep]]
                        scored += [False] + [True] * keep
                        docs_n += 1
                        chars += len(text)
                        nbytes += len(text.encode("utf-8"))
                    break
                stream += [sep, *ids]
                scored += [False] + [True] * len(ids)
                docs_n += 1
                chars += len(doc)
                nbytes += len(doc.encode("utf-8"))
            if truncated:
                break
        if truncated:
            break
    ids_arr = np.asarray(stream, dtype=np.int64)
    mask_arr = np.asarray(scored, dtype=bool)
    n = max(0, -(-(len(ids_arr) - 1) // step)) if len(ids_arr) > 1 else 0
    input_ids = np.zeros((n, block_size), dtype=np.int64)
    attention = np.zeros((n, block_size), dtype=bool)
    target = np.zeros((n, block_size), dtype=bool)
    for k in range(n):
        piece = ids_arr[k * step : k * step + block_size]
        input_ids[k, : len(piece)] = piece
        attention[k, : len(piece)] = True
        target[k, 1 : len(piece)] = mask_arr[k * step + 1 : k * step + len(piece)]
    return EvalWindows(
        name,
        input_ids,
        attention,
        target,
        documents=docs_n,
        characters=chars,
        bytes=nbytes,
        files=[str(p) for p in files],
        truncated=truncated,
    )


def packed_windows(name: str, blocks: Any, tokenizer: Any) -> EvalWindows:
    """The ``validation_split_percentage`` blocks (packed training blocks held out): every
    token after the first is scored; characters come from decoding them, so they are close to,
    not exactly, the text's (a block may cut a character; normalisation is not undone)."""
    arr = np.stack([np.asarray(b, dtype=np.int64) for b in blocks]) if len(blocks) else None
    if arr is None:
        arr = np.zeros((0, 1), dtype=np.int64)
    attention = np.ones(arr.shape, dtype=bool)
    scored = np.ones(arr.shape, dtype=bool)
    scored[:, 0] = False
    special = set(getattr(tokenizer, "all_special_ids", []) or [])
    chars = nbytes = 0
    for row in arr:
        ids = [int(t) for t in row[1:] if int(t) not in special]
        text = tokenizer.decode(ids, skip_special_tokens=True)
        chars += len(text)
        nbytes += len(text.encode("utf-8"))
    return EvalWindows(
        name, arr, attention, scored, documents=0, characters=chars, bytes=nbytes, exact=False
    )
