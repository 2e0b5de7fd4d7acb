"""Finding out what a tokenizer directory holds, and loading it as a transformers tokenizer."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any, Literal

from worker.tokenizer.errors import TokenizerInputError
from worker.tokenizer.sp_proto import model_type_name, read_model_file

Family = Literal["sentencepiece", "byte_level_bpe"]

#: Files beside the vocabulary that carry the tokenizer's behaviour (special tokens, BOS/EOS,
#: chat template, maximum length, class); an extension copies them from its base.
SIDE_FILES = (
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "chat_template.jinja",
    "chat_template.json",
)


def types_in(node: Any) -> list[str]:
    """Every ``type`` in a tokenizer.json component (Sequences included)."""
    if isinstance(node, dict):
        found = [str(node["type"])] if "type" in node else []
        for value in node.values():
            found.extend(types_in(value))
        return found
    if isinstance(node, list):
        return [t for item in node for t in types_in(item)]
    return []


def read_tokenizer_json(path: Path, argument: str) -> dict[str, Any]:
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TokenizerInputError(argument, f"{path} is not a tokenizer.json ({exc})") from None
    if not isinstance(spec, dict) or not isinstance(spec.get("model"), dict):
        raise TokenizerInputError(argument, f"{path} is not a tokenizer.json (no model)")
    return spec


def is_byte_level(spec: dict[str, Any]) -> bool:
    return spec["model"].get("type") == "BPE" and "ByteLevel" in types_in(spec.get("pre_tokenizer"))


def detect_family(path: Path, argument: str) -> Family:
    """``sentencepiece`` (a ``tokenizer.model``) or ``byte_level_bpe`` (a byte-level tokenizer.json)."""
    path = Path(path)
    if not path.is_dir():
        raise TokenizerInputError(argument, f"{path} is not a directory")
    if (path / "tokenizer.model").is_file():
        read_model_file(path / "tokenizer.model", argument)
        return "sentencepiece"
    if (path / "tokenizer.json").is_file():
        spec = read_tokenizer_json(path / "tokenizer.json", argument)
        if is_byte_level(spec):
            return "byte_level_bpe"
        kind = spec["model"].get("type")
        raise TokenizerInputError(
            argument,
            f"{path}/tokenizer.json is a {kind} model without byte-level pre-tokenization and "
            "there is no tokenizer.model: neither a SentencePiece nor a byte-level BPE tokenizer",
        )
    raise TokenizerInputError(
        argument,
        f"{path} is neither a SentencePiece tokenizer (tokenizer.model) nor a byte-level BPE "
        "tokenizer (tokenizer.json)",
    )


def _quiet_transformers() -> None:
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()


def load_tokenizer(path: str | Path, argument: str) -> Any:
    """A transformers tokenizer from a tokenizer directory, a model directory or a ``.model`` file.

    A directory with only a ``tokenizer.model`` (what ``train`` writes) is read as a
    Llama-style SentencePiece tokenizer.
    """
    _quiet_transformers()
    path = Path(path)
    if path.is_file() and path.suffix == ".model":
        with tempfile.TemporaryDirectory(prefix="cpt-tok-") as tmp:
            shutil.copy(path, Path(tmp) / "tokenizer.model")
            return load_tokenizer(tmp, argument)
    if not path.is_dir():
        raise TokenizerInputError(argument, f"{path} is neither a directory nor a .model file")
    has_config = (path / "tokenizer_config.json").is_file() or (path / "tokenizer.json").is_file()
    try:
        if has_config:
            from transformers import AutoTokenizer

            return AutoTokenizer.from_pretrained(str(path))
        if (path / "tokenizer.model").is_file():
            return _load_bare_sentencepiece(path, argument)
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise TokenizerInputError(argument, f"{path}: cannot load a tokenizer ({exc})") from None
    raise TokenizerInputError(argument, f"{path} holds no tokenizer files")


def _load_bare_sentencepiece(path: Path, argument: str) -> Any:
    kind = model_type_name(read_model_file(path / "tokenizer.model", argument))
    if kind in ("word", "char"):
        # The fast conversion mishandles word/char models; this class runs SentencePiece itself.
        from transformers import BertGenerationTokenizer

        return BertGenerationTokenizer(vocab_file=str(path / "tokenizer.model"))
    from transformers import LlamaTokenizer

    return LlamaTokenizer.from_pretrained(str(path))


def backend_of(tokenizer: Any) -> Any | None:
    """The ``tokenizers.Tokenizer`` behind a transformers tokenizer, or None (a slow one)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    return backend if backend is not None and hasattr(backend, "model") else None


def tokenizer_is_byte_level(tokenizer: Any) -> bool:
    known = getattr(tokenizer, "is_byte_level", None)  # fast.FastTokenizer knows
    if isinstance(known, bool):
        return known
    backend = backend_of(tokenizer)
    if backend is None:
        return False
    return is_byte_level(json.loads(backend.to_str()))


def copy_side_files(base: Path, dest: Path) -> list[str]:
    """Copy the base's tokenizer side files (config, special tokens, chat template) to ``dest``."""
    copied = []
    for name in SIDE_FILES:
        if (base / name).is_file():
            shutil.copy(base / name, dest / name)
            copied.append(name)
    return copied
