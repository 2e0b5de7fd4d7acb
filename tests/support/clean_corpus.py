"""A mixed corpus of real text with planted duplicates and junk, for the clean job's tests.

Real text: UDHR samples (gflanguages) in eight languages, chatterbot-corpus dialogues, Debian's
Chinese fortunes and licence paragraphs. Planted, each in a source other than its original's:
exact duplicates (case, spacing and punctuation changed), near duplicates (one word in ~100
replaced), junk (symbols, digits, repeated lines and n-grams) and a document with an e-mail
address, a phone number and an IP address. ``build_corpus`` returns the ground truth.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from worker.clean.minhash import shingles
from worker.demo_assets import chatterbot_dialogues, udhr_samples

FORTUNES = Path("/usr/share/games/fortunes/chinese")
LICENSES = Path("/usr/share/common-licenses")
UDHR = ["en_Latn", "fr_Latn", "de_Latn", "es_Latn", "hi_Deva", "kn_Knda", "ta_Taml", "zh_Hans"]
JUNK = [
    "#### #### #### #### #### #### SALE #### #### ####",
    "0412 9981 2231 5590 1187 3321 9090 1204 5567 8812 0099 1234 5678",
    "buy now\nbuy now\nbuy now\nbuy now\nclick the link below",
    "click here to win click here to win click here to win click here to win click here to win",
]
PII = (
    "For questions about the licence write to legal.team@example.org or call "
    "+1 415 555 0132; the mirror at 192.168.10.24 is updated every night."
)


@dataclass
class Corpus:
    root: Path
    sources: list[Path]
    #: language code -> the distinct UDHR documents in it
    udhr: dict[str, list[str]] = field(default_factory=dict)
    distinct: list[str] = field(default_factory=list)
    exact_copies: list[str] = field(default_factory=list)
    near_copies: list[str] = field(default_factory=list)
    junk: list[str] = field(default_factory=lambda: list(JUNK))
    pii: str = PII


def _jaccard(a: str, b: str) -> float:
    x, y = set(shingles(a, 5)), set(shingles(b, 5))
    return len(x & y) / max(1, len(x | y))


def _distinct(docs: list[str], chosen: list[str]) -> list[str]:
    """The documents not close to one chosen before (UDHR samples overlap; licences repeat)."""
    out: list[str] = []
    for d in docs:
        if all(_jaccard(d, c) < 0.3 for c in chosen + out):
            out.append(d)
    return out


def _paragraphs(name: str, limit: int) -> list[str]:
    text = (LICENSES / name).read_text(encoding="utf-8")
    paras = [" ".join(p.split()) for p in text.split("\n\n")]
    return [p for p in paras if len(p.split()) >= 40][:limit]


def _fortunes(limit: int) -> list[str]:
    entries = FORTUNES.read_text(encoding="utf-8").split("\n%\n")
    return [e.strip() for e in entries if len(e.strip()) >= 40][:limit]


def _write_jsonl(path: Path, docs: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for d in docs:
            fh.write(json.dumps({"text": d}, ensure_ascii=False) + "\n")


def _near_copy(text: str) -> str:
    words = text.split()
    mid = len(words) // 2
    words[mid] = "altered" if words[mid] != "altered" else "changed"
    return " ".join(words)


def _exact_copy(text: str) -> str:
    return "  " + text.upper().replace(". ", " ... ").replace(",", " ,") + "!"


def build_corpus(root: Path) -> Corpus:
    """Write ``root/udhr``, ``root/dialogues``, ``root/licences`` and ``root/web`` (the planted
    documents mixed with copies of real ones) and return the ground truth."""
    corpus = Corpus(root, [])
    udhr_dir = root / "udhr"
    udhr_dir.mkdir(parents=True, exist_ok=True)
    for lang_id in UDHR:
        # Samples that are not fragments of one another.
        docs = _distinct([" ".join(t.split()) for t in udhr_samples(lang_id) if len(t) >= 60], [])
        corpus.udhr[lang_id.split("_")[0]] = docs
        (udhr_dir / f"udhr_{lang_id}.txt").write_text("\n".join(docs) + "\n", encoding="utf-8")
    dialogues = chatterbot_dialogues("english", 2)[:40]
    _write_jsonl(root / "dialogues" / "chatterbot_english.jsonl", dialogues)
    licences = _distinct(_paragraphs("GPL-3", 30) + _paragraphs("Apache-2.0", 10), [])
    _write_jsonl(root / "licences" / "licences.jsonl", licences)
    fortunes = _distinct(_fortunes(30), [])
    _write_jsonl(root / "licences" / "fortunes_zh.jsonl", fortunes)

    long_ones = [p for p in licences if len(p.split()) >= 80]
    corpus.exact_copies = [_exact_copy(p) for p in licences[:4]] + [
        _exact_copy(corpus.udhr["hi"][0]),
        fortunes[0] + "  ",
    ]
    corpus.near_copies = [_near_copy(p) for p in long_ones[4:8]]
    web = corpus.exact_copies + corpus.near_copies + corpus.junk + [PII]
    _write_jsonl(root / "web" / "crawl.jsonl", web)

    udhr_all = [d for docs in corpus.udhr.values() for d in docs]
    corpus.distinct = udhr_all + licences + fortunes
    for i, a in enumerate(corpus.distinct):  # the ground truth must hold: no pair is close
        for b in corpus.distinct[i + 1 :]:
            assert _jaccard(a, b) < 0.5, (a[:80], b[:80])
    for copy in corpus.near_copies:
        assert max(_jaccard(copy, d) for d in licences) >= 0.85, copy[:80]
    corpus.sources = [udhr_dir, root / "dialogues", root / "licences", root / "web"]
    return corpus
