"""Held-out sets for evaluation: ``--eval_sets``/``--eval_prompts`` parsing and scoring windows.

Bits per character must compare runs whose tokenizers differ, so a set is not packed into blocks
that cut text and drop remainders. Its documents (in file order) are tokenized without special
tokens, each preceded by one separator (the packer's document separator, else BOS: the token
the model sees between documents in training), and laid end to end into one stream. Windows of ``block_size`` tokens
advance by ``block_size - 1``: a window's first token is the previous window's last, given as
context only, so **every token of every evaluated document is scored exactly once** and the
separators are never scored. The set's characters (bytes) are then exactly the characters
(UTF-8 bytes) of its documents, whatever the tokenizer: the same text gives the same count.

**The budget is text, not tokens**: a set is scored over a fixed prefix of its documents, at most
``max_documents`` documents and ``max_characters`` characters (the last document cut at a code
point), chosen before any tokenizer sees it. Every run that evaluates a set with the same budget
therefore scores exactly the same characters, whatever its tokenizer, block size or schedule,
and ``text_sha256`` (of the scored documents) lets the panel prove it. A set with neither limit
gets ``DEFAULT_EVAL_CHARACTERS``.

A character is one Unicode code point of a document as read (``count_characters``; the panel's
contract holds the same definition, and ``tests/contract/test_text.py`` proves the copies equal).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from worker.data.documents import find_files, iter_document_batches
from worker.data.encoding import document_separator
from worker.data.errors import DataError
from worker.data.formats import DEFAULT_TEXT_COLUMN
from worker.data.sources import check_column

FLAG = "--eval_sets"
PROMPTS_FLAG = "--eval_prompts"
ROLES = ("retain", "target")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")
#: Copies of ``cpt_contract/text.py`` (the training script imports nothing of the panel).
DEFAULT_EVAL_CHARACTERS = 20_000
CHARACTER_DEFINITION = (
    "one Unicode code point of a document as read (UTF-8 decoded, line breaks kept as the "
    "document separator option leaves them)"
)


def count_characters(text: str) -> int:
    """Characters of a text by ``CHARACTER_DEFINITION``: its Unicode code points."""
    return len(text)


@dataclass(frozen=True)
class Budget:
    """A prefix of a set's documents: at most so many documents and so many characters."""

    max_documents: int | None = None
    max_characters: int | None = None


@dataclass
class EvalSpec:
    name: str
    path: Path
    role: str | None = None
    budget: Budget = field(default_factory=Budget)
    flag: str = FLAG
    text_column: str = DEFAULT_TEXT_COLUMN


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
    #: sha256 of the scored documents (each UTF-8 encoded, then a NUL): equal text, equal digest.
    text_sha256: str | None = None
    budget: Budget = field(default_factory=Budget)

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
            "text_sha256": self.text_sha256,
            "max_documents": self.budget.max_documents,
            "max_characters": self.budget.max_characters,
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


KEYS = {"path", "role", "max_documents", "max_characters", "text_column"}


def _limit(spec: dict[str, Any], key: str, where: str) -> int | None:
    value = spec.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise DataError(f'{where}: "{key}" must be an integer >= 1, got {value!r}')
    return value


def parse_eval_sets(value: str) -> list[EvalSpec]:
    """``{name: path | {"path", "role", "max_documents", "max_characters"}}`` → specs (paths
    not yet checked)."""
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
            raise DataError(
                f'{where}: expected a path or {{"path", "role", "max_documents", "max_characters", "text_column"}}'
            )
        if "max_eval_samples" in spec:
            raise DataError(
                f'{where}: "max_eval_samples" counted token windows, which differ between '
                'tokenizers; give "max_documents" or "max_characters" (a prefix of the text)'
            )
        unknown = set(spec) - KEYS
        if unknown:
            raise DataError(f"{where}: unknown key(s) {sorted(unknown)}")
        path = spec.get("path")
        if not isinstance(path, str) or not path:
            raise DataError(f'{where}: "path" (a file or directory) is required')
        role = spec.get("role")
        if role is not None and role not in ROLES:
            raise DataError(f'{where}: "role" must be one of {ROLES}, got {role!r}')
        budget = Budget(_limit(spec, "max_documents", where), _limit(spec, "max_characters", where))
        column = check_column(spec.get("text_column", DEFAULT_TEXT_COLUMN), where)
        out.append(EvalSpec(name, Path(path), role, budget, where, column))
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


