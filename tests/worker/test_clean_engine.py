"""The clean engine on real text: UDHR samples, dialogues, Chinese fortunes and licence paragraphs
with planted exact and near duplicates, junk and PII (``tests/support/clean_corpus.py``)."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from backend.services.files import problem
from cpt_contract.clean import LANGUAGES, LINEAGE_FILE
from cpt_contract.jobs import CleanParams
from tests.support.clean_corpus import Corpus, build_corpus
from worker.clean import langid, pipeline
from worker.clean.pipeline import Cleaner
from worker.data.documents import find_files, iter_document_batches
from worker.data.errors import DataError

KEEP = ["en", "hi", "kn", "zh"]
#: Gopher's English n-gram limits read every Chinese character as a word, where common 2-4
#: character words repeat; the multilingual test corpus relaxes them (the junk still fails).
STEPS: list[dict[str, Any]] = [
    {"step": "language", "keep": KEEP, "threshold": 0.5, "thresholds": {"kn": 0.3}},
    {"step": "exact_dedup"},
    {"step": "near_dedup", "shingle_size": 5, "num_perm": 128, "threshold": 0.8},
    {
        "step": "quality",
        "min_words": 3,
        "max_top_2gram_ratio": 0.3,
        "max_top_3gram_ratio": 0.3,
        "max_top_4gram_ratio": 0.3,
    },
    {"step": "pii"},
]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    return build_corpus(tmp_path_factory.mktemp("mixed"))


def _params(
    corpus: Corpus, root: Path, name: str, steps: list[dict[str, Any]] = STEPS, **extra: Any
) -> CleanParams:
    return CleanParams.model_validate(
        {
            "sources": [str(s) for s in corpus.sources],
            "name": name,
            "output_root": str(root),
            "steps": steps,
            **extra,
        }
    )


def _texts(root: Path) -> list[str]:
    return [d for f in find_files(root) for batch in iter_document_batches(f, False) for d in batch]


def _norm(text: str) -> str:
    return " ".join(text.split())


def test_the_detector_is_the_contract_list() -> None:
    assert langid.labels() == set(LANGUAGES)


def test_a_mixed_corpus_is_cleaned_as_configured(corpus: Corpus, tmp_path: Path) -> None:
    result = Cleaner(_params(corpus, tmp_path, "clean")).run(tmp_path, "clean")
    out = tmp_path / "clean"
    kept = {_norm(t) for t in _texts(out)}
    steps = {s["step"]: s for s in result["steps"]}

    # Every planted duplicate went, each to its own step; no distinct document was taken for one.
    assert steps["exact_dedup"]["removed"]["documents"] == len(corpus.exact_copies)
    assert steps["near_dedup"]["removed"]["documents"] == len(corpus.near_copies)
    planted_kept = {_norm(t) for t in _texts(out / "web__crawl.jsonl")}
    for copy in corpus.exact_copies + corpus.near_copies:
        assert _norm(copy) not in planted_kept
    dup_examples = steps["exact_dedup"]["examples"] + steps["near_dedup"]["examples"]
    assert all(e["file"] == "web/crawl.jsonl" for e in dup_examples), dup_examples
    assert all(e["duplicate_of"]["file"] != "web/crawl.jsonl" for e in dup_examples)

    # Languages: the UDHR documents of kept languages all stay, the others all go.
    for lang, docs in corpus.udhr.items():
        for doc in docs:
            assert (_norm(doc) in kept) == (lang in KEEP), (lang, doc[:60])
    assert set(steps["language"]["by_language"]) >= {"fr", "de", "es", "ta"}
    for lang in ("fr", "de", "es", "ta"):
        assert result["by_language"][lang]["after"]["documents"] == 0
    # No distinct document of a kept language was removed, whatever the step.
    for doc in corpus.distinct:
        lang, _ = langid.detect(doc)
        if lang in KEEP:
            assert _norm(doc) in kept, doc[:80]
    # Junk: gone. PII: masked, the document kept.
    for junk in corpus.junk:
        assert _norm(junk) not in kept
    masked = [t for t in kept if "email@example.com" in t]
    assert len(masked) == 1 and "0.0.0.0" in masked[0] and "<PHONE>" in masked[0]
    assert "legal.team@example.org" not in " ".join(kept)

    # The counts add up: each step starts where the previous ended, removed = before - after.
    assert result["before"]["documents"] == sum(f["documents"] for f in result["files"])
    previous = result["before"]
    for s in result["steps"]:
        assert s["before"] == previous
        assert s["removed"]["documents"] == s["before"]["documents"] - s["after"]["documents"]
        assert (
            sum(v["after"]["documents"] for v in s["by_language"].values())
            == (s["after"]["documents"])
        )
        previous = s["after"]
    assert result["after"]["documents"] == previous["documents"] == len(_texts(out))
    assert result["after"]["characters"] == previous["characters"]

    # A normal dataset: one flat directory of text files that the dataset picker offers.
    assert problem("dataset", out) is None
    assert (out / "udhr__udhr_kn_Knda.txt").is_file()
    # The lineage travels with the dataset; nothing else is left beside it.
    lineage = json.loads((out / LINEAGE_FILE).read_text())
    assert lineage["sources"] == [str(s) for s in corpus.sources]
    assert [s["step"] for s in lineage["steps"]] == [s["step"] for s in STEPS]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clean"]


def test_quality_and_pii_steps_alone(corpus: Corpus, tmp_path: Path) -> None:
    steps = [{"step": "quality", "min_words": 3}, {"step": "pii", "phones": False}]
    params = _params(corpus, tmp_path, "q", steps, sources=[str(corpus.root / "web")])
    result = Cleaner(params).run(tmp_path, "q")
    kept = {_norm(t) for t in _texts(tmp_path / "q")}
    for junk in corpus.junk:
        assert _norm(junk) not in kept, junk
    reasons = result["steps"][0]["reasons"]
    assert {
        "min_words",
        "min_alpha_word_ratio",
        "max_duplicate_line_ratio",
        "max_top_2gram_ratio",
    } <= set(reasons)
    masked = next(t for t in kept if "email@example.com" in t)
    assert "+1 415 555 0132" in masked  # phones were not asked for
    assert result["steps"][1]["masked"] == {"email": 1, "phone": 0, "ip": 1}


def test_tokens_are_counted_with_the_chosen_tokenizer(
    corpus: Corpus, tmp_path: Path, tiny_assets: dict[str, Path]
) -> None:
    from transformers import AutoTokenizer

    from worker.data.encoding import Encoder

    tok = AutoTokenizer.from_pretrained(str(tiny_assets["tokenizer"]))
    params = _params(corpus, tmp_path, "t", STEPS[:2], tokenizer=str(tiny_assets["tokenizer"]))
    result = Cleaner(params, Encoder(tok)).run(tmp_path, "t")
    texts = _texts(tmp_path / "t")
    expected = sum(len(tok(t)["input_ids"]) for t in texts)
    assert result["after"]["tokens"] == expected > 0
    assert result["before"]["tokens"] > result["after"]["tokens"]


def test_an_interrupted_job_resumes_after_its_last_checkpointed_file(
    corpus: Corpus, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = Cleaner(_params(corpus, tmp_path / "a", "x")).run(tmp_path / "a", "x")

    monkeypatch.setattr(pipeline, "CHECKPOINT_SECONDS", 0.0)
    real = Cleaner._clean_file
    calls: list[int] = []

    def failing(self: Cleaner, *args: Any) -> int:
        calls.append(args[3])
        if len(calls) == 6:
            raise KeyboardInterrupt("cancelled")
        return real(self, *args)

    monkeypatch.setattr(Cleaner, "_clean_file", failing)
    root = tmp_path / "b"
    with pytest.raises(KeyboardInterrupt):
        Cleaner(_params(corpus, root, "x")).run(root, "x")
    # Not visible: only a dot directory, which the pickers skip.
    assert [p.name.startswith(".x.partial-") for p in root.iterdir()] == [True]
    monkeypatch.setattr(Cleaner, "_clean_file", real)
    again = Cleaner(_params(corpus, root, "x")).run(root, "x")
    assert again["resumed"] is True
    assert sorted(p.name for p in root.iterdir()) == ["x"]
    for key in ("before", "after", "by_language"):
        assert again[key] == whole[key]
    assert [s["removed"] for s in again["steps"]] == [s["removed"] for s in whole["steps"]]
    assert _texts(root / "x") == _texts(tmp_path / "a" / "x")


def test_an_existing_output_is_refused_and_nothing_is_written(
    corpus: Corpus, tmp_path: Path
) -> None:
    (tmp_path / "taken").mkdir()
    with pytest.raises(DataError, match=r"name: .* exists"):
        Cleaner(_params(corpus, tmp_path, "taken")).run(tmp_path, "taken")
    assert [p.name for p in tmp_path.iterdir()] == ["taken"]


def test_memory_stays_flat_with_corpus_size(tmp_path: Path) -> None:
    """Without dedup steps nothing is kept per document but 8 bytes of location: the peak of a
    4x larger corpus stays within that plus the same read chunks."""
    line = "The quick brown fox jumps over the lazy dog near the river bank today number {}.\n"
    peaks = []
    for n in (4_000, 16_000):
        src = tmp_path / f"in{n}"
        src.mkdir()
        (src / "a.txt").write_text("".join(line.format(i) for i in range(n)))
        params = CleanParams.model_validate(
            {
                "sources": [str(src)],
                "name": "o",
                "output_root": str(tmp_path / f"o{n}"),
                "steps": [{"step": "quality"}],
            }
        )
        tracemalloc.start()
        Cleaner(params).run(tmp_path / f"o{n}", "o")
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    assert peaks[1] < peaks[0] + 12_000 * 8 * 2 + 1_000_000, peaks


def test_paragraph_documents_of_a_txt_file_stay_whole(tmp_path: Path) -> None:
    """With ``txt_documents: blank_line`` a .txt document is a paragraph: its line breaks stay,
    so the new dataset holds it as JSONL (a .txt line cannot)."""
    src = tmp_path / "src"
    src.mkdir()
    text = (Path("/usr/share/common-licenses/Apache-2.0")).read_text(encoding="utf-8")
    (src / "apache.txt").write_text(text + "\n\n" + text.split("\n\n")[3] + "\n")
    params = CleanParams.model_validate(
        {
            "sources": [str(src)],
            "name": "p",
            "output_root": str(tmp_path / "o"),
            "steps": [{"step": "exact_dedup"}],
            "txt_documents": "blank_line",
        }
    )
    result = Cleaner(params).run(tmp_path / "o", "p")
    out = tmp_path / "o" / "p" / "src__apache.jsonl"
    docs = [d for batch in iter_document_batches(out, False) for d in batch]
    paragraphs = [p for p in (text + "\n").split("\n\n") if p.strip()]
    assert result["steps"][0]["removed"]["documents"] == 1  # the repeated paragraph
    assert len(docs) == len(paragraphs) and any("\n" in d for d in docs)
