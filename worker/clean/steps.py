"""Each step on a batch of documents: what it keeps, what it removed (counts by language and
reason, the first few removed documents), what it changed (PII masking)."""

from __future__ import annotations

from array import array
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import xxhash

from cpt_contract.clean import (
    CleanStep,
    LanguageStep,
    NearDedupStep,
    PiiStep,
    QualityStep,
)
from worker.clean import pii
from worker.clean.minhash import LshIndex, MinHasher, shingles
from worker.clean.text import normalise, quality_problem

#: Characters of a removed document kept as its example.
EXAMPLE_CHARS = 300
_FILE_SHIFT = 40


@dataclass(slots=True)
class Doc:
    text: str
    lang: str
    confidence: float
    tokens: int
    file: int  # index into the job's file list
    line: int  # the document's number in its file, from 1
    ordinal: int  # the document's number in the job, from 0

    @property
    def chars(self) -> int:
        return len(self.text)


@dataclass
class Counts:
    documents: int = 0
    characters: int = 0
    tokens: int = 0

    def add(self, doc: Doc) -> None:
        self.documents += 1
        self.characters += doc.chars
        self.tokens += doc.tokens


@dataclass
class Tally:
    """Counts in total and per language."""

    total: Counts = field(default_factory=Counts)
    languages: dict[str, Counts] = field(default_factory=dict)

    def add(self, doc: Doc) -> None:
        self.total.add(doc)
        counts = self.languages.get(doc.lang)
        if counts is None:
            counts = self.languages[doc.lang] = Counts()
        counts.add(doc)


class Locations:
    """Where each document of the job came from (8 bytes a document), to name the original of
    a duplicate."""

    def __init__(self) -> None:
        self.packed = array("Q")

    def add(self, doc: Doc) -> None:
        assert doc.ordinal == len(self.packed)
        self.packed.append(doc.file << _FILE_SHIFT | doc.line)

    def of(self, ordinal: int) -> tuple[int, int]:
        value = self.packed[ordinal]
        return value >> _FILE_SHIFT, value & ((1 << _FILE_SHIFT) - 1)


class Step:
    """One step's state and report; ``apply`` returns the documents it keeps."""

    def __init__(self, params: CleanStep, examples: int) -> None:
        self.params = params
        self.max_examples = examples
        self.before, self.after = Tally(), Tally()
        self.reasons: Counter[str] = Counter()
        self.examples: list[dict[str, Any]] = []
        self.changed = 0
        self.seconds = 0.0

    def decide(self, doc: Doc) -> tuple[str, int | None] | None:
        """(reason, ordinal of the original or None) to remove ``doc``; None keeps it."""
        raise NotImplementedError

    def apply(self, docs: list[Doc], locations: Locations, files: list[str]) -> list[Doc]:
        kept = []
        for doc in docs:
            self.before.add(doc)
            verdict = self.decide(doc)
            if verdict is None:
                kept.append(doc)
                continue
            reason, original = verdict
            self.reasons[reason.split(":")[0]] += 1
            if len(self.examples) < self.max_examples:
                self.examples.append(_example(doc, reason, original, locations, files))
        return kept

    def finish_batch(self, kept: list[Doc]) -> None:
        for doc in kept:
            self.after.add(doc)

    def report(self) -> dict[str, Any]:
        removed = {
            "documents": self.before.total.documents - self.after.total.documents,
            "characters": self.before.total.characters - self.after.total.characters,
            "tokens": self.before.total.tokens - self.after.total.tokens,
        }
        langs = sorted(set(self.before.languages) | set(self.after.languages))
        return {
            "step": self.params.step,
            "params": self.params.model_dump(),
            "before": vars(self.before.total).copy(),
            "after": vars(self.after.total).copy(),
            "removed": removed,
            "changed": self.changed,
            "by_language": {
                lang: {
                    "before": vars(self.before.languages.get(lang, Counts())).copy(),
                    "after": vars(self.after.languages.get(lang, Counts())).copy(),
                }
                for lang in langs
            },
            "reasons": dict(self.reasons.most_common()),
            "examples": self.examples,
            "seconds": round(self.seconds, 3),
        }


def _example(
    doc: Doc, reason: str, original: int | None, locations: Locations, files: list[str]
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "file": files[doc.file],
        "line": doc.line,
        "language": doc.lang,
        "confidence": round(doc.confidence, 3),
        "reason": reason,
        "text": doc.text[:EXAMPLE_CHARS],
    }
    if original is not None:
        f, line = locations.of(original)
        out["duplicate_of"] = {"file": files[f], "line": line}
    return out


class Language(Step):
    params: LanguageStep

    def decide(self, doc: Doc) -> tuple[str, int | None] | None:
        p = self.params
        if doc.lang not in p.keep:
            return f"language: {doc.lang} ({doc.confidence:.2f}) is not kept", None
        limit = p.thresholds.get(doc.lang, p.threshold)
        if doc.confidence < limit:
            return f"confidence: {doc.lang} {doc.confidence:.2f} < {limit}", None
        return None


class ExactDedup(Step):
    def __init__(self, params: CleanStep, examples: int) -> None:
        super().__init__(params, examples)
        self.seen: dict[int, int] = {}

    def decide(self, doc: Doc) -> tuple[str, int | None] | None:
        key = xxhash.xxh3_128_intdigest(normalise(doc.text).encode("utf-8", "surrogatepass"))
        first = self.seen.setdefault(key, doc.ordinal)
        return None if first == doc.ordinal else ("exact duplicate", first)


class NearDedup(Step):
    params: NearDedupStep

    def __init__(self, params: NearDedupStep, examples: int) -> None:
        super().__init__(params, examples)
        self.hasher = MinHasher(params.num_perm, params.seed)
        self.index = LshIndex(params.threshold, params.num_perm)

    def decide(self, doc: Doc) -> tuple[str, int | None] | None:
        grams = shingles(doc.text, self.params.shingle_size)
        if not grams:
            return None
        first = self.index.add(self.hasher.signature(grams), doc.ordinal)
        return None if first is None else ("near duplicate", first)


class Quality(Step):
    params: QualityStep

    def decide(self, doc: Doc) -> tuple[str, int | None] | None:
        problem = quality_problem(doc.text, self.params)
        return None if problem is None else (problem, None)


class Pii(Step):
    params: PiiStep

    def __init__(self, params: PiiStep, examples: int) -> None:
        super().__init__(params, examples)
        self.masked: Counter[str] = Counter()

    def apply(self, docs: list[Doc], locations: Locations, files: list[str]) -> list[Doc]:
        for doc in docs:
            self.before.add(doc)
            text, counts = pii.mask(doc.text, self.params)
            if text == doc.text:
                continue
            doc.text, doc.tokens = text, -1  # recounted by the pipeline, which has the tokenizer
            self.changed += 1
            self.masked.update(counts)
            if len(self.examples) < self.max_examples:
                what = ", ".join(f"{n} {kind}" for kind, n in counts.items() if n)
                self.examples.append(_example(doc, f"masked: {what}", None, locations, files))
        return docs

    def report(self) -> dict[str, Any]:
        return {**super().report(), "masked": dict(self.masked)}


STEP_CLASSES: dict[str, type[Step]] = {
    "language": Language,
    "exact_dedup": ExactDedup,
    "near_dedup": NearDedup,
    "quality": Quality,
    "pii": Pii,
}


def make_step(params: CleanStep, examples: int) -> Step:
    return STEP_CLASSES[params.step](params, examples)  # type: ignore[arg-type]
