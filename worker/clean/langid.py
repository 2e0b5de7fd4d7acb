"""Language identification with py3langid (langid.py's maintained fork): its model ships in the
wheel (``py3langid/data/model.npz.xz``), so nothing is downloaded at run time."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

#: Characters of a document the detector reads: its byte n-gram features settle within a few
#: hundred characters, and the scoring costs time in proportion.
SAMPLE_CHARS = 1000


@lru_cache(maxsize=1)
def _identifier() -> Any:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def labels() -> set[str]:
    return set(_identifier().nb_classes)


def detect(text: str) -> tuple[str, float]:
    """(language code, probability in [0, 1])."""
    lang, prob = _identifier().classify(text[:SAMPLE_CHARS])
    return str(lang), float(prob)
