"""One definition of "per character": the training script's copy equals the contract's, and the
three places that divide by characters (fertility, bits/char, the scan) count the same way."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cpt_contract import text as contract
from worker.data import documents
from worker.data import eval_sets as writer
from worker.data.documents import ReadStats, iter_document_batches
from worker.data.eval_sets import Budget, select_documents
from worker.tokenizer.corpus import text_lines
from worker.tokenizer.fertility import measure

MIXED = "Привет, мир!\tçà 你好 👋🏽\nवह e\u0301 ok\n\n  spaces  \n"


def test_the_training_scripts_copy_equals_the_contract() -> None:
    assert writer.CHARACTER_DEFINITION == contract.CHARACTER_DEFINITION
    assert writer.DEFAULT_EVAL_CHARACTERS == contract.DEFAULT_EVAL_CHARACTERS
    assert documents.TXT_DOCUMENTS == contract.TXT_DOCUMENTS
    for s in ("", "abc", MIXED, "e\u0301", "👋🏽"):
        assert writer.count_characters(s) == contract.count_characters(s) == len(s)


def test_scan_eval_and_fertility_count_the_same_characters(tmp_path: Path) -> None:
    path = tmp_path / "mixed.txt"
    path.write_text(MIXED, encoding="utf-8")
    stats = ReadStats()
    docs = [d for batch in iter_document_batches(path, True, "--x", stats) for d in batch]
    expected = sum(len(d) for d in docs)
    # The scan's count is the reader's.
    assert stats.characters == expected
    # Evaluation scores the same documents.
    chosen, cut = select_documents([path], Budget(), True)
    assert chosen == docs and not cut
    assert sum(writer.count_characters(d) for d in chosen) == expected
    # Fertility divides by every code point of the lines it encodes, whitespace included.
    tok = _byte_level_tokenizer(MIXED)
    lines = text_lines([MIXED])
    row = measure(tok, "t", "mixed", MIXED, len(tok), True)
    assert row.chars == sum(contract.count_characters(line) for line in lines)
    assert row.chars > len("".join(MIXED.split()))  # the old count left whitespace out


def _byte_level_tokenizer(text: str) -> Any:
    """A real byte-level BPE tokenizer trained on the text (tokenizers + transformers)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["<eos>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator([text], trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<eos>")
