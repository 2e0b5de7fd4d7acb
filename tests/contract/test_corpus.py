"""The data engine's copy of the corpus suffixes and the column rule equals the contract's."""

from __future__ import annotations

import re

from cpt_contract import corpus
from worker.data import formats, sources


def test_the_engine_reads_what_the_contract_offers() -> None:
    assert formats.SUFFIXES == corpus.SUFFIXES
    assert formats.ARROW == corpus.ARROW and formats.SAVED_STATE == corpus.SAVED_STATE
    assert formats.DEFAULT_TEXT_COLUMN == corpus.DEFAULT_TEXT_COLUMN
    assert sources.COLUMN.pattern == corpus.COLUMN_PATTERN
    for name in ("a.parquet", "b.JSONL.ZST", "c.txt.gz", "d.jsonl"):
        assert corpus.is_corpus_name(name) and formats.is_corpus_name(name)
    for name in ("merges.txt.bak", "x.json", "y.arrow", "z.zst"):
        assert not corpus.is_corpus_name(name) and not formats.is_corpus_name(name)
    assert re.match(corpus.COLUMN_PATTERN, "content") and not re.match(corpus.COLUMN_PATTERN, "-x")
