"""Documents → one numpy token stream, through the fast tokenizer's Rust batch encoder.

``tokenizer.backend_tokenizer.encode_batch_fast`` (no offsets, no attention mask, the GIL
released, documents spread over the tokenizer's own threads: ``TOKENIZERS_PARALLELISM``,
``RAYON_NUM_THREADS``) gives the same ids as ``tokenizer(texts)["input_ids"]``, which calls the
same encoder with the same special-token handling. A slow tokenizer falls back to that call with
``return_attention_mask=False``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import chain
from typing import Any

import numpy as np

from worker.data.errors import DataError

PACKINGS = ("eos", "classic")
_BYTE_PIECE = re.compile(r"<0x([0-9A-Fa-f]{2})>")


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """What a tokenizer does, as a hash: part of the cache key (unchanged since cache format 1)."""
    h = hashlib.sha256(type(tokenizer).__name__.encode())
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        h.update(backend.to_str().encode())
    else:
        h.update(json.dumps(sorted(tokenizer.get_vocab().items())).encode())
    h.update(repr(tokenizer("a b")["input_ids"]).encode())  # special-token handling
    return h.hexdigest()


def _byte_level_table() -> dict[str, int]:
    """GPT-2's byte → printable character map, inverted (byte-level BPE vocabularies)."""
    keep = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    chars = list(keep)
    extra = 0
    for b in range(256):
        if b not in keep:
            keep.append(b)
            chars.append(256 + extra)
            extra += 1
    return {chr(c): b for b, c in zip(keep, chars, strict=True)}


def _decoder_json(backend: Any) -> Any:
    """A tokenizers decoder as its tokenizer.json object (its own pickle state is that JSON)."""
    decoder = getattr(backend, "decoder", None)
    if decoder is None:
        return None
    try:
        return json.loads(decoder.__getstate__())
    except (TypeError, ValueError, AttributeError):
        return json.loads(backend.to_str()).get("decoder")


def _has_byte_level(node: Any) -> bool:
    """Whether a tokenizer.json decoder (possibly a Sequence) contains a ByteLevel step."""
    if isinstance(node, dict):
        return node.get("type") == "ByteLevel" or any(_has_byte_level(v) for v in node.values())
    if isinstance(node, list):
        return any(_has_byte_level(v) for v in node)
    return False


#: End-of-text tokens that pretraining corpora put between documents (GPT-2/SmolLM/Qwen,
#: Llama 3, Llama 2/Mistral, Gemma).
PRETRAINING_SEPARATORS = ("<|endoftext|>", "<|end_of_text|>", "</s>", "<eos>")


@dataclass(frozen=True)
class Separator:
    """The token put between documents when packing (and before each scored document)."""

    id: int | None
    token: str | None
    reason: str

    def info(self) -> dict[str, Any]:
        return {"id": self.id, "token": self.token, "reason": self.reason}


def _template_text(tokenizer: Any) -> str:
    template = getattr(tokenizer, "chat_template", None)
    if isinstance(template, dict):
        return "\n".join(str(v) for v in template.values())
    return template if isinstance(template, str) else ""


def document_separator(tokenizer: Any, config_eos_ids: Iterable[int] = ()) -> Separator:
    """The base model's pretraining document separator. An instruct tokenizer's EOS often ends a
    chat turn (SmolLM2-Instruct: ``<|im_end|>``, which its chat template writes after every
    message) while the model was pretrained with documents separated by another token
    (``<|endoftext|>``): packing with the chat EOS would teach the model that a document ends
    like a chat turn. So when the EOS appears in the chat template, a token of the model
    config's ``eos_token_id`` list, or else a known end-of-text token, that is in the vocabulary
    and not in the template is chosen instead."""
    eos_id = getattr(tokenizer, "eos_token_id", None)
    eos = getattr(tokenizer, "eos_token", None)
    if eos_id is None or not eos:
        return Separator(None, None, "the tokenizer has no EOS token")
    template = _template_text(tokenizer)
    if template and eos in template:
        vocab = tokenizer.get_vocab()
        by_id = {int(i): t for t, i in vocab.items()}
        candidates = [by_id[i] for i in config_eos_ids if i in by_id]
        for token in [*candidates, *PRETRAINING_SEPARATORS]:
            if token != eos and token in vocab and token not in template:
                return Separator(
                    int(vocab[token]),
                    token,
                    f"the tokenizer's EOS {eos} ends a chat turn (it is in the chat template); "
                    f"{token} is the pretraining document separator",
                )
        return Separator(
            int(eos_id), eos, f"the tokenizer's EOS {eos} (no other end-of-text token found)"
        )
    return Separator(int(eos_id), eos, f"the tokenizer's EOS {eos}")


