"""What "per character" means, once for the whole panel.

Fertility (tokens per character, Tokenizers page), bits per character (evaluation) and the
dataset scan's character counts all divide by the same count: **every Unicode code point of the
documents as read** — the file's UTF-8 decoded, cut into documents by the document separator
option, line breaks kept or dropped as ``keep_linebreaks`` says; whitespace and line breaks that
stay in a document count, the separators between documents do not. ``worker/data/eval_sets.py``
(the training script imports nothing of the panel) keeps a copy of ``CHARACTER_DEFINITION``,
``count_characters`` and ``DEFAULT_EVAL_CHARACTERS``; ``tests/contract/test_text.py`` proves
they are equal.
"""

from __future__ import annotations

from typing import Literal

CHARACTER_DEFINITION = (
    "one Unicode code point of a document as read (UTF-8 decoded, line breaks kept as the "
    "document separator option leaves them)"
)

#: The column-header wording of every per-character number (UI and CLI).
CHARACTER_UNIT = "characters (Unicode code points)"

#: Characters scored of a held-out set that names no budget: a prefix of its documents, so
#: every run on the set scores the same text whatever its tokenizer.
DEFAULT_EVAL_CHARACTERS = 20_000


#: How a ``.txt`` file is cut into documents: one per line (the seed's reading), one per
#: paragraph (lines up to a blank line), or the whole file as one (``worker/data/documents.py``
#: keeps the copy ``TXT_DOCUMENTS``). JSONL files hold one document per line whatever this says.
TxtDocuments = Literal["line", "blank_line", "file"]
TXT_DOCUMENTS: tuple[str, ...] = ("line", "blank_line", "file")


def count_characters(text: str) -> int:
    """Characters of a text by ``CHARACTER_DEFINITION``: its Unicode code points."""
    return len(text)
