"""A byte-level BPE tokenizer directory read with ``tokenizers`` alone (no transformers).

Importing transformers and building its tokenizer twice cost the extension job about half of
its time; the job's byte-level path (merge, fertility, reachability, examples) needs only the
``tokenizer.json`` model, so it reads that. ``FastTokenizer`` offers the few calls of a
transformers fast tokenizer that the engine uses, with the same results (transformers' fast
tokenizers call this backend the same way). What transformers adds on top (special tokens map,
chat template, BOS/EOS flags, class) comes from the side files, which an extension copies
byte for byte; ``side_differences`` checks that.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, overload

from worker.tokenizer.errors import TokenizerInputError
from worker.tokenizer.loading import SIDE_FILES, types_in

#: The BPE model's options; an extension keeps them (and changes only vocabulary and merges).
MODEL_OPTIONS = (
    "dropout",
    "unk_token",
    "continuing_subword_prefix",
    "end_of_word_suffix",
    "fuse_unk",
    "byte_fallback",
    "ignore_merges",
)


class FastTokenizer:
    """The calls of a transformers fast tokenizer that fertility, checks and examples use."""

    def __init__(self, path: str | Path, argument: str = "--tokenizer") -> None:
        from tokenizers import Tokenizer

        self.path = Path(path)
        try:
            self.backend_tokenizer = Tokenizer.from_file(str(self.path / "tokenizer.json"))
        except Exception as exc:  # the Rust side raises plain Exception on a bad file
            raise TokenizerInputError(
                argument, f"{path}: cannot load tokenizer.json ({exc})"
            ) from None
        pre = self.backend_tokenizer.pre_tokenizer
        #: Fertility's partial-character rule (what ``loading.is_byte_level`` reads from JSON).
        self.is_byte_level = type(self.backend_tokenizer.model).__name__ == "BPE" and (
            pre is not None and "ByteLevel" in types_in(json.loads(pre.__getstate__()))
        )
        unk = getattr(self.backend_tokenizer.model, "unk_token", None)
        self.unk_token_id = self.backend_tokenizer.token_to_id(unk) if unk else None

    def __len__(self) -> int:
        return int(self.backend_tokenizer.get_vocab_size(with_added_tokens=True))

    def __call__(
        self, text: str | Sequence[str], add_special_tokens: bool = True
    ) -> dict[str, Any]:
        if isinstance(text, str):
            return {"input_ids": self.encode(text, add_special_tokens=add_special_tokens)}
        encoded = self.backend_tokenizer.encode_batch_fast(
            list(text), add_special_tokens=add_special_tokens
        )
        return {"input_ids": [e.ids for e in encoded]}

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        return list(self.backend_tokenizer.encode(text, add_special_tokens=add_special_tokens).ids)

    def decode(self, ids: Sequence[int]) -> str:
        return str(self.backend_tokenizer.decode(list(ids), skip_special_tokens=False))

    @overload
    def convert_ids_to_tokens(self, ids: int) -> str | None: ...
    @overload
    def convert_ids_to_tokens(self, ids: Sequence[int]) -> list[str | None]: ...
    def convert_ids_to_tokens(self, ids: int | Sequence[int]) -> str | list[str | None] | None:
        if isinstance(ids, int):
            return self.backend_tokenizer.id_to_token(ids)
        return [self.backend_tokenizer.id_to_token(i) for i in ids]

    @property
    def added_tokens_decoder(self) -> dict[int, Any]:
        return dict(self.backend_tokenizer.get_added_tokens_decoder())


_loaded: dict[tuple[int, int, int, int], FastTokenizer] = {}


def load_fast(path: str | Path, argument: str) -> FastTokenizer:
    """The directory's tokenizer, read once per process (the job measures and checks the same
    two tokenizers several times; a 50k-token tokenizer.json takes a tenth of a second)."""
    try:
        stat = (Path(path) / "tokenizer.json").stat()
    except OSError:
        return FastTokenizer(path, argument)  # its error names the problem
    # The file, not its name: an output built in a temporary directory and renamed into place
    # is the same file.
    key = (stat.st_dev, stat.st_ino, stat.st_mtime_ns, stat.st_size)
    if key not in _loaded:
        _loaded[key] = FastTokenizer(path, argument)
    return _loaded[key]


def _state(component: Any) -> Any:
    return None if component is None else component.__getstate__()


def side_differences(
    base: str | Path, extended: str | Path, base_tok: FastTokenizer, ext_tok: FastTokenizer
) -> list[str]:
    """What an extension must keep from its base and does not: the side files (config, special
    tokens, chat template) byte for byte, and every part of the tokenizer but the model's
    vocabulary and merges (normalizer, pre-tokenizer, post-processor, decoder, added tokens,
    the BPE model's options). Empty: the extension behaves as its base everywhere but in the
    new merges."""
    base, extended = Path(base), Path(extended)
    problems = []
    for name in SIDE_FILES:
        a, b = base / name, extended / name
        if a.is_file() != b.is_file():
            problems.append(f"{name} {'missing' if a.is_file() else 'added'} in the extension")
        elif a.is_file() and a.read_bytes() != b.read_bytes():
            problems.append(f"{name} differs from the base's")
    x, y = base_tok.backend_tokenizer, ext_tok.backend_tokenizer
    for part in ("normalizer", "pre_tokenizer", "post_processor", "decoder"):
        if _state(getattr(x, part)) != _state(getattr(y, part)):
            problems.append(f"the {part.replace('_', '-')} differs from the base's")
    added = {i: (t.content, t.special) for i, t in x.get_added_tokens_decoder().items()}
    if added != {i: (t.content, t.special) for i, t in y.get_added_tokens_decoder().items()}:
        problems.append("the added (special) tokens differ from the base's")
    for option in MODEL_OPTIONS:
        if getattr(x.model, option, None) != getattr(y.model, option, None):
            problems.append(f"the model's {option} differs from the base's")
    return problems
