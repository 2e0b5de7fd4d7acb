"""The clean job's steps: what each one keeps or changes, with its parameters and their ranges.

A clean job reads one or more sources and writes a new dataset directory; its steps run in the
order the user gives, each on what the previous ones kept (``worker/clean/``). The API validates
these models (a 422 at the field), the worker validates them again before it reads a byte.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cpt_contract.limits import INT32

#: Language codes the detector knows (py3langid 0.4's model, ISO 639-1 where there is one).
#: ``tests/worker/test_clean_engine.py`` checks this list equals the installed model's labels.
_CODES = """ace af am an ar ary arz as az ba bcl be bg bn br bs ca crh cs cy da de dz el en eo es et
eu ext fa fi fo fr fuv fy ga gcf gcr gd gl gom grc gu gug guw ha hbo he hi hr ht hu hy id ig is it
ja jv ka kab kik kk km kn ko ku ky la lb lg lij ln lo lt ltg lv mg mk ml mn mr ms mt my ne nl nn no
nso oc om or pa pcm pl ps pt qu ro ru rw sa sdh se si sk sl sn so sq sr st sv sw ta te tg th tk tl
tr tt ug uk ur uz uzs vec vi vo wa wuu xh yo yue zh zu zxx"""
LANGUAGES: frozenset[str] = frozenset(_CODES.split())

Ratio = Annotated[float, Field(ge=0, le=1)]


class _Step(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LanguageStep(_Step):
    """Identify each document's language; keep only the listed languages, each above its
    confidence threshold."""

    model_config = ConfigDict(extra="forbid", title="Language identification")

    step: Literal["language"] = "language"
    keep: list[str] = Field(
        min_length=1,
        max_length=200,
        title="Keep languages",
        description="Language codes (ISO 639-1 where one exists: en, hi, kn, zh, ...).",
    )
    threshold: Ratio = Field(
        default=0.5, title="Confidence threshold", description="For languages not listed below."
    )
    thresholds: dict[str, Ratio] = Field(
        default_factory=dict,
        title="Per-language thresholds",
        description='A language\'s own threshold, e.g. {"kn": 0.3}.',
    )

    @field_validator("keep")
    @classmethod
    def _known(cls, codes: list[str]) -> list[str]:
        for i, code in enumerate(codes):
            if code not in LANGUAGES:
                raise ValueError(
                    f"keep[{i}]: unknown language code {code!r}: use one the detector knows "
                    f"(e.g. en, hi, kn, ta, zh)"
                )
        return codes

    @field_validator("thresholds")
    @classmethod
    def _known_keys(cls, values: dict[str, float]) -> dict[str, float]:
        for code in values:
            if code not in LANGUAGES:
                raise ValueError(f"thresholds: unknown language code {code!r}")
        return values


class ExactDedupStep(_Step):
    """Drop a document whose normalised text (NFKC, lower case, punctuation and runs of
    whitespace removed) equals an earlier one's, across all sources."""

    model_config = ConfigDict(extra="forbid", title="Exact duplicates")

    step: Literal["exact_dedup"] = "exact_dedup"


class NearDedupStep(_Step):
    """Drop a document that is a near copy of an earlier one (MinHash LSH over word shingles):
    its estimated Jaccard similarity reaches the threshold."""

    model_config = ConfigDict(extra="forbid", title="Near duplicates (MinHash)")

    step: Literal["near_dedup"] = "near_dedup"
    shingle_size: int = Field(default=5, ge=1, le=32, title="Shingle size (words)")
    num_perm: int = Field(default=128, ge=16, le=1024, title="Permutations")
    threshold: float = Field(default=0.8, gt=0, lt=1, title="Jaccard threshold")
    seed: int = Field(default=1, ge=0, le=INT32, title="Seed")


class QualityStep(_Step):
    """Gopher/C4-style heuristics; a threshold left empty is not checked. Words are runs of
    non-space characters, each CJK, kana, Hangul or Thai character a word of its own."""

    model_config = ConfigDict(extra="forbid", title="Quality filters")

    step: Literal["quality"] = "quality"
    min_words: int | None = Field(default=5, ge=0, le=10_000_000, title="Minimum words")
    max_words: int | None = Field(default=100_000, ge=1, le=100_000_000, title="Maximum words")
    min_mean_word_length: float | None = Field(
        default=None, ge=0, le=100, title="Minimum mean word length"
    )
    max_mean_word_length: float | None = Field(
        default=15, ge=0, le=1000, title="Maximum mean word length"
    )
    max_symbol_word_ratio: Ratio | None = Field(default=0.1, title="Maximum '#' and '…' per word")
    min_alpha_word_ratio: Ratio | None = Field(
        default=0.6, title="Minimum share of words with a letter"
    )
    max_digit_ratio: Ratio | None = Field(default=0.3, title="Maximum share of digits")
    max_duplicate_line_ratio: Ratio | None = Field(
        default=0.3, title="Maximum share of repeated lines"
    )
    max_top_2gram_ratio: Ratio | None = Field(
        default=0.2, title="Maximum characters in the top 2-gram"
    )
    max_top_3gram_ratio: Ratio | None = Field(
        default=0.18, title="Maximum characters in the top 3-gram"
    )
    max_top_4gram_ratio: Ratio | None = Field(
        default=0.16, title="Maximum characters in the top 4-gram"
    )
    max_duplicate_5gram_ratio: Ratio | None = Field(
        default=0.15, title="Maximum characters in repeated 5-grams"
    )
    min_punctuated_line_ratio: Ratio | None = Field(
        default=None, title="Minimum share of lines ending in punctuation"
    )

    @model_validator(mode="after")
    def _ranges(self) -> QualityStep:
        lo_w, hi_w = self.min_words, self.max_words
        if lo_w is not None and hi_w is not None and lo_w > hi_w:
            raise ValueError("min_words: above max_words")
        lo, hi = self.min_mean_word_length, self.max_mean_word_length
        if lo is not None and hi is not None and lo > hi:
            raise ValueError("min_mean_word_length: above max_mean_word_length")
        return self


class PiiStep(_Step):
    """Mask e-mail addresses, phone numbers and IP addresses (the document is kept)."""

    model_config = ConfigDict(extra="forbid", title="PII masking")

    step: Literal["pii"] = "pii"
    emails: bool = Field(default=True, title="E-mail addresses")
    phones: bool = Field(default=True, title="Phone numbers")
    ips: bool = Field(default=True, title="IP addresses")


CleanStep = Annotated[
    LanguageStep | ExactDedupStep | NearDedupStep | QualityStep | PiiStep,
    Field(discriminator="step"),
]
STEP_KINDS = ("language", "exact_dedup", "near_dedup", "quality", "pii")
#: What a masked span becomes (datatrove's PIIFormatter uses the same e-mail and IP stand-ins).
PII_REPLACEMENTS = {"email": "email@example.com", "phone": "<PHONE>", "ip": "0.0.0.0"}
#: The lineage record a cleaned dataset carries (not .txt/.jsonl: training never reads it).
LINEAGE_FILE = "cpt_clean.json"
