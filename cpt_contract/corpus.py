"""Corpus files as the data engine reads them: which names hold text, and the text column.

The engine (``worker/data/formats.py``) keeps its own copy of the suffixes, because the training
script imports nothing of the panel; ``tests/contract/test_corpus.py`` proves the two equal. The
API's picker (``backend/services/files.py``) and the run-config schema use this module.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

#: Every suffix a corpus file may end with; a saved dataset's ``.arrow`` files count only with
#: the ``state.json`` that ``datasets.save_to_disk`` writes beside them.
SUFFIXES = (
    ".txt",
    ".jsonl",
    ".txt.gz",
    ".txt.zst",
    ".jsonl.gz",
    ".jsonl.zst",
    ".parquet",
)
ARROW = ".arrow"
SAVED_STATE = "state.json"
DEFAULT_TEXT_COLUMN = "text"
#: A column or JSON field name (the engine checks the same pattern: ``sources.COLUMN``).
COLUMN_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"

TextColumn = Annotated[
    str,
    Field(
        min_length=1,
        max_length=128,
        pattern=COLUMN_PATTERN,
        title="Text column",
        description="The field (.jsonl) or column (.parquet, a dataset saved by datasets) "
        "that holds the text.",
    ),
]


def is_corpus_name(name: str) -> bool:
    return name.lower().endswith(SUFFIXES)


def is_saved_dataset(files: set[str]) -> bool:
    """A directory ``datasets.save_to_disk`` wrote: its state and at least one Arrow file."""
    return SAVED_STATE in files and any(f.endswith(ARROW) for f in files)
