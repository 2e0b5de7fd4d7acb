"""Rows for new tokens when the vocabulary grows (``--new_embeddings_init``).

- ``subtoken_mean`` (default): each new token's input row, and its output row when the head is
  not tied, is the mean of the rows of the pieces the *base* tokenizer splits the token's text
  into (FVT / EEVE style). The model then starts out reading a new token roughly as it read
  the pieces it replaces, instead of as an average word.
- ``mean_resizing``: transformers' default (rows drawn around the mean of the old rows).
- ``random``: normal with the model's ``initializer_range``.

A tied model stays tied (the one matrix is set once).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

logger = logging.getLogger("pretrain")

CHOICES = ("subtoken_mean", "mean_resizing", "random")
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "tokenizer_config.json", "vocab.json")


def embedding_rows(weight: Any) -> int:
    """Rows of an embedding matrix; under ZeRO-3 a partitioned one has its full shape in ds_shape."""
    shape = getattr(weight, "ds_shape", None)
    return int(shape[0] if shape is not None else weight.shape[0])


def load_base_tokenizer(model_name_or_path: str | None, **kwargs: Any) -> Any | None:
    """The model directory's own tokenizer, or None when it has none."""
    if not model_name_or_path:
        return None
    path = Path(model_name_or_path)
    if path.is_dir() and not any((path / n).is_file() for n in _TOKENIZER_FILES):
        return None
    from worker.training.hf_tokenizer import auto_tokenizer

    try:
        return auto_tokenizer(model_name_or_path, **kwargs)
    except (OSError, ValueError, TypeError, KeyError) as exc:
        logger.warning("cannot load the tokenizer of %s: %s", model_name_or_path, exc)
        return None


def _backend(tokenizer: Any) -> Any | None:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    return backend if backend is not None and hasattr(backend, "model") else None


def _same_alphabet(tokenizer: Any, base: Any) -> bool:
    """Token strings of ``tokenizer`` can be fed to ``base``'s model (an extension of it)."""
    a, b = _backend(tokenizer), _backend(base)
    if a is None or b is None:
        return False
    return type(a.model) is type(b.model) and str(a.pre_tokenizer) == str(b.pre_tokenizer)


def subtoken_ids(
    tokenizer: Any, base: Any, ids: Sequence[int], base_rows: int
) -> dict[int, list[int]]:
    """For each new id, the base tokenizer's ids for that token's text (maybe empty).

    A token of an extension is split by the base's own model (its string is already in the
    base's alphabet: ``▁ಕನ``, ``Ġä½łå¥½``); otherwise, and for added special tokens, its decoded
    text is encoded by the base without special tokens.
    """
    added = {int(i): t.content for i, t in getattr(tokenizer, "added_tokens_decoder", {}).items()}
    model_level = _same_alphabet(tokenizer, base)
    ext_backend, base_backend = _backend(tokenizer), _backend(base)
    out: dict[int, list[int]] = {}
    for token_id in ids:
        pieces: list[int] = []
        if token_id in added:
            pieces = base.encode(added[token_id], add_special_tokens=False)
        elif model_level and ext_backend is not None and base_backend is not None:
            token = ext_backend.id_to_token(token_id)
            if token is not None:
                pieces = [t.id for t in base_backend.model.tokenize(token)]
        if not pieces:
            text = tokenizer.decode([token_id])
            pieces = base.encode(text, add_special_tokens=False) if text else []
        out[token_id] = [p for p in pieces if 0 <= p < base_rows]
    return out


@contextlib.contextmanager
def _writable(params: list[Any]) -> Iterator[bool]:
    """Full parameters to write (gathered under ZeRO-3); yields whether this rank writes."""
    from transformers.integrations import is_deepspeed_zero3_enabled

    if is_deepspeed_zero3_enabled():
        import deepspeed
        import torch.distributed as dist

        with deepspeed.zero.GatheredParameters(params, modifier_rank=0):
            yield dist.get_rank() == 0
    else:
        yield True


def resize_embeddings(
    model: Any,
    tokenizer: Any,
    new_vocab: int,
    method: str,
    base_tokenizer: Any | None = None,
    first_new: int | None = None,
) -> dict[str, Any]:
    """Give the new tokens ``[first_new, new_vocab)`` rows and set them by ``method``.

    ``first_new`` is the base tokenizer's size (default: the matrix's rows). A matrix padded past
    its tokenizer (Qwen's 151,936 rows for 151,665 tokens) has rows no token uses: the new
    tokens take those first (*reused*), and the matrix grows only past them (*grown*). A tied
    model stays tied (transformers re-ties after the resize; the one matrix is set once).

    Returns what was done: ``method`` (the one used), ``rows`` (rows the new tokens got),
    ``reused_padded_rows``, ``grown_rows``, ``matrix_rows`` (after), ``from_pieces`` (rows set
    from base pieces; the others got the mean of the base tokens' rows).
    """
    if method not in CHOICES:
        raise ValueError(f"new_embeddings_init must be one of {CHOICES}, got {method!r}")
    old_rows = embedding_rows(model.get_input_embeddings().weight)
    first = old_rows if first_new is None else min(first_new, old_rows)
    if method == "subtoken_mean" and base_tokenizer is None:
        logger.warning(
            "--new_embeddings_init subtoken_mean needs the base model's tokenizer and the model "
            "directory has none: using mean_resizing"
        )
        method = "mean_resizing"
    if new_vocab > old_rows:
        model.resize_token_embeddings(new_vocab, mean_resizing=method == "mean_resizing")
    reused = max(0, min(new_vocab, old_rows) - first)
    done: dict[str, Any] = {
        "method": method,
        "rows": max(0, new_vocab - first),
        "reused_padded_rows": reused,
        "grown_rows": max(0, new_vocab - old_rows),
        "matrix_rows": max(new_vocab, old_rows),
        "from_pieces": 0,
    }
    if new_vocab <= first or (method == "mean_resizing" and not reused):
        return done
    inp = model.get_input_embeddings().weight
    head = model.get_output_embeddings()
    out = head.weight if head is not None else None
    tied = out is None or out is inp  # one Parameter (also under ZeRO-3, where data is empty)
    params = [inp] if tied else [inp, out]
    with torch.no_grad(), _writable(params) as writer:
        if not writer:
            return done
        if method == "mean_resizing":
            # transformers draws only the grown rows; a reused padded row gets the base mean.
            for weight in params:
                weight[first : first + reused] = weight[:first].mean(dim=0)
            return done
        if method == "random":
            std = float(getattr(model.config, "initializer_range", 0.02) or 0.02)
            for weight in params:
                weight[first:new_vocab].normal_(mean=0.0, std=std)
            return done
        assert base_tokenizer is not None
        pieces = subtoken_ids(tokenizer, base_tokenizer, list(range(first, new_vocab)), first)
        for weight in params:
            fallback = weight[:first].mean(dim=0)
            for token_id, ids in pieces.items():
                weight[token_id] = weight[ids].mean(dim=0) if ids else fallback
        done["from_pieces"] = sum(1 for ids in pieces.values() if ids)
    return done
