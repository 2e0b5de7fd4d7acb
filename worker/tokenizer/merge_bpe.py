"""Extend a byte-level BPE tokenizer (Llama-3, SmolLM2, Qwen: ``tokenizer.json``) with merges.

BPE training continues from where the base stopped: the new text is pre-tokenized by the
base's own pre-tokenizer and segmented by the base's own merges, then the most frequent
adjacent pair is merged, again and again. Each new merge's two parts are tokens (of the base or
added before it), each creates one new token, and the merges are appended in the order learned,
after all of the base's. Because the base applies its merges first and the new ones in the
order they were learned, encoding a new token's own text rebuilds it through the same chain;
the result is verified and a token that is not produced is dropped with the tokens built from
it. Text the base already segments completely keeps its tokens.

Only ``tokenizer.json`` changes; the base's ``tokenizer_config.json``, special tokens and chat
template are copied unchanged.
"""

from __future__ import annotations

import heapq
import itertools
import json
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from worker.tokenizer.check import behaviour_differences, changed_base_ids
from worker.tokenizer.corpus import read_corpus
from worker.tokenizer.errors import TokenizerInputError
from worker.tokenizer.loading import copy_side_files, load_tokenizer, read_tokenizer_json
from worker.tokenizer.merge_result import SUMMARY_NAME, MergeResult
from worker.tokenizer.output import atomic_output_dir

Pair = tuple[str, str]


def pretokenized_counts(backend: Any, lines: Iterable[str]) -> Counter[str]:
    """How often each pre-token (in the base's byte-level alphabet) occurs in ``lines``."""
    normalizer, pre = backend.normalizer, backend.pre_tokenizer
    counts: Counter[str] = Counter()
    for line in lines:
        text = normalizer.normalize_str(line) if normalizer is not None else line
        if pre is None:
            counts[text] += 1
            continue
        for piece, _ in pre.pre_tokenize_str(text):
            counts[piece] += 1
    return counts


def _merge_word(symbols: list[str], a: str, b: str, new: str) -> list[str]:
    out: list[str] = []
    i, n = 0, len(symbols)
    while i < n:
        if i + 1 < n and symbols[i] == a and symbols[i + 1] == b:
            out.append(new)
            i += 2
        else:
            out.append(symbols[i])
            i += 1
    return out


def learn_merges(
    segmented: Sequence[tuple[list[str], int]],
    vocab: set[str],
    max_new: int,
    min_frequency: int = 2,
) -> list[Pair]:
    """Continue BPE training on (base segmentation, count) words.

    Returns up to ``max_new`` merges, most frequent first (ties broken by the pair's text, so
    the result is deterministic); a merge whose result is already a token is never taken.
    """
    words = [list(symbols) for symbols, _ in segmented]
    freqs = [count for _, count in segmented]
    counts: dict[Pair, int] = defaultdict(int)
    where: dict[Pair, set[int]] = defaultdict(set)
    for wi, symbols in enumerate(words):
        for pair in itertools.pairwise(symbols):
            counts[pair] += freqs[wi]
            where[pair].add(wi)
    heap = [(-c, a, b) for (a, b), c in counts.items()]
    heapq.heapify(heap)
    known = set(vocab)
    merges: list[Pair] = []
    while heap and len(merges) < max_new:
        neg, a, b = heapq.heappop(heap)
        pair = (a, b)
        if counts.get(pair, 0) != -neg:
            continue  # stale entry; the current count was pushed when it changed
        if -neg < min_frequency:
            break
        new = a + b
        if new in known:
            counts[pair] = 0  # never again: the token exists (the base builds it differently)
            continue
        merges.append(pair)
        known.add(new)
        changed: dict[Pair, int] = defaultdict(int)
        for wi in where.pop(pair, set()):
            old = words[wi]
            if len(old) < 2:
                continue
            merged = _merge_word(old, a, b, new)
            if len(merged) == len(old):
                continue
            f = freqs[wi]
            for p in itertools.pairwise(old):
                changed[p] -= f
            for p in itertools.pairwise(merged):
                changed[p] += f
                where[p].add(wi)
            words[wi] = merged
        counts.pop(pair, None)
        for p, delta in changed.items():
            if delta == 0 or p == pair:
                continue
            counts[p] += delta
            if counts[p] > 0:
                heapq.heappush(heap, (-counts[p], p[0], p[1]))
            else:
                counts.pop(p, None)
    return merges


def _max_id(spec: dict[str, Any]) -> int:
    ids = list(spec["model"]["vocab"].values()) + [t["id"] for t in spec.get("added_tokens", [])]
    return max(ids)


