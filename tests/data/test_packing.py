"""Packing: an EOS between documents, blocks that never start inside a character, and blocks
independent of how the stream was fed (chunks, streaming)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from worker.data.encoding import Encoder
from worker.data.errors import DataError
from worker.data.files import PackOptions, cache_file
from worker.data.packing import Packer, with_eos

REPLACEMENT = "\ufffd"


def _starts_inside_a_character(tokenizer: Any, block: np.ndarray) -> bool:
    """Every short prefix decodes to a leading U+FFFD (a clean start decodes cleanly within the
    4 bytes of one character; a byte run is decoded as a whole, hence the prefixes)."""
    return all(tokenizer.decode(block[:k].tolist()).startswith(REPLACEMENT) for k in range(1, 7))


def test_eos_blocks_start_on_a_character_mistral(
    real_corpus: Path, mistral: Any, tmp_path: Path
) -> None:
    """Mistral's vocabulary lacks many Chinese characters: they become 3 byte-fallback tokens, and
    a plain cut every N tokens lands inside one. ``eos`` steps such a block start back to the
    character's first byte (repeating at most 3 tokens); ``classic`` keeps the seed's cut."""
    encoder = Encoder(mistral)
    path = real_corpus / "fortunes_chinese.txt"
    classic = cache_file(path, encoder, PackOptions(64, "classic"), tmp_path / "c").blocks
    eos = cache_file(path, encoder, PackOptions(64, "eos"), tmp_path / "e")
    bad_classic = sum(_starts_inside_a_character(mistral, b) for b in classic)
    assert bad_classic > 20, "the corpus should exercise the problem"
    assert not any(_starts_inside_a_character(mistral, b) for b in eos.blocks)
    assert not encoder.unsafe_start[eos.blocks[:, 0]].any()
    assert eos.stats.moved_starts > 20
    assert eos.blocks.shape[1] == 64


def test_byte_level_bpe_tokenizer(real_corpus: Path, tmp_path: Path) -> None:
    """The same rule for a byte-level BPE vocabulary (GPT-2 style): tokens that begin with a UTF-8
    continuation byte are recognised from the vocabulary."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    text = (real_corpus / "song100.txt").read_text(encoding="utf-8")
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator([text], vocab_size=400, special_tokens=["<|endoftext|>"])
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, eos_token="<|endoftext|>")
    encoder = Encoder(tok)
    assert encoder.unsafe_start.sum() > 0  # e.g. a lone continuation byte 0x80..0xBF
    assert tok.convert_ids_to_tokens(int(np.flatnonzero(encoder.unsafe_start)[0]))
    eos = cache_file(real_corpus / "song100.txt", encoder, PackOptions(32, "eos"), tmp_path)
    classic = cache_file(real_corpus / "song100.txt", encoder, PackOptions(32, "classic"), tmp_path)
    assert any(_starts_inside_a_character(tok, b) for b in classic.blocks)
    assert not any(_starts_inside_a_character(tok, b) for b in eos.blocks)


@pytest.mark.parametrize("packing", ["classic", "eos"])
def test_blocks_do_not_depend_on_chunking(mistral: Any, real_corpus: Path, packing: str) -> None:
    encoder = Encoder(mistral)
    docs = (real_corpus / "fortunes_chinese.txt").read_text(encoding="utf-8").splitlines()[:3000]
    flat, lengths = encoder.encode(docs)
    if packing == "eos":
        flat = with_eos(flat, lengths, mistral.eos_token_id)
    unsafe = encoder.unsafe_start if packing == "eos" else None
    whole = Packer(50, encoder.dtype, unsafe).feed(flat, final=True)
    rng = np.random.default_rng(0)
    cuts = np.sort(rng.choice(len(flat), size=200, replace=False))
    packer = Packer(50, encoder.dtype, unsafe)
    pieces = [packer.feed(part) for part in np.split(flat, cuts)]
    pieces.append(packer.feed(flat[:0], final=True))
    assert np.array_equal(np.concatenate(pieces), whole)


def test_with_eos() -> None:
    flat = np.array([5, 6, 7, 2, 8], dtype=np.uint16)  # docs [5, 6], [7, 2] (ends with EOS), [8]
    out = with_eos(flat, np.array([2, 2, 1, 0]), eos_id=2)
    assert out.tolist() == [5, 6, 2, 7, 2, 8, 2, 2]  # the empty 4th document still ends
    assert out.dtype == np.uint16


def test_eos_packing_needs_an_eos_token(
    mistral_fast_dir: Path, real_corpus: Path, tmp_path: Path
) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(mistral_fast_dir))
    tok.eos_token = None
    with pytest.raises(DataError, match="--packing eos: the tokenizer has no EOS token"):
        cache_file(real_corpus / "song100.txt", Encoder(tok), PackOptions(64, "eos"), tmp_path)