def config_eos_ids(config: Any) -> list[int]:
    """A model config's ``eos_token_id`` as a list (it may be an int, a list or None)."""
    value = getattr(config, "eos_token_id", None)
    if value is None:
        return []
    return [int(v) for v in value] if isinstance(value, (list, tuple)) else [int(value)]


class Encoder:
    """A tokenizer bound to the engine: ids as numpy, the id dtype, the document separator
    (``eos_id``), clean block starts."""

    def __init__(self, tokenizer: Any, separator: Separator | None = None) -> None:
        self.tokenizer = tokenizer
        self.separator = separator if separator is not None else document_separator(tokenizer)
        backend = getattr(tokenizer, "backend_tokenizer", None)
        self.backend = backend if getattr(tokenizer, "is_fast", False) else None
        if self.backend is not None:
            # What tokenizer(texts) does first: no truncation or padding unless asked for.
            if self.backend.truncation is not None:
                self.backend.no_truncation()
            if self.backend.padding is not None:
                self.backend.no_padding()
        size = max(len(tokenizer), int(getattr(tokenizer, "vocab_size", 0) or 0))
        self.vocab_size = size
        self.dtype: type[np.unsignedinteger[Any]] | type[np.signedinteger[Any]] = (
            np.uint16 if size <= np.iinfo(np.uint16).max else np.int32
        )
        self.eos_id: int | None = self.separator.id
        self._fingerprint: str | None = None
        self._unsafe: np.ndarray | None = None

    @property
    def fingerprint(self) -> str:
        if self._fingerprint is None:
            fingerprint = tokenizer_fingerprint(self.tokenizer)
            if self.eos_id != getattr(self.tokenizer, "eos_token_id", None):
                # Blocks packed with another separator are other blocks (a cache key part).
                fingerprint += f"|separator={self.eos_id}"
            self._fingerprint = fingerprint
        return self._fingerprint

    def encode(self, docs: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(all ids of ``docs`` concatenated, each document's length)."""
        if self.backend is not None:
            fast = getattr(self.backend, "encode_batch_fast", self.backend.encode_batch)
            ids = [e.ids for e in fast(docs, add_special_tokens=True)]
        else:
            ids = self.tokenizer(docs, return_attention_mask=False)["input_ids"]
        lengths = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
        flat = np.fromiter(chain.from_iterable(ids), dtype=self.dtype, count=int(lengths.sum()))
        return flat, lengths

    def require_eos(self) -> int:
        if self.eos_id is None:
            raise DataError(
                "--packing eos: the tokenizer has no EOS token; use --packing classic "
                "or a tokenizer with an eos_token"
            )
        return self.eos_id

    @property
    def unsafe_start(self) -> np.ndarray:
        """Per token id: True where the token begins inside a UTF-8 character (a continuation
        byte: SentencePiece byte-fallback pieces ``<0x80>``..``<0xBF>``, or a byte-level BPE
        token whose first byte is one). A block starting there would decode to U+FFFD."""
        if self._unsafe is None:
            table = np.zeros(self.vocab_size, dtype=bool)
            if self.backend is not None:
                pieces = [self.backend.id_to_token(i) for i in range(self.vocab_size)]
            else:
                pieces = self.tokenizer.convert_ids_to_tokens(list(range(self.vocab_size)))
            byte_level = self.backend is not None and _has_byte_level(_decoder_json(self.backend))
            inverse = _byte_level_table() if byte_level else {}
            for i, piece in enumerate(pieces):
                if not piece:
                    continue
                m = _BYTE_PIECE.fullmatch(piece)
                if m:
                    first = int(m.group(1), 16)
                elif byte_level and piece[0] in inverse:
                    first = inverse[piece[0]]
                else:
                    continue
                table[i] = 0x80 <= first < 0xC0
            self._unsafe = table
        return self._unsafe