def extend_spec(spec: dict[str, Any], merges: Sequence[Pair]) -> tuple[dict[str, Any], list[str]]:
    """A copy of ``spec`` with ``merges`` appended; the new tokens in id order."""
    out = json.loads(json.dumps(spec))
    vocab: dict[str, int] = out["model"]["vocab"]
    base_merges: list[Any] = out["model"]["merges"]
    as_text = bool(base_merges) and isinstance(base_merges[0], str)
    next_id = _max_id(spec) + 1
    new_tokens = []
    for a, b in merges:
        vocab[a + b] = next_id
        next_id += 1
        base_merges.append(f"{a} {b}" if as_text else [a, b])
        new_tokens.append(a + b)
    return out, new_tokens


def unreachable_new(spec: dict[str, Any], new_tokens: Sequence[str]) -> set[str]:
    from tokenizers import Tokenizer

    model = Tokenizer.from_str(json.dumps(spec)).model
    vocab = spec["model"]["vocab"]
    bad = set()
    for token in new_tokens:
        pieces = model.tokenize(token)
        if len(pieces) != 1 or pieces[0].id != vocab[token]:
            bad.add(token)
    return bad


def drop(merges: Sequence[Pair], bad: set[str]) -> list[Pair]:
    """``merges`` without those that make a ``bad`` token or are built from a dropped one."""
    kept: list[Pair] = []
    gone = set(bad)
    for a, b in merges:
        if a + b in gone or a in gone or b in gone:
            gone.add(a + b)
            continue
        kept.append((a, b))
    return kept


def merge_byte_level_bpe(
    base: str | Path,
    inputs: Sequence[str | Path],
    output: str | Path,
    max_new: int = 10000,
    min_frequency: int = 2,
    progress: Callable[[str], None] | None = None,
) -> MergeResult:
    say = progress or (lambda _msg: None)
    started = time.monotonic()
    base_dir = Path(base)
    with atomic_output_dir(Path(output)) as tmp:
        spec = read_tokenizer_json(base_dir / "tokenizer.json", "--base")
        corpus = read_corpus(inputs, "--input")  # bad text fails before the base loads
        base_tok = load_tokenizer(base_dir, "--base")
        n_base = len(base_tok)
        if _max_id(spec) + 1 != n_base:
            raise TokenizerInputError(
                "--base", f"its ids are not contiguous (largest {_max_id(spec)}, {n_base} tokens)"
            )
        backend = base_tok.backend_tokenizer
        counts = pretokenized_counts(backend, corpus.lines)
        model = backend.model
        segmented = [([t.value for t in model.tokenize(w)], c) for w, c in counts.items()]
        say(
            f"merge: base {base_dir} (byte-level BPE, {n_base} tokens); learning up to {max_new} "
            f"merges from {len(corpus.lines)} lines ({len(counts)} distinct pre-tokens) ..."
        )
        vocab = set(spec["model"]["vocab"]) | {t["content"] for t in spec.get("added_tokens", [])}
        merges = learn_merges(segmented, vocab, max_new, min_frequency)
        dropped = 0
        while True:
            extended, new_tokens = extend_spec(spec, merges)
            bad = unreachable_new(extended, new_tokens)
            if not bad:
                break
            kept = drop(merges, bad)
            dropped += len(merges) - len(kept)
            say(
                f"merge: {len(merges) - len(kept)} merges unreachable in the extended model, dropped"
            )
            merges = kept
        (tmp / "tokenizer.json").write_text(
            json.dumps(extended, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
        )
        copied = copy_side_files(base_dir, tmp)
        _verify(base_tok, tmp, n_base + len(merges))
        result = MergeResult(
            output=str(Path(output).absolute()),
            family="byte-level-bpe",
            base=str(base_dir),
            base_size=n_base,
            added=len(merges),
            size=n_base + len(merges),
            dropped_unreachable=dropped,
            source=", ".join(str(p) for p in corpus.files),
            copied_files=copied,
            seconds=round(time.monotonic() - started, 3),
        )
        (tmp / SUMMARY_NAME).write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    say(result.summary())
    return result


def _verify(base_tok: Any, out: Path, size: int) -> None:
    final = load_tokenizer(out, "--output")
    problems = behaviour_differences(base_tok, final)
    if len(final) != size:
        problems.append(f"{len(final)} tokens instead of {size}")
    elif changed_base_ids(base_tok, final):
        problems.append("base ids changed")
    if problems:
        raise RuntimeError("merge produced a wrong tokenizer: " + "; ".join(problems))
