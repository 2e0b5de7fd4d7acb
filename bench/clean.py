"""The clean job against datatrove's equivalent pipeline: documents/s and agreement.

Corpus: real text (Debian ``fortunes-zh`` fortunes, Tang and Song poems; licence paragraphs from
``/usr/share/common-licenses``; UDHR samples of eight languages from ``gflanguages``; English
chatterbot dialogues), each document one to three real paragraphs joined, then planted: 10 %
exact copies (case, spacing and punctuation changed), 10 % near copies (one word in the middle
replaced), 5 % junk (symbols, digits, repeated lines, repeated phrases) and a few e-mail and IP
addresses. One JSONL file per ``--files`` share, an ``id`` per document.

Steps, the same thresholds on both sides, in this order:

1. language: keep en, zh, hi, kn at probability >= 0.5 — ours: the clean job's step; datatrove:
   a ``LambdaFilter`` calling the same py3langid model (datatrove's ``LanguageFilter`` downloads a
   fastText model at run time, which the job must not do);
2. quality: Gopher quality (min 5 / max 100,000 words, mean word length <= 15, '#' and '…' per
   word <= 0.1, words with a letter >= 0.6) and Gopher repetition (repeated lines <= 0.3, top 2-,
   3-, 4-gram <= 0.2/0.18/0.16, repeated 5-grams <= 0.15) — datatrove's ``GopherQualityFilter``
   and ``GopherRepetitionFilter`` with their other rules off, given our word splitter so both
   count the same words; our digit and punctuated-line rules are off;
3. exact dedup of the normalised text — datatrove's ``ExactDedupSignature/FindDedups/Filter``
   with our normalisation as its ``content_getter``;
4. near dedup: MinHash over 5-word shingles, 128 permutations, Jaccard 0.8 → 9 bands of 13 rows
   on both sides — datatrove's four ``Minhash*`` stages;
5. PII: e-mail and IP addresses — datatrove's ``PIIFormatter``.

Both run in this process, one worker each, in turn (the order alternating per repetition), on
the same files; datatrove's stages write their intermediate files to a temp dir (its design).
Wall and CPU seconds are the medians over the repetitions (CPU time is the steadier figure on a
shared box). Agreement: the share of input
documents on whose fate (kept or removed) the two agree, and the kept-set overlap (documents both
keep over documents either keeps). Memory: our index entries and the peak RSS of our run.

    python bench/clean.py                   # 20,000 documents, 3 alternating repetitions
    python bench/clean.py --docs 50000 --reps 3
    python bench/clean.py --index-memory 200000   # the dedup index's bytes per document
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

KEEP = ["en", "zh", "hi", "kn"]
FORTUNES = Path("/usr/share/games/fortunes")
LICENSES = Path("/usr/share/common-licenses")


def real_paragraphs() -> list[str]:
    from worker.demo_assets import chatterbot_dialogues, udhr_samples

    out: list[str] = []
    for name in ("chinese", "tang300", "song100"):
        out += [e.strip() for e in (FORTUNES / name).read_text().split("\n%\n") if len(e) > 40]
    for lic in ("GPL-3", "Apache-2.0", "GPL-2", "LGPL-2.1", "MPL-2.0", "GFDL-1.3", "Artistic"):
        text = (LICENSES / lic).read_text(encoding="utf-8", errors="replace")
        out += [" ".join(p.split()) for p in text.split("\n\n") if len(p.split()) >= 12]
    for lang in ("en_Latn", "hi_Deva", "kn_Knda", "zh_Hans", "fr_Latn", "de_Latn", "ta_Taml"):
        out += [" ".join(t.split()) for t in udhr_samples(lang)]
    out += chatterbot_dialogues("english", 6)
    return out


JUNK = [
    "#### #### #### SALE #### #### #### {}",
    "{} 0412 9981 2231 5590 1187 3321 9090 1204 5567 8812 0099 1234",
    "buy now {}\nbuy now\nbuy now\nbuy now\nclick the link below",
    "click here to win {} click here to win click here to win click here to win",
]


def build(root: Path, n_docs: int, files: int, seed: int = 0) -> Path:
    rng = random.Random(seed)
    pool = real_paragraphs()
    docs: list[str] = []
    while len(docs) < n_docs:
        r = rng.random()
        if r < 0.10 and docs:
            src = rng.choice(docs)
            docs.append("  " + src.upper().replace(", ", " , ") + " !")
        elif r < 0.20 and docs:
            words = rng.choice(docs).split(" ")
            if len(words) >= 40:
                words[len(words) // 2] = "altered"
                docs.append(" ".join(words))
        elif r < 0.25:
            docs.append(rng.choice(JUNK).format(rng.randrange(10**6)))
        else:
            k = rng.choice((1, 2, 3))
            doc = "\n\n".join(rng.sample(pool, k))
            if rng.random() < 0.01:
                doc += f" Contact: user{rng.randrange(999)}@mail.example.net from 172.16.{rng.randrange(255)}.9"
            docs.append(doc)
    data = root / "input"
    data.mkdir(parents=True)
    per = (len(docs) + files - 1) // files
    for f in range(files):
        with (data / f"part-{f:03d}.jsonl").open("w", encoding="utf-8") as fh:
            for i, d in enumerate(docs[f * per : (f + 1) * per]):
                fh.write(json.dumps({"text": d, "id": f"{f}:{i + 1}"}, ensure_ascii=False) + "\n")
    return data


def run_ours(data: Path, out: Path) -> dict[str, Any]:
    from cpt_contract.jobs import CleanParams
    from worker.clean.pipeline import Cleaner

    params = CleanParams.model_validate(
        {
            "sources": [str(data)],
            "name": "ours",
            "output_root": str(out),
            "steps": [
                {"step": "language", "keep": KEEP, "threshold": 0.5},
                {"step": "quality", "max_digit_ratio": None, "min_punctuated_line_ratio": None},
                {"step": "exact_dedup"},
                {"step": "near_dedup", "shingle_size": 5, "num_perm": 128, "threshold": 0.8},
                {"step": "pii", "phones": False},
            ],
        }
    )
    cleaner = Cleaner(params, say=lambda _line: None)
    kept: set[str] = set()
    real = cleaner.process

    def process(docs: Any, files: list[str]) -> Any:
        out_docs = real(docs, files)
        kept.update(f"{int(files[d.file].split('-')[-1].split('.')[0])}:{d.line}" for d in out_docs)
        return out_docs

    cleaner.process = process  # type: ignore[method-assign]
    filtered: set[str] = set()  # what language + quality kept (before any dedup)
    # Wrapped on the class, not the instance: the checkpoints pickle the steps.
    quality_cls = type(cleaner.steps[1])
    real_apply = quality_cls.apply

    def apply(self: Any, docs: Any, locations: Any, files: list[str]) -> Any:
        out_docs = real_apply(self, docs, locations, files)
        filtered.update(
            f"{int(files[d.file].split('-')[-1].split('.')[0])}:{d.line}" for d in out_docs
        )
        return out_docs

    quality_cls.apply = apply  # type: ignore[method-assign]
    started, cpu = time.perf_counter(), time.process_time()
    try:
        result = cleaner.run(out, "ours")
    finally:
        quality_cls.apply = real_apply  # type: ignore[method-assign]
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {"seconds": seconds, "cpu": cpu, "kept": kept, "filtered": filtered, "result": result}


def run_datatrove(data: Path, work: Path) -> dict[str, Any]:
    from datatrove.data import Document
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup.exact_dedup import (
        ExactDedupConfig,
        ExactDedupFilter,
        ExactDedupSignature,
        ExactFindDedups,
    )
    from datatrove.pipeline.dedup.minhash import (
        MinhashConfig,
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupFilter,
        MinhashDedupSignature,
    )
    from datatrove.pipeline.filters import (
        GopherQualityFilter,
        GopherRepetitionFilter,
        LambdaFilter,
    )
    from datatrove.pipeline.formatters import PIIFormatter
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter
    from datatrove.utils.hashing import HashConfig
    from datatrove.utils.word_tokenizers import WordTokenizer

    from worker.clean import langid
    from worker.clean.minhash import optimal_bands
    from worker.clean.text import normalise, words

    class Words(WordTokenizer):
        def word_tokenize(self, text: str) -> list[str]:
            return words(text)

        def sent_tokenize(self, text: str) -> list[str]:
            return [text]

        def span_tokenize(self, text: str) -> list[tuple[int, int]]:
            return [(0, len(text))]

    def keep_language(doc: Document) -> bool:
        lang, prob = langid.detect(doc.text)
        return lang in KEEP and prob >= 0.5

    # datatrove 0.10.1 hands str to xxhash, which xxhash 4 refuses: encode first (its own hashes).
    import datatrove.utils.hashes.xxhash as dt_xxhash
    import xxhash

    dt_xxhash.xxhash32 = lambda d: xxhash.xxh32_intdigest(d.encode() if isinstance(d, str) else d)
    dt_xxhash.xxhash64 = lambda d: xxhash.xxh64_intdigest(d.encode() if isinstance(d, str) else d)
    tok = Words()
    bands, rows = optimal_bands(0.8, 128)
    minhash = MinhashConfig(
        hash_config=HashConfig(precision=64), n_grams=5, num_buckets=bands, hashes_per_bucket=rows
    )
    exact = ExactDedupConfig(content_getter=lambda d: normalise(d.text))

    def run(pipeline: list[Any], name: str, tasks: int = 1) -> None:
        LocalPipelineExecutor(
            pipeline=pipeline, tasks=tasks, workers=1, logging_dir=str(work / "logs" / name)
        ).run()

    started, cpu = time.perf_counter(), time.process_time()
    run(
        [
            JsonlReader(str(data)),
            LambdaFilter(keep_language),
            GopherQualityFilter(
                min_doc_words=5,
                max_doc_words=100_000,
                min_avg_word_length=None,
                max_avg_word_length=15,
                max_symbol_word_ratio=0.1,
                max_bullet_lines_ratio=None,
                max_ellipsis_lines_ratio=None,
                max_non_alpha_words_ratio=0.6,
                min_stop_words=None,
                language=tok,
            ),
            GopherRepetitionFilter(
                dup_line_frac=0.3,
                dup_para_frac=None,
                dup_line_char_frac=None,
                dup_para_char_frac=None,
                top_n_grams=((2, 0.2), (3, 0.18), (4, 0.16)),
                dup_n_grams=((5, 0.15),),
                language=tok,
            ),
            JsonlWriter(str(work / "filtered"), compression=None),
            ExactDedupSignature(str(work / "exact_sigs"), config=exact),
        ],
        "1-filter",
    )
    run([ExactFindDedups(str(work / "exact_sigs"), str(work / "exact_dups"), config=exact)], "2")
    run(
        [
            JsonlReader(str(work / "filtered")),
            ExactDedupFilter(str(work / "exact_dups"), config=exact),
            JsonlWriter(str(work / "exact"), compression=None),
            MinhashDedupSignature(str(work / "mh_sigs"), config=minhash, language=tok),
        ],
        "3",
    )
    # One task per bucket (datatrove's rule), run one after another like every other stage.
    buckets = MinhashDedupBuckets(str(work / "mh_sigs"), str(work / "mh_buckets"), config=minhash)
    run([buckets], "4", tasks=bands)
    run([MinhashDedupCluster(str(work / "mh_buckets"), str(work / "mh_ids"), config=minhash)], "5")
    run(
        [
            JsonlReader(str(work / "exact")),
            MinhashDedupFilter(str(work / "mh_ids")),
            PIIFormatter(remove_emails=True, remove_ips=True, only_remove_public_ips=False),
            JsonlWriter(str(work / "out"), compression=None),
        ],
        "6",
    )
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu

    def ids(folder: Path) -> set[str]:
        return {
            json.loads(line)["id"]
            for f in folder.glob("*.jsonl")
            for line in f.read_text(encoding="utf-8").splitlines()
        }

    return {
        "seconds": seconds,
        "cpu": cpu,
        "kept": ids(work / "out"),
        "filtered": ids(work / "filtered"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--docs", type=int, default=20_000)
    ap.add_argument("--files", type=int, default=4)
    ap.add_argument("--reps", type=int, default=3, help="alternating repetitions (median)")
    ap.add_argument(
        "--index-memory", type=int, default=0, metavar="N",
        help="only measure the dedup index's memory for N random documents",
    )  # fmt: skip
    args = ap.parse_args()
    if args.index_memory:
        index_memory(args.index_memory)
        return
    os.environ.setdefault("DATATROVE_COLORIZE_LOGS", "0")
    work = Path(tempfile.mkdtemp(prefix="bench-clean-"))
    try:
        data = build(work, args.docs, args.files)
        texts = {
            json.loads(line)["id"]: json.loads(line)["text"]
            for f in data.glob("*.jsonl")
            for line in f.open(encoding="utf-8")
        }
        n = len(texts)
        runs: dict[str, list[dict[str, Any]]] = {"ours": [], "dt": []}
        rss = 0
        for rep in range(args.reps):  # alternate the order: load from other jobs hits both alike
            for which in ("ours", "dt") if rep % 2 == 0 else ("dt", "ours"):
                out = work / f"{which}-{rep}"
                if which == "ours":
                    runs["ours"].append(run_ours(data, out))
                    if rep == 0:  # ours ran first: the process peak is ours alone
                        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
                else:
                    runs["dt"].append(run_datatrove(data, out))
                shutil.rmtree(out, ignore_errors=True)
        ours = _median(runs["ours"])
        theirs = _median(runs["dt"])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    a, b = ours["kept"], theirs["kept"]
    same_fate = n - len(a ^ b)
    result = ours["result"]
    print(f"# clean benchmark — {platform.node()}, {os.cpu_count()} CPUs, {n:,} documents")
    print(f"# git {_git()}; python {platform.python_version()}")
    print(f"# median of {args.reps} alternating repetitions")
    print("| pipeline | wall s | documents/s | CPU s | documents/CPU-s | kept |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, r in (("ours (clean job)", ours), ("datatrove 0.10.1", theirs)):
        print(
            f"| {label} | {r['seconds']:.1f} | {n / r['seconds']:,.0f} | {r['cpu']:.1f} | "
            f"{n / r['cpu']:,.0f} | {len(r['kept']):,} |"
        )
    print()
    print(
        f"speed ratio (ours / datatrove, documents/s): {theirs['seconds'] / ours['seconds']:.2f}x "
        f"wall, {theirs['cpu'] / ours['cpu']:.2f}x CPU"
    )
    print(f"same fate (both keep or both remove): {same_fate / n:.4f} ({n - same_fate} differ)")
    print(f"kept-set overlap (both keep / either keeps): {len(a & b) / max(1, len(a | b)):.4f}")
    print(f"only ours keeps: {len(a - b)}, only datatrove keeps: {len(b - a)}")
    fa, fb = ours["filtered"], theirs["filtered"]
    single = sum(1 for i in fa - fb if _single_ngram_rule(texts[i]))
    print(
        f"language + quality alone: same fate {(n - len(fa ^ fb)) / n:.4f} "
        f"(ours keeps {len(fa):,}, datatrove {len(fb):,}; {len(fa - fb)} only ours, "
        f"{len(fb - fa)} only datatrove; {single} of those only ours keeps fail datatrove's "
        "top n-gram rule on an n-gram that occurs once)"
    )
    print(
        f"dedup removed: ours {len(fa) - len(a):,}, datatrove {len(fb) - len(b):,} "
        "(of a duplicate pair, ours keeps the first seen, datatrove its cluster's root)"
    )
    print("ours per step removed:", {s["step"]: s["removed"]["documents"] for s in result["steps"]})
    print(
        f"ours: index entries {result['index_entries']:,}, peak RSS of the process after our "
        f"first run (input and the report held too) {rss / 2**20:.0f} MiB"
    )


def _median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The repetition of median wall time, with the median CPU time (decisions are the same
    in every repetition: the pipelines are deterministic)."""
    by_wall = sorted(runs, key=lambda r: r["seconds"])
    cpus = sorted(r["cpu"] for r in runs)
    return {**by_wall[len(runs) // 2], "cpu": cpus[len(runs) // 2]}


def index_memory(n: int) -> None:
    """Bytes per document of what grows with the corpus: the exact-dedup dict, the LSH bands
    (0.8, 128 permutations) and the 8-byte location, filled with n random signatures."""
    import tracemalloc

    import numpy as np
    import xxhash

    from worker.clean.minhash import LshIndex
    from worker.clean.steps import Locations

    rng = np.random.default_rng(0)
    tracemalloc.start()
    lsh, where = LshIndex(0.8, 128), Locations()
    seen: dict[int, int] = {}
    for i in range(n):
        sig = rng.integers(0, 2**32, size=128, dtype=np.uint64)
        lsh.add(sig, i)
        seen.setdefault(xxhash.xxh3_128_intdigest(sig.tobytes()), i)
        where.packed.append(i)
    total = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del lsh
    tracemalloc.start()
    seen2: dict[int, int] = {}
    for i in range(n):
        seen2.setdefault(xxhash.xxh3_128_intdigest(i.to_bytes(8, "little")), i)
    exact_only = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    print(f"{n:,} documents, near dedup {lsh_shape(0.8, 128)}:")
    print(
        f"  exact + near + location: {total / n:.0f} B/document = {total / n * 1e6 / 2**30:.2f} GiB per million"
    )
    print(
        f"  exact only:              {exact_only / n:.0f} B/document = {exact_only / n * 1e6 / 2**30:.2f} GiB per million"
    )


def lsh_shape(threshold: float, num_perm: int) -> str:
    from worker.clean.minhash import optimal_bands

    bands, rows = optimal_bands(threshold, num_perm)
    return f"{bands} bands x {rows} rows"


def _single_ngram_rule(text: str) -> bool:
    """datatrove's top n-gram reading: the most common n-gram's characters times its count,
    even when it occurs once (ours needs a repeat)."""
    from collections import Counter

    from worker.clean.text import words

    ws = words(text)
    for n, limit in ((2, 0.2), (3, 0.18), (4, 0.16)):
        grams = [" ".join(ws[i : i + n]) for i in range(len(ws) - n + 1)]
        if grams:
            gram, count = Counter(grams).most_common(1)[0]
            if len(gram) * count / len(text) > limit:
                return True
    return False


def _git() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        return "?"


if __name__ == "__main__":
    main()