def separator_id(tokenizer: Any, separator: int | None = None) -> int:
    """The token before each document: the packer's separator (the base model's pretraining
    one, ``encoding.document_separator``), else BOS."""
    if separator is not None:
        return separator
    chosen = document_separator(tokenizer).id
    if chosen is not None:
        return chosen
    value = getattr(tokenizer, "bos_token_id", None)
    if value is not None:
        return int(value)
    raise DataError(
        f"{FLAG}: the tokenizer has neither an EOS nor a BOS token to separate documents"
    )


def _encode(tokenizer: Any, docs: list[str]) -> list[list[int]]:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if getattr(tokenizer, "is_fast", False) and backend is not None:
        return [e.ids for e in backend.encode_batch(docs, add_special_tokens=False)]
    ids = tokenizer(docs, add_special_tokens=False, return_attention_mask=False)["input_ids"]
    return [list(i) for i in ids]


def select_documents(
    files: list[Path],
    budget: Budget,
    keep_linebreaks: bool = True,
    flag: str = FLAG,
    txt_documents: str = "line",
    text_column: str = DEFAULT_TEXT_COLUMN,
) -> tuple[list[str], bool]:
    """The budget's prefix of the files' documents (empty ones skipped), and whether text was
    left out. Tokenizer-free: the same files and budget always give the same documents."""
    docs: list[str] = []
    chars = 0
    for path in files:
        for batch in iter_document_batches(
            path, keep_linebreaks, flag, txt_documents=txt_documents, text_column=text_column
        ):
            for doc in batch:
                if not doc:
                    continue
                if budget.max_documents is not None and len(docs) >= budget.max_documents:
                    return docs, True
                if budget.max_characters is not None:
                    room = budget.max_characters - chars
                    if room <= 0:
                        return docs, True
                    if count_characters(doc) > room:
                        docs.append(doc[:room])
                        return docs, True
                docs.append(doc)
                chars += count_characters(doc)
    return docs, False


def text_digest(docs: list[str]) -> str:
    h = hashlib.sha256()
    for doc in docs:
        h.update(doc.encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()


#: Documents tokenized per call (the selected prefix is in memory already; this bounds the ids).
ENCODE_BATCH = 256


def build_windows(
    name: str,
    files: list[Path],
    tokenizer: Any,
    block_size: int,
    budget: Budget,
    keep_linebreaks: bool = True,
    flag: str = FLAG,
    separator: int | None = None,
    txt_documents: str = "line",
    text_column: str = DEFAULT_TEXT_COLUMN,
) -> EvalWindows:
    """The set's scoring windows over the budget's documents (see the module docstring)."""
    docs, truncated = select_documents(
        files, budget, keep_linebreaks, flag, txt_documents, text_column
    )
    step = block_size - 1
    sep = separator_id(tokenizer, separator)
    stream: list[int] = []
    scored: list[bool] = []
    for i in range(0, len(docs), ENCODE_BATCH):
        for ids in _encode(tokenizer, docs[i : i + ENCODE_BATCH]):
            stream += [sep, *ids]
            scored += [False] + [True] * len(ids)
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
        documents=len(docs),
        characters=sum(count_characters(d) for d in docs),
        bytes=sum(len(d.encode("utf-8")) for d in docs),
        files=[str(p) for p in files],
        truncated=truncated,
        text_sha256=text_digest(docs),
        budget=budget,
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
        chars += count_characters(text)
        nbytes += len(text.encode("utf-8"))
    return EvalWindows(
        name, arr, attention, scored, documents=0, characters=chars, bytes=nbytes, exact=False
    )
